"""Storage of the full-text cascade (pipeline/store/pages.py): which items it may consider, and what
it recorded, on SQLite and PostgreSQL."""

from __future__ import annotations

from builders import entry
from helpers import NOW
from sqlalchemy import select

from pipeline.ingest.article import PageOutcome
from pipeline.jobs import Runtime
from pipeline.store.articles import add_classification, sync_feeds, upsert_entries
from pipeline.store.pages import page_candidates, page_fetch_counts, store_pages
from pipeline.store.schema import Article, PageFetch

FEEDS = [
    {"id": "auto", "url": "https://a.example/rss"},
    {"id": "always", "url": "https://b.example/rss", "full_text": "always"},
    {"id": "never", "url": "https://c.example/rss", "full_text": "never"},
]


def _fill(rt: Runtime) -> dict[str, int]:
    """One article per feed, plus a classified one and one already tried in the auto feed."""
    with rt.sessions.begin() as s:
        sync_feeds(s, rt.config.feeds)
        entries = [
            entry("auto", "New auto item", url="https://a.example/1"),
            entry("always", "New always item", url="https://b.example/1"),
            entry("never", "New never item", url="https://c.example/1"),
            entry("auto", "Classified item", url="https://a.example/2"),
            entry("auto", "Tried item", url="https://a.example/3"),
        ]
        upsert_entries(s, entries, now=NOW)
        ids = {a.title: a.id for a in s.scalars(select(Article))}
        classified = s.get(Article, ids["Classified item"])
        add_classification(
            s,
            classified,
            model_version="other-model",
            score=0.1,
            threshold=0.5,
            flagged=False,
            regimes=[],
            evidence={},
            now=NOW,
        )
        store_pages(s, [_outcome(ids["Tried item"], "error", reason="timeout")], now=NOW)
    return ids


def _outcome(article_id: int, status: str, revision: int = 1, **kw) -> PageOutcome:
    return PageOutcome(article_id, revision, "a.example", status, "band", 0.2, **kw)  # type: ignore[arg-type]


def test_candidates_are_unclassified_untried_feed_bodied_items_of_auto_and_always_feeds(
    make_config, db_url: str
) -> None:
    with Runtime.open(make_config(database_url=db_url, feeds=FEEDS)) as rt:
        ids = _fill(rt)
        modes = {f.id: f.full_text for f in rt.config.feeds}
        with rt.sessions() as s:
            found = {(c.title, c.mode) for c in page_candidates(s, modes)}
            assert page_candidates(s, {"auto": "never", "always": "never"}) == []
    assert found == {("New auto item", "auto"), ("New always item", "always")}
    assert ids  # the ids of the others were made


def test_stored_pages_replace_the_body_once_and_record_every_outcome(
    make_config, db_url: str
) -> None:
    with Runtime.open(make_config(database_url=db_url, feeds=FEEDS)) as rt:
        ids = _fill(rt)
        auto, always = ids["New auto item"], ids["New always item"]
        ok = _outcome(auto, "ok", body="The whole article.", http_status=200, nbytes=1234)
        refused = _outcome(always, "error", reason="robots", detail="robots\x00.txt disallows")
        with rt.sessions.begin() as s:
            assert store_pages(s, [ok, refused], now=NOW) == 1
        with rt.sessions.begin() as s:  # a re-run records and stores nothing twice
            later = _outcome(auto, "ok", body="Another text.")
            assert store_pages(s, [later], now=NOW) == 0
        with rt.sessions() as s:
            article = s.get(Article, auto)
            other = s.get(Article, always)
            rows = {p.article_id: p for p in s.scalars(select(PageFetch))}
            counts = page_fetch_counts(s)
            left = {
                c.title for c in page_candidates(s, {f.id: f.full_text for f in rt.config.feeds})
            }
    assert (article.body, article.body_source, article.page_fetched_at) == (
        "The whole article.",
        "page",
        NOW,
    )
    assert (other.body, other.body_source) == ("", "feed")
    assert (rows[auto].status, rows[auto].bytes, rows[auto].http_status) == ("ok", 1234, 200)
    assert rows[always].detail == "robots.txt disallows"  # cleaned like feed text
    assert counts == {"ok": 1, "error:robots": 1, "error:timeout": 1}
    assert left == set()  # tried items are not candidates any more


def test_a_page_for_an_older_revision_does_not_replace_the_edited_body(
    make_config, db_url: str
) -> None:
    with Runtime.open(make_config(database_url=db_url, feeds=FEEDS)) as rt:
        ids = _fill(rt)
        auto = ids["New auto item"]
        with rt.sessions.begin() as s:  # the feed edits the item: revision 2
            upsert_entries(
                s,
                [entry("auto", "New auto item", url="https://a.example/1", summary="edited")],
                now=NOW,
            )
        with rt.sessions.begin() as s:
            assert (
                store_pages(s, [_outcome(auto, "ok", revision=1, body="Old page.")], now=NOW) == 0
            )
        with rt.sessions() as s:
            article = s.get(Article, auto)
    assert (article.revision, article.summary, article.body_source) == (2, "edited", "feed")
