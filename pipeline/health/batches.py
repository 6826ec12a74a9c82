"""Feeds in batches (one Airflow mapped task instance each) and the one line per feed its log shows.

Guarantees: every enabled feed is in exactly one batch, in the feeds file's order, so a batch's
map index names the same feeds from run to run while the feeds file is unchanged; a feed's line
says in one line what its fetch did, with counts, or why it failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.config import FeedConfig
from pipeline.reports import FeedOutcome

__all__ = ["feed_batches", "feed_line"]


def feed_batches(feeds: Sequence[FeedConfig], size: int) -> list[list[str]]:
    """The ids of ``feeds`` cut into consecutive batches of at most ``size`` (at least 1)."""
    ids = [f.id for f in feeds]
    step = max(1, size)
    return [ids[i : i + step] for i in range(0, len(ids), step)]


def feed_line(outcome: FeedOutcome, *, min_items: int = 0) -> str:
    """One line: ``feed X: ok, 12 entries, 3 new, 1 updated, 8 duplicates, 0 skipped`` (with a
    ``below min_items`` mark), ``feed X: not modified`` or ``feed X: FAILED: reason``."""
    if outcome.outcome == "error":
        return f"feed {outcome.feed_id}: FAILED: {outcome.error}"
    if outcome.outcome == "not_modified":
        why = "the same body as last time, not parsed" if outcome.same_body else "304"
        return f"feed {outcome.feed_id}: not modified ({why})"
    line = (
        f"feed {outcome.feed_id}: ok, {outcome.entries_seen} entries, {outcome.articles_new} new, "
        f"{outcome.articles_updated} updated, {outcome.duplicates} duplicates, "
        f"{outcome.skipped} skipped"
    )
    if outcome.entries_seen < min_items:
        line += f" (below min_items={min_items})"
    return line
