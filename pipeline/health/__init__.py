"""Feed health: how each feed is doing, the operator notices it raises, and the per-feed lines and
batches the Airflow ingest tasks show (:mod:`pipeline.health.feeds`, :mod:`pipeline.health.batches`).

Nothing here imports Airflow; the DAG calls these functions through :mod:`pipeline.jobs`.
"""

from __future__ import annotations

from pipeline.health.batches import feed_batches, feed_line
from pipeline.health.feeds import FeedHealth, check_feeds, feed_health

__all__ = ["FeedHealth", "check_feeds", "feed_batches", "feed_health", "feed_line"]
