"""Fixture feeds, each with what parse_feed must make of it (tests/fixtures/feeds/expectations.yaml)."""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from helpers import NOW
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import FeedParseError
from pipeline.ingest.parse import parse_feed

FIXTURES = Path(__file__).parent.parent / "fixtures" / "feeds"
EXPECTATIONS = yaml.safe_load((FIXTURES / "expectations.yaml").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_fixture_feed(name: str) -> None:
    expect = EXPECTATIONS[name]
    content = (FIXTURES / name).read_bytes()
    if "error" in expect:
        with pytest.raises(FeedParseError, match=expect["error"]):
            parse_feed(content, feed_id="fx", now=NOW)
        return
    parsed = parse_feed(content, feed_id="fx", now=NOW)
    entries = parsed.entries
    assert len(entries) == expect["entries"]
    if "titles" in expect:
        assert [e.title for e in entries] == expect["titles"]
    if "first_url" in expect:
        assert entries[0].url == expect["first_url"]
    if "first_summary" in expect:
        assert entries[0].summary == expect["first_summary"]
    if "langs" in expect:
        assert [e.lang for e in entries] == expect["langs"]
    if "first_body_contains" in expect:
        assert expect["first_body_contains"] in entries[0].body
    if "title_contains" in expect:
        assert expect["title_contains"] in entries[0].title
    if expect.get("problems"):
        assert parsed.problems
    if "duplicates" in expect:
        assert parsed.duplicates_in_feed == expect["duplicates"]
    if "skipped" in expect:
        assert parsed.skipped == expect["skipped"]
    if expect.get("no_published"):
        assert entries[0].published_at is None
    for bad in expect.get("summary_excludes", []):
        assert bad not in entries[0].summary and bad not in entries[0].title
    for e in entries:
        assert e.key and len(e.key) == 32 and e.content_hash
        assert e.published_at is None or e.published_at.tzinfo is not None


def test_published_dates_are_utc() -> None:
    parsed = parse_feed((FIXTURES / "rss2_basic.xml").read_bytes(), feed_id="fx", now=NOW)
    assert parsed.entries[1].published_at.isoformat() == "2024-02-28T08:00:00+00:00"


def test_entity_expansion_refused_fast_and_small() -> None:
    # A 61 KiB feed once became a 191 MiB summary in feedparser's loose parser; we refuse before parsing.
    big = b"A" * 60_000
    content = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "'
        + big
        + b'">]><rss><channel><item><title>'
        + b"&a;" * 3000
        + b"</title></item></channel></rss>"
    )
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(FeedParseError, match="entities"):
        parse_feed(content, feed_id="fx", now=NOW)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 5 * 1024 * 1024


def test_external_dtd_is_never_requested() -> None:
    # The DTD points at 127.0.0.1:1 (nothing listens); the network guard would also refuse anything else.
    parsed = parse_feed((FIXTURES / "external_dtd.xml").read_bytes(), feed_id="fx", now=NOW)
    assert parsed.entries[0].title == "External DTD reference only"


def test_huge_summary_is_capped() -> None:
    content = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>Big</title>'
        b"<link>https://big.example/1</link><description>"
        + b"word " * 1_000_000
        + b"</description></item></channel></rss>"
    )
    entry = parse_feed(content, feed_id="fx", now=NOW).entries[0]
    assert len(entry.summary) <= 20_001


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_parser_never_raises_anything_but_feed_parse_error_on_bytes(data: bytes) -> None:
    with contextlib.suppress(FeedParseError):
        parse_feed(data, feed_id="fuzz", now=NOW)


_ITEM = st.fixed_dictionaries(
    {
        "title": st.text(max_size=200),
        "link": st.one_of(
            st.just(""),
            st.text(max_size=80),
            st.just("javascript:alert(1)"),
            st.just("https://ok.example/x"),
        ),
        "description": st.text(max_size=500),
    }
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ITEM, min_size=1, max_size=5))
def test_generated_rss_entries_are_clean(items: list[dict[str, str]]) -> None:
    from xml.sax.saxutils import escape

    body = "".join(
        f"<item><title>{escape(i['title'])}</title><link>{escape(i['link'])}</link>"
        f"<description>{escape(i['description'])}</description></item>"
        for i in items
    )
    xml = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>g</title>{body}</channel></rss>'
    try:
        parsed = parse_feed(xml.encode("utf-8", "surrogatepass"), feed_id="gen", now=NOW)
    except FeedParseError:
        return
    for e in parsed.entries:
        assert e.url is None or e.url.startswith(("http://", "https://"))
        for field in (e.title, e.summary, e.body):
            assert "\x00" not in field
            field.encode("utf-8")
