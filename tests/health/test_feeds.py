"""Feed health without Airflow: batches and per-feed lines, and alarms that notify once per problem
(failing N times in a row, silent, too few items), again only on recovery or after the reminder
interval; on both database backends."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from helpers import NOW
from sqlalchemy import select

from pipeline.config import FeedConfig
from pipeline.health import check_feeds, feed_batches, feed_health, feed_line
from pipeline.jobs import Runtime
from pipeline.reports import FeedOutcome
from pipeline.store.articles import record_fetch, sync_feeds
from pipeline.store.schema import Notice

FEEDS = [
    {"id": "a", "url": "http://127.0.0.1:9/a.xml", "max_silence_hours": 10},
    {"id": "b", "url": "http://127.0.0.1:9/b.xml?token=SECRET", "max_silence_hours": 0},
    {"id": "c", "url": "http://127.0.0.1:9/c.xml", "max_silence_hours": 0, "min_items": 5},
]


def test_batches_cover_every_feed_once_in_file_order() -> None:
    feeds = [FeedConfig(id=f"f{i}", name=f"f{i}", url=f"http://x/{i}") for i in range(7)]
    assert feed_batches(feeds, 3) == [["f0", "f1", "f2"], ["f3", "f4", "f5"], ["f6"]]
    assert feed_batches(feeds, 100) == [[f.id for f in feeds]]
    assert feed_batches([], 25) == []


def test_one_line_per_feed_says_what_it_did_with_counts() -> None:
    ok = FeedOutcome("a", "ok", entries_seen=12, articles_new=3, articles_updated=1, duplicates=8)
    assert feed_line(ok) == "feed a: ok, 12 entries, 3 new, 1 updated, 8 duplicates, 0 skipped"
    assert feed_line(ok, min_items=20).endswith("(below min_items=20)")
    assert feed_line(FeedOutcome("b", "error", error="HTTP 404")) == "feed b: FAILED: HTTP 404"
    assert feed_line(FeedOutcome("c", "not_modified")) == "feed c: not modified (304)"
    assert (
        feed_line(FeedOutcome("c", "not_modified", same_body=True))
        == "feed c: not modified (the same body as last time, not parsed)"
    )


def _fetch(rt: Runtime, feed_id: str, at: Any, *, ok: bool, entries: int = 10) -> None:
    with rt.sessions.begin() as s:
        record_fetch(
            s,
            run_id=f"r{at:%H%M}",
            feed_id=feed_id,
            started_at=at,
            finished_at=at,
            outcome="ok" if ok else "error",
            entries_seen=entries if ok else 0,
            error=None if ok else "HTTP 404 Not Found",
        )


def _check(rt: Runtime, at: Any) -> list[str]:
    with rt.sessions.begin() as s:
        return check_feeds(s, rt.config, now=at)


def test_a_failing_feed_notifies_once_reminds_later_and_says_when_it_recovers(
    make_config, db_url: str
) -> None:
    config = make_config(
        database_url=db_url,
        feeds=FEEDS[:2],
        settings={"health": {"failures_to_notify": 3, "reminder_hours": 6}},
    )
    with Runtime.open(config) as rt:
        with rt.sessions.begin() as s:
            sync_feeds(s, config.feeds)
        _fetch(rt, "a", NOW, ok=True)
        _fetch(rt, "b", NOW, ok=True)
        t = NOW
        for _ in range(2):  # below the limit: nothing to say
            t += timedelta(minutes=15)
            _fetch(rt, "b", t, ok=False)
            _fetch(rt, "a", t, ok=True)
            assert _check(rt, t) == []
        t += timedelta(minutes=15)
        _fetch(rt, "b", t, ok=False)
        first = _check(rt, t)
        assert len(first) == 1 and "Feed b" in first[0] and "3 fetches in a row" in first[0]
        assert "SECRET" not in first[0]  # feed URLs are redacted
        for _ in range(4):  # still failing, within the reminder interval: no one is told again
            t += timedelta(minutes=15)
            _fetch(rt, "b", t, ok=False)
            assert _check(rt, t) == []
        reminder = _check(rt, t + timedelta(hours=6))
        assert len(reminder) == 1 and reminder[0].startswith("Reminder: Feed b")
        assert _check(rt, t + timedelta(hours=6, minutes=15)) == []
        t += timedelta(hours=7)
        _fetch(rt, "b", t, ok=True)
        recovered = _check(rt, t)
        assert (
            recovered == [recovered[0]] and "Feed b" in recovered[0] and "recovered" in recovered[0]
        )
        assert _check(rt, t + timedelta(minutes=15)) == []
        with rt.sessions() as s:
            kinds = [n.kind for n in s.scalars(select(Notice).order_by(Notice.id))]
            health = {h.feed_id: h for h in feed_health(s, config)}
    assert kinds == ["feed_failing", "feed_failing", "feed_recovered"]
    assert health["b"].alarm is None and health["b"].consecutive_failures == 0
    assert health["a"].last_entries == 10 and health["a"].last_ok_at is not None


def test_a_silent_feed_and_a_thin_feed_notify_once_each(make_config, db_url: str) -> None:
    config = make_config(
        database_url=db_url,
        feeds=[FEEDS[0], FEEDS[2]],
        settings={"health": {"failures_to_notify": 50, "reminder_hours": 0}},
    )
    with Runtime.open(config) as rt:
        with rt.sessions.begin() as s:
            sync_feeds(s, config.feeds)
        _fetch(rt, "a", NOW, ok=True)
        _fetch(rt, "c", NOW, ok=True, entries=2)  # fewer than min_items=5
        thin = _check(rt, NOW)
        assert len(thin) == 1 and "Feed c" in thin[0] and "min_items=5" in thin[0]
        _fetch(rt, "a", NOW + timedelta(hours=1), ok=False)
        assert _check(rt, NOW + timedelta(hours=9)) == []  # 9 h < max_silence_hours=10
        silent = _check(rt, NOW + timedelta(hours=11))
        assert len(silent) == 1 and "Feed a" in silent[0] and "10 h" in silent[0]
        # reminder_hours: 0 never reminds, however long it lasts
        assert _check(rt, NOW + timedelta(days=30)) == []
        with rt.sessions() as s:
            alarms = {h.feed_id: h.alarm for h in feed_health(s, config)}
    assert alarms == {"a": "silent", "c": "few_items"}
