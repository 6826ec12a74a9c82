"""Feed health: each feed's state at a glance, and operator notices that fire once per problem.

A feed is in trouble ("alarm") when it failed ``health.failures_to_notify`` fetches in a row
(``failing``), was not fetched successfully for longer than its ``max_silence_hours`` (``silent``),
or its latest successful fetch saw fewer than its ``min_items`` entries (``few_items``).
:func:`check_feeds` keeps the open alarm in ``feeds.alarm`` / ``alarm_since`` /
``alarm_notified_at`` (migration 0004) and records an operator notice:

* once when the alarm opens (or changes kind);
* again only after ``health.reminder_hours`` without recovery (0: never), as a reminder;
* once when the feed recovers (the alarm closes).

So an unchanged problem notifies no one on the next run, however often it runs. The caller's
transaction holds the state change and the notice together (both or neither). ``now`` comes from
the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.config import Config
from pipeline.deliver.notices import record_notice
from pipeline.net.policy import redact_url
from pipeline.store.feeds import last_ok_entries, silent_feeds
from pipeline.store.schema import Feed

__all__ = ["FeedHealth", "check_feeds", "feed_health"]


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """One feed's health, as the operator view shows it."""

    feed_id: str
    last_ok_at: datetime | None
    last_new_at: datetime | None
    consecutive_failures: int
    last_entries: int | None
    alarm: str | None
    alarm_since: datetime | None
    last_error: str | None


def feed_health(session: Session, config: Config) -> list[FeedHealth]:
    """Every configured feed's health, in the feeds file's order (a feed never fetched has Nones)."""
    rows = {f.id: f for f in session.scalars(select(Feed))}
    entries = last_ok_entries(session)
    out: list[FeedHealth] = []
    for cfg in config.feeds:
        f = rows.get(cfg.id)
        out.append(
            FeedHealth(
                cfg.id,
                f.last_ok_at if f else None,
                f.last_new_at if f else None,
                f.consecutive_failures if f else 0,
                entries.get(cfg.id),
                f.alarm if f else None,
                f.alarm_since if f else None,
                f.last_error if f else None,
            )
        )
    return out


def _problems(session: Session, config: Config, now: datetime) -> dict[str, tuple[str, str]]:
    """Feed id -> (alarm kind, what is wrong) for every enabled feed in trouble at ``now``."""
    out: dict[str, tuple[str, str]] = {}
    limit = config.health.failures_to_notify
    for feed in silent_feeds(session, config.enabled_feeds, now):
        out[feed.feed_id] = (
            "silent",
            f"has not been fetched successfully for more than {feed.max_silence_hours:g} h "
            f"(last success: {feed.last_ok_at or 'never'}; last error: {feed.last_error or 'none'})",
        )
    entries = last_ok_entries(session)
    for cfg in config.enabled_feeds:
        f = session.get(Feed, cfg.id)
        if f is None or cfg.id in out:
            continue
        if f.consecutive_failures >= limit:
            out[cfg.id] = (
                "failing",
                f"failed {f.consecutive_failures} fetches in a row (last error: {f.last_error}; "
                f"last success: {f.last_ok_at or 'never'})",
            )
        elif f.consecutive_failures == 0 and entries.get(cfg.id, cfg.min_items) < cfg.min_items:
            out[cfg.id] = (
                "few_items",
                f"returned {entries[cfg.id]} entries, fewer than its min_items={cfg.min_items}",
            )
    return out


def check_feeds(session: Session, config: Config, *, now: datetime) -> list[str]:
    """Open, remind and close feed alarms; returns the texts of the notices recorded now."""
    # Every feed row in one query, held here: the look-ups below (and in _problems and
    # silent_feeds) then find them in the session instead of one SELECT a feed (0.7 s at 1,000).
    loaded = {f.id: f for f in session.scalars(select(Feed))}
    problems = _problems(session, config, now)
    remind = timedelta(hours=config.health.reminder_hours)
    urls = {f.id: f.url for f in config.feeds}
    new: list[str] = []

    def notify(feed: Feed, kind: str, message: str) -> None:
        if record_notice(session, f"{kind}:{feed.id}:{now.isoformat()}", kind, message, now):
            new.append(message)

    for cfg in config.enabled_feeds:
        feed = loaded.get(cfg.id)
        if feed is None:
            continue
        name = f"Feed {feed.id} ({redact_url(urls[feed.id])})"
        problem = problems.get(feed.id)
        if problem is None:
            if feed.alarm is not None:
                notify(feed, "feed_recovered", f"{name} has recovered (was {feed.alarm}).")
                feed.alarm = feed.alarm_since = feed.alarm_notified_at = None
            continue
        kind, what = problem
        if feed.alarm != kind:
            feed.alarm, feed.alarm_since, feed.alarm_notified_at = kind, now, now
            notify(feed, f"feed_{kind}", f"{name} {what}.")
        elif remind and feed.alarm_notified_at and now - feed.alarm_notified_at >= remind:
            feed.alarm_notified_at = now
            since = f"{feed.alarm_since:%Y-%m-%d %H:%M} UTC" if feed.alarm_since else "?"
            notify(feed, f"feed_{kind}", f"Reminder: {name} {what}; in trouble since {since}.")
    return new
