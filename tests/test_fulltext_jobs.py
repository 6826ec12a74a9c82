"""Full text through the whole cycle (issue 9, item 5): a summary-only feed over loopback, its article
pages on the same loopback server, ``run-once``, and what the database holds afterwards.

The feed gives only the first sentence of each article; the page holds the whole article. The
summit article reports its breach only in paragraph four (see tests/pagekit.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import NOW
from pagekit import (
    BREACH_MARK,
    CALM_PARAGRAPHS,
    CALM_TITLE,
    SUMMIT_PARAGRAPHS,
    SUMMIT_TITLE,
    PageServer,
    article_html,
    page_server,
    summary_feed,
)
from sqlalchemy import select

from pipeline.classify.model import Doc
from pipeline.jobs import Runtime, classify, ingest, run_once
from pipeline.store.schema import Article, Classification, PageFetch

FAST = {"full_text": {"min_delay": 0.05}}


@pytest.fixture
def site() -> Iterator[PageServer]:
    """The loopback site: the summit article (breach in paragraph four) and a calm summit article."""
    with page_server() as server:
        server.serve("/news/summit", article_html(SUMMIT_TITLE, SUMMIT_PARAGRAPHS))
        server.serve("/news/calm", article_html(CALM_TITLE, CALM_PARAGRAPHS))
        server.serve(
            "/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"
        )
        items = [
            {
                "title": SUMMIT_TITLE,
                "link": server.url("/news/summit"),
                "summary": SUMMIT_PARAGRAPHS[0],
            },
            {"title": CALM_TITLE, "link": server.url("/news/calm"), "summary": CALM_PARAGRAPHS[0]},
        ]
        server.serve("/feed.xml", summary_feed(items), content_type="application/rss+xml")
        yield server


def _open(make_config: Any, db_url: str, site: PageServer, mode: str | None, **kw: Any) -> Runtime:
    feed: dict[str, Any] = {"id": "wire", "url": site.url("/feed.xml")}
    if mode is not None:
        feed["full_text"] = mode
    return Runtime.open(make_config(database_url=db_url, feeds=[feed], settings=FAST, **kw))


def _articles(rt: Runtime) -> dict[str, tuple[Article, Classification]]:
    with rt.sessions() as s:
        rows = s.execute(
            select(Article, Classification).join(
                Classification, Classification.article_id == Article.id
            )
        ).all()
    return {a.title: (a, c) for a, c in rows}


def _page_rows(rt: Runtime) -> dict[int, PageFetch]:
    with rt.sessions() as s:
        return {p.article_id: p for p in s.scalars(select(PageFetch))}


def test_auto_fetches_the_page_stores_it_and_scores_the_whole_article(
    make_config, db_url: str, site: PageServer, mail_sink
) -> None:
    with _open(make_config, db_url, site, None, smtp_port=mail_sink.port) as rt:  # default: auto
        run_once(rt, now=NOW, run_id="r1")
        articles = _articles(rt)
        pages = _page_rows(rt)
        summit, verdict = articles[SUMMIT_TITLE]
        assert summit.summary == SUMMIT_PARAGRAPHS[0]  # the feed gave one sentence
        assert summit.body_source == "page" and summit.page_fetched_at == NOW
        assert BREACH_MARK in summit.body and "SCRIPT-TEXT" not in summit.body
        fetch = pages[summit.id]
        assert (fetch.status, fetch.reason, fetch.http_status) == ("ok", None, 200)
        # The head (title + first sentence) scored low; the stored verdict is the whole article's.
        assert fetch.trigger in ("band", "regime") and fetch.head_score is not None
        whole = float(rt.model.predict_docs([Doc.of(summit.title, summit.summary, summit.body)])[0])
        assert verdict.score == pytest.approx(whole, abs=1e-6)
        assert verdict.score != pytest.approx(fetch.head_score, abs=1e-6)

        # A second cycle fetches nothing again: one attempt per article revision.
        before = len(site.hits("/news/"))
        run_once(rt, now=NOW, run_id="r2")
        assert len(site.hits("/news/")) == before == 2


def test_auto_flags_the_breach_in_paragraph_four_through_run_once(
    make_config, sqlite_url: str, site: PageServer, mail_sink
) -> None:
    with _open(make_config, sqlite_url, site, "auto", smtp_port=mail_sink.port) as rt:
        summary = run_once(rt, now=NOW, run_id="r1")
        summit, verdict = _articles(rt)[SUMMIT_TITLE]
    assert summit.body_source == "page"
    assert verdict.flagged and summary["flagged"] >= 1


def test_a_calm_summit_article_is_fetched_and_not_flagged(
    make_config, sqlite_url: str, site: PageServer
) -> None:
    with _open(make_config, sqlite_url, site, "auto") as rt:
        ingest(rt, now=NOW, run_id="r1")
        classify(rt, now=NOW)
        calm, verdict = _articles(rt)[CALM_TITLE]
    assert calm.body_source == "page" and "Russky Island" in calm.body
    assert not verdict.flagged


def test_never_feeds_never_fetch(make_config, db_url: str, site: PageServer) -> None:
    with _open(make_config, db_url, site, "never") as rt:
        ingest(rt, now=NOW, run_id="r1")
        report = classify(rt, now=NOW)
        assert report.classified == 2
        assert _page_rows(rt) == {}
        assert {a.body_source for a, _ in _articles(rt).values()} == {"feed"}
    assert site.paths() == ["/feed.xml"]  # not even robots.txt


def test_always_fetches_before_the_first_score_whatever_the_head(
    make_config, sqlite_url: str, mail_sink
) -> None:
    with page_server() as server:
        server.serve("/sport/final", article_html("Cup final", ["A late goal won it. " * 20]))
        feed = summary_feed(
            [
                {
                    "title": "Holders win the cup final with a late goal",
                    "link": server.url("/sport/final"),
                    "summary": "A header in stoppage time decided it.",
                }
            ]
        )
        server.serve("/feed.xml", feed, content_type="application/rss+xml")
        config = make_config(
            database_url=sqlite_url,
            feeds=[{"id": "sport", "url": server.url("/feed.xml"), "full_text": "always"}],
            settings=FAST,
        )
        with Runtime.open(config) as rt:
            ingest(rt, now=NOW, run_id="r1")
            classify(rt, now=NOW)
            ((article, _),) = _articles(rt).values()
            (fetch,) = _page_rows(rt).values()
        assert server.paths() == ["/feed.xml", "/robots.txt", "/sport/final"]
    assert (fetch.trigger, fetch.status, fetch.head_score) == ("always", "ok", None)
    assert article.body_source == "page" and "A late goal won it." in article.body


def test_an_edited_item_gets_its_feed_body_back_and_its_page_again(
    make_config, sqlite_url: str, site: PageServer
) -> None:
    with _open(make_config, sqlite_url, site, "always") as rt:
        ingest(rt, now=NOW, run_id="r1")
        classify(rt, now=NOW)
        edited = summary_feed(
            [
                {
                    "title": SUMMIT_TITLE,
                    "link": site.url("/news/summit"),
                    "summary": SUMMIT_PARAGRAPHS[0] + " Talks continue on Wednesday.",
                }
            ]
        )
        site.serve("/feed.xml", edited, content_type="application/rss+xml")
        ingest(rt, now=NOW, run_id="r2")
        with rt.sessions() as s:
            article = s.scalars(select(Article).where(Article.title == SUMMIT_TITLE)).one()
            assert (article.revision, article.body_source, article.page_fetched_at) == (
                2,
                "feed",
                None,
            )
        classify(rt, now=NOW)
        with rt.sessions() as s:
            article = s.scalars(select(Article).where(Article.title == SUMMIT_TITLE)).one()
            revisions = sorted(
                p.revision
                for p in s.scalars(select(PageFetch).where(PageFetch.article_id == article.id))
            )
    assert article.body_source == "page" and BREACH_MARK in article.body
    assert revisions == [1, 2]
