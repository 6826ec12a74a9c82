"""The operator view's data: alert volumes by day and regime, the outbox by status with the failed
rows, latencies from publication and first sight to sending, the model in service, feed health."""

from __future__ import annotations

from datetime import timedelta

from builders import BASE, BASE_TITLE, FEEDS, OTHER, OTHER_TITLE, add_article
from helpers import NOW
from sqlalchemy import select, update

from pipeline.health.overview import operator_overview
from pipeline.jobs import Runtime, record_alerts
from pipeline.store.schema import Article, Delivery


def test_overview_counts_alerts_outbox_latency_and_model(make_config, db_url: str) -> None:
    config = make_config(
        database_url=db_url,
        feeds=FEEDS,
        subscriptions=[{"id": "all", "recipients": ["a@example.org", "b@example.org"]}],
        settings={"alerts": {"late_after_days": 0}},
    )
    with Runtime.open(config) as rt:
        first = add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w/1")
        add_article(rt, feed="daily", title=OTHER_TITLE, summary=OTHER, url="https://d/1")
        assert record_alerts(rt, now=NOW).alerts_new == 2
        with rt.sessions.begin() as s:
            s.execute(
                update(Article)
                .where(Article.id == first)
                .values(
                    published_at=NOW - timedelta(hours=4), first_seen_at=NOW - timedelta(hours=1)
                )
            )
            ids = list(s.scalars(select(Delivery.id).order_by(Delivery.id)))
            s.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids[:2]))
                .values(status="sent", sent_at=NOW + timedelta(hours=1))
            )
            s.execute(
                update(Delivery)
                .where(Delivery.id == ids[2])
                .values(status="failed", last_error="550")
            )
        with rt.sessions() as s:
            view = operator_overview(s, config, now=NOW + timedelta(hours=2), days=7)
    day = NOW.strftime("%Y-%m-%d")
    assert view.alerts_by_day_regime == {day: {"dprk": 2}}
    assert view.outbox == {"sent": 2, "failed": 1, "pending": 1}
    assert view.failed == ((ids[2], "email", "550"),)
    # The two sent rows are the first alert's (published 4 h, first seen 1 h before NOW; sent NOW+1h)
    assert view.latency.sent == 2
    assert view.latency.from_published_median_h == 5.0
    assert view.latency.from_first_seen_median_h == 2.0
    assert view.model_version == "test-v1"
    assert [f.feed_id for f in view.feeds] == [f["id"] for f in FEEDS]
