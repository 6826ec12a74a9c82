"""Only the new entries of a changed feed are normalised (issue 13 item 5; pipeline/ingest/parse.py).

An entry whose raw print was in the feed's last stored document is a known article with unchanged
content: it is counted, not normalised. Everything else (a new entry, an edit of one character, a new
link) is normalised as before, and a whole ingest with prints stores exactly what one without them
stores: the same articles, revisions, sightings and counts.
"""

from __future__ import annotations

from pathlib import Path

from helpers import NOW
from sqlalchemy import select, update

import pipeline.ingest.parse as parse
from pipeline.devtools.feedserver import serve_directory
from pipeline.ingest.parse import PRINT_SCHEME, format_prints, known_prints, parse_feed
from pipeline.jobs import Runtime, ingest
from pipeline.store.schema import Article, Feed, Sighting


def _item(i: int, text: str | None = None) -> str:
    body = text or f"Report {i}: the port authority published its weekly figures for berth {i}."
    return (
        f"<item><title>Item {i}</title><link>https://n.example/{i}</link>"
        f"<guid>https://n.example/{i}</guid><description>{body}</description>"
        "<pubDate>Mon, 06 May 2024 10:00:00 GMT</pubDate></item>"
    )


def _feed(items: list[str]) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<link>https://n.example/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


V1 = [_item(i) for i in range(10)]
# Two new entries on top, entry 3 edited by one word, entry 9 gone, the rest as they were.
V2 = [_item(11), _item(10)] + [
    _item(i, f"Report {i}: the port authority published its monthly figures for berth {i}.")
    if i == 3
    else _item(i)
    for i in range(9)
]


def _count_normalised(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = parse.html_to_text

    def counting(html, **kwargs):
        calls.append(html or "")
        return real(html, **kwargs)

    monkeypatch.setattr(parse, "html_to_text", counting)
    return calls


def test_known_entries_are_counted_not_normalised(monkeypatch) -> None:
    first = parse_feed(_feed(V1), feed_id="f", now=NOW)
    assert len(first.entries) == 10 and first.unchanged == 0 and len(first.prints) == 10
    stored = format_prints(first.prints)
    assert stored is not None and stored.startswith(PRINT_SCHEME + " ")
    assert known_prints(stored) == frozenset(first.prints)

    calls = _count_normalised(monkeypatch)
    same = parse_feed(_feed(V1), feed_id="f", now=NOW, known=stored)
    assert same.entries == () and same.unchanged == 10 and calls == []
    assert same.prints == first.prints

    changed = parse_feed(_feed(V2), feed_id="f", now=NOW, known=stored)
    assert sorted(e.title for e in changed.entries) == ["Item 10", "Item 11", "Item 3"]
    assert changed.unchanged == 8 and changed.entries_seen == 11
    assert len(changed.prints) == 11  # entry 9 left the feed: its print is not kept
    assert len(calls) == 3 * 3  # title, summary, body of the three entries only
    # What the three get is what a parse without prints gives them.
    plain = {e.key: e for e in parse_feed(_feed(V2), feed_id="f", now=NOW).entries}
    assert all(plain[e.key] == e for e in changed.entries)


def test_prints_of_another_scheme_or_none_mean_every_entry_is_normalised() -> None:
    first = parse_feed(_feed(V1), feed_id="f", now=NOW)
    other = "p0 " + " ".join(first.prints)
    assert known_prints(other) == frozenset() and known_prints(None) == frozenset()
    assert len(parse_feed(_feed(V1), feed_id="f", now=NOW, known=other).entries) == 10
    assert format_prints(()) is None


def test_a_skipped_entry_is_reported_again_not_remembered() -> None:
    items = [*V1[:2], "<item><title></title><description></description></item>"]
    first = parse_feed(_feed(items), feed_id="f", now=NOW)
    assert first.skipped == 1 and len(first.prints) == 2
    again = parse_feed(_feed(items), feed_id="f", now=NOW, known=format_prints(first.prints))
    assert again.skipped == 1 and again.unchanged == 2
    assert any("no title and no text" in p for p in again.problems)


def test_a_print_covers_every_part_of_the_entry() -> None:
    base = parse_feed(_feed([_item(1)]), feed_id="f", now=NOW).prints
    variants = [
        _item(1).replace("Item 1", "Item 1b"),  # title
        _item(1).replace("/1</link>", "/1?x</link>"),  # link
        _item(1).replace("/1</guid>", "/1#g</guid>"),  # id
        _item(1).replace("</description>", "</description><content:encoded>x</content:encoded>"),
    ]
    xmlns = '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
    for variant in variants:
        doc = _feed([variant]).replace(b'<rss version="2.0">', xmlns.encode())
        assert parse_feed(doc, feed_id="f", now=NOW).prints != base, variant
    moved = parse_feed(_feed([_item(1)]), feed_id="f", now=NOW, base_url="https://m.example/rss")
    assert moved.prints != base  # relative links would resolve elsewhere


def _ingest_twice(make_config, db_url: str, folder: Path, *, prints: bool) -> dict:
    (folder / "f.xml").write_bytes(_feed(V1))
    with serve_directory(folder) as server:
        config = make_config(database_url=db_url, feeds=[{"id": "f", "url": f"{server.url}/f.xml"}])
        with Runtime.open(config) as rt:
            first = ingest(rt, now=NOW, run_id="a")
            (folder / "f.xml").write_bytes(_feed(V2))
            if not prints:
                with rt.sessions.begin() as s:
                    s.execute(update(Feed).values(entry_prints=None))
            second = ingest(rt, now=NOW, run_id="b")
            with rt.sessions() as s:
                articles = sorted(
                    tuple(r)
                    for r in s.execute(
                        select(
                            Article.key,
                            Article.title,
                            Article.summary,
                            Article.revision,
                            Article.content_hash,
                            Article.lang,
                        )
                    )
                )
                sightings = sorted(
                    tuple(r)
                    for r in s.execute(
                        select(Article.key, Sighting.feed_id, Sighting.url).join(
                            Article, Article.id == Sighting.article_id
                        )
                    )
                )
                stored = s.scalar(select(Feed.entry_prints))
    return {
        "articles": articles,
        "sightings": sightings,
        "first": (first.articles_new, first.duplicates),
        "second": (second.articles_new, second.articles_updated, second.duplicates),
        "stored": stored,
    }


def test_ingest_with_prints_stores_what_ingest_without_them_stores(
    make_config, db_url: str, tmp_path: Path
) -> None:
    """The second ingest of a changed feed, with the first document's prints (SQLite and
    PostgreSQL) and without them, ends in the same rows and counts."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with_prints = _ingest_twice(make_config, db_url, tmp_path / "a", prints=True)
    # The reference: the same two ingests, the second without the first document's prints.
    without = _ingest_twice(
        make_config, f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "b", prints=False
    )
    assert with_prints["stored"].startswith(PRINT_SCHEME + " ")
    for key in ("articles", "sightings", "first", "second"):
        assert with_prints[key] == without[key], key
    assert with_prints["second"] == (2, 1, 8)  # two new, one edit (revision 2), eight known
    assert sum(r[3] == 2 for r in with_prints["articles"]) == 1
