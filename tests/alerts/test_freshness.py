"""Freshness: a story first published long before we first saw it is stored and scored, then alerted
as LATE (subject and body say so, with its age) or not at all, by the ``alerts.late_items`` setting;
a fresh one is alerted as before. Real database, real SMTP sink."""

from __future__ import annotations

from datetime import timedelta

import pytest
from builders import BASE, BASE_TITLE, FEEDS, OTHER, OTHER_TITLE, add_article, parse
from helpers import NOW
from sqlalchemy import select, update

from pipeline.jobs import Runtime, deliver, record_alerts
from pipeline.store.schema import Alert, Article


def _two_stories(rt: Runtime) -> tuple[int, int]:
    old = add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w/old")
    fresh = add_article(rt, feed="daily", title=OTHER_TITLE, summary=OTHER, url="https://d/new")
    assert old is not None and fresh is not None
    with rt.sessions.begin() as s:  # first published in August 2023, first seen now
        s.execute(
            update(Article).where(Article.id == old).values(published_at=NOW - timedelta(days=1200))
        )
    return old, fresh


@pytest.mark.parametrize("mode", ["mark", "drop"])
def test_an_old_story_alerts_late_or_not_at_all(make_config, db_url: str, mail_sink, mode) -> None:
    config = make_config(
        database_url=db_url,
        feeds=FEEDS,
        smtp_port=mail_sink.port,
        subscriptions=[{"id": "all", "recipients": ["a@example.org"]}],
        settings={"alerts": {"late_after_days": 7, "late_items": mode}},
    )
    with Runtime.open(config) as rt:
        old, fresh = _two_stories(rt)
        record_alerts(rt, now=NOW)
        deliver(rt, now=NOW)
        with rt.sessions() as s:
            alerted = {a.article_id: a.details for a in s.scalars(select(Alert))}
    subjects = {str(parse(m)["Subject"]): parse(m) for m in mail_sink.messages}
    assert fresh in alerted and "late_days" not in alerted[fresh]
    fresh_subjects = [x for x in subjects if "LATE" not in x]
    assert len(fresh_subjects) == 1
    if mode == "drop":
        assert old not in alerted and len(subjects) == 1
        return
    assert alerted[old]["late_days"] == 1200.0
    late = [x for x in subjects if "LATE (1200 days old)" in x]
    assert len(late) == 1 and len(subjects) == 2
    body = subjects[late[0]].get_body(("plain",)).get_content()
    assert "LATE: published 1200 days before it was first seen" in body
    html = subjects[late[0]].get_body(("html",)).get_content()
    assert "LATE: published 1200 days before it was first seen" in html


def test_freshness_off_alerts_old_stories_as_new(make_config, db_url: str) -> None:
    config = make_config(
        database_url=db_url, feeds=FEEDS, settings={"alerts": {"late_after_days": 0}}
    )
    with Runtime.open(config) as rt:
        old, _ = _two_stories(rt)
        record_alerts(rt, now=NOW)
        with rt.sessions() as s:
            details = s.scalars(select(Alert.details).where(Alert.article_id == old)).one()
    assert "late_days" not in details
