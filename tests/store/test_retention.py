"""Retention and maintenance (the housekeeping DAG's work): old fetch-log rows, old sent deliveries
and old articles nothing durable points at go; alerted articles, pending deliveries and recent rows
stay; VACUUM/ANALYZE (SQLite) or ANALYZE (PostgreSQL) run. Both backends."""

from __future__ import annotations

from datetime import timedelta

from builders import BASE, BASE_TITLE, FEEDS, OTHER, OTHER_TITLE, add_article
from helpers import NOW
from sqlalchemy import func, select, update

from pipeline.jobs import Runtime, housekeeping, record_alerts
from pipeline.store.articles import record_fetch
from pipeline.store.schema import Alert, Article, Classification, Delivery, FetchLog


def test_housekeeping_purges_only_what_is_old_and_unreferenced(make_config, db_url: str) -> None:
    config = make_config(
        database_url=db_url,
        feeds=FEEDS,
        settings={
            "retention": {"fetch_log_days": 30, "sent_deliveries_days": 60, "articles_days": 90}
        },
    )
    old = NOW - timedelta(days=200)
    with Runtime.open(config) as rt:
        alerted = add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w/1")
        quiet = add_article(
            rt, feed="daily", title=OTHER_TITLE, summary=OTHER, url="https://d/1", score=0.1
        )
        recent = add_article(
            rt,
            feed="gazette",
            title="Harbour news",
            summary="Nothing much.",
            url="https://g/1",
            score=0.1,
        )
        assert record_alerts(rt, now=NOW).alerts_new == 1
        with rt.sessions.begin() as s:
            for at in (old, NOW):
                record_fetch(
                    s, run_id="r", feed_id="wire", started_at=at, finished_at=at, outcome="ok"
                )
            s.execute(update(Article).where(Article.id != recent).values(first_seen_at=old))
            ids = list(s.scalars(select(Delivery.id).order_by(Delivery.id)))
            s.execute(
                update(Delivery).where(Delivery.id == ids[0]).values(status="sent", sent_at=old)
            )
        done = housekeeping(rt, now=NOW)
        again = housekeeping(rt, now=NOW)
        with rt.sessions() as s:
            articles = set(s.scalars(select(Article.id)))
            deliveries = set(s.scalars(select(Delivery.id)))
            logs = s.scalar(select(func.count()).select_from(FetchLog))
            orphans = s.scalar(
                select(func.count())
                .select_from(Classification)
                .where(Classification.article_id == quiet)
            )
            alerts = s.scalar(select(func.count()).select_from(Alert))
    assert done["fetch_log"] == 1 and logs == 1
    assert done["deliveries"] == 1 and deliveries == set(ids[1:])  # pending rows stay
    assert done["articles"] == 1 and articles == {alerted, recent} and orphans == 0
    assert alerts == 1
    assert again == {**again, "fetch_log": 0, "deliveries": 0, "articles": 0}
    assert done["maintenance"] == ("VACUUM + ANALYZE" if db_url.startswith("sqlite") else "ANALYZE")
