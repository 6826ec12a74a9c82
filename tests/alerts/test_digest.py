"""Daily digests through the outbox, against real databases and a real SMTP server: one message per
recipient per UTC day at/after its hour, grouped by regime and ordered by severity, nothing when
there is nothing new, idempotent per day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from builders import BASE, BASE_TITLE, FEEDS, OTHER, OTHER_TITLE, add_article, parse
from helpers import NOW
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

import pipeline.alerts.digest as digest_module
from pipeline.jobs import Runtime, compose_digests, deliver, record_alerts
from pipeline.store.schema import Delivery, Digest, DigestItem

LIBYA_TITLE = (
    "EU mission inspects cargo ship suspected of carrying armoured vehicles to eastern Libya"
)
LIBYA = (
    "Operation Irini boarded the Antigua-flagged cargo ship Nova Crest in international waters north of "
    "Benghazi on Monday and found 82 armoured vehicles in its hold, the EU naval mission said."
)
SUDAN_TITLE = "Dozens of cargo flights landed at Amdjarass airstrip near Sudan border"
SUDAN = (
    "Flight-tracking data show 86 cargo flights by Il-76 aircraft landed at Amdjarass in eastern Chad "
    "between June and August, many after departing from Abu Dhabi."
)

SUBS = [
    {"id": "desk", "recipients": ["desk@example.org"]},
    {
        "id": "daily",
        "recipients": ["daily@example.org", "desk@example.org"],
        "mode": "digest",
        "digest_hour_utc": 7,
    },
    {
        "id": "daily-libya",
        "recipients": ["libya@example.org"],
        "mode": "digest",
        "regimes": ["libya"],
        "digest_hour_utc": 9,
    },
    {
        "id": "daily-critical",
        "recipients": ["crit@example.org"],
        "mode": "digest",
        "min_severity": "critical",
    },
]
NEXT_MORNING = NOW.replace(hour=7, minute=10) + timedelta(days=1)


@pytest.fixture
def digest_rt(make_config, db_url: str, mail_sink):
    with Runtime.open(
        make_config(database_url=db_url, feeds=FEEDS, smtp_port=mail_sink.port, subscriptions=SUBS)
    ) as rt:
        yield rt


def _seed_four_stories(rt: Runtime) -> None:
    add_article(
        rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1", score=0.95
    )
    add_article(
        rt, feed="wire", title=OTHER_TITLE, summary=OTHER, url="https://wire.example/2", score=0.6
    )
    add_article(
        rt,
        feed="daily",
        title=LIBYA_TITLE,
        summary=LIBYA,
        url="https://daily.example/3",
        score=0.97,
        regimes=("libya",),
    )
    add_article(
        rt,
        feed="gazette",
        title=SUDAN_TITLE,
        summary=SUDAN,
        url="https://gazette.example/4",
        score=0.55,
        regimes=("sudan",),
    )


def test_digest_grouped_by_regime_ordered_by_severity_once_a_day(
    digest_rt: Runtime, mail_sink
) -> None:
    rt = digest_rt
    _seed_four_stories(rt)
    rec = record_alerts(rt, now=NOW)
    assert (
        rec["alerts_new"] == 4 and rec["digest_items_queued"] == 4 + 1
    )  # daily ×4, daily-libya ×1
    assert rec["digests_new"] == 0  # record_alerts queues digest items; it never composes
    assert (
        compose_digests(rt, now=NOW)["digests_new"] == 0
    )  # recorded after today's 07:00 cut-off: tomorrow's digest
    deliver(rt, now=NOW)
    # desk@ is on the immediate and the digest subscription: it gets each alert once, immediately.
    assert sorted(parse(m)["To"] for m in mail_sink.messages) == ["desk@example.org"] * 4

    assert (
        compose_digests(rt, now=NEXT_MORNING - timedelta(hours=1))["digests_new"] == 0
    )  # before 07:00
    rec = compose_digests(rt, now=NEXT_MORNING)
    assert rec["digests_new"] == 1  # daily@ only: libya@ has its hour at 09:00; crit@ has no item
    assert (
        compose_digests(rt, now=NEXT_MORNING + timedelta(minutes=15))["digests_new"] == 0
    )  # re-run
    assert deliver(rt, now=NEXT_MORNING)["sent"] == 1
    digest = parse(mail_sink.messages[-1])
    assert digest["To"] == "daily@example.org"
    assert (
        digest["Subject"] == "[sanctions-watch] Daily digest 2026-11-28 · 4 stories · highest HIGH"
    )
    assert digest.get_content_type() == "multipart/alternative"
    text = digest.get_body(("plain",)).get_content()
    html = digest.get_body(("html",)).get_content()
    # Groups: most severe first (Libya's 0.97 HIGH, DPRK's 0.95 HIGH, then Sudan's MEDIUM).
    order = [
        text.index(label)
        for label in (
            "== Libya ==",
            "== Democratic People's Republic of Korea ==",
            "== Sudan (Darfur) ==",
        )
    ]
    assert order == sorted(order)
    # Within DPRK: the HIGH story before the MEDIUM one.
    assert text.index("[HIGH] " + BASE_TITLE) < text.index("[MEDIUM] " + OTHER_TITLE)
    assert (
        'href="https://main.un.org/securitycouncil/en/sanctions/1970"' in html
        and "https://wire.example/1" in html
    )

    later = NEXT_MORNING.replace(hour=9, minute=30)
    assert compose_digests(rt, now=later)["digests_new"] == 1  # libya@ at its own hour
    deliver(rt, now=later)
    libya = parse(mail_sink.messages[-1])
    assert libya["To"] == "libya@example.org" and "1 story" in libya["Subject"]

    # The day after: nothing new, so no digest and nothing sent.
    day3 = NEXT_MORNING + timedelta(days=1)
    assert compose_digests(rt, now=day3)["digests_new"] == 0
    assert deliver(rt, now=day3)["sent"] == 0
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Digest)) == 2
        assert (
            s.scalar(
                select(func.count()).select_from(DigestItem).where(DigestItem.digest_id.is_(None))
            )
            == 0
        )
        digest_rows = s.scalars(select(Delivery).where(Delivery.alert_id.is_(None))).all()
        assert {d.status for d in digest_rows} == {"sent"} and len(
            {d.message_id for d in digest_rows}
        ) == 2


def test_empty_digest_sends_nothing(digest_rt: Runtime, mail_sink) -> None:
    rt = digest_rt
    for day in range(3):
        when = NEXT_MORNING + timedelta(days=day)
        assert compose_digests(rt, now=when)["digests_new"] == 0
        assert deliver(rt, now=when)["sent"] == 0
    assert mail_sink.messages == []


def test_story_updated_before_the_digest_appears_once_marked_updated(
    digest_rt: Runtime, mail_sink
) -> None:
    rt = digest_rt
    add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
    record_alerts(rt, now=NOW)
    for i, feed in enumerate(("daily", "gazette"), start=1):  # the same text from two more outlets
        when = NOW + timedelta(hours=i)
        add_article(
            rt, feed=feed, title=BASE_TITLE, summary=BASE, url=f"https://{feed}.example/x", now=when
        )
        record_alerts(rt, now=when)
    assert (
        compose_digests(rt, now=NEXT_MORNING)["digests_new"] == 2
    )  # daily@ and crit@ (the update is critical)
    deliver(rt, now=NEXT_MORNING)
    digests = {
        parse(m)["To"]: parse(m)
        for m in mail_sink.messages
        if "Daily digest" in parse(m)["Subject"]
    }
    text = digests["daily@example.org"].get_body(("plain",)).get_content()
    assert text.count(BASE_TITLE) == 1 and "[CRITICAL, UPDATED from HIGH]" in text
    assert "1 story" in digests["crit@example.org"]["Subject"]


def test_a_failed_or_missed_digest_run_loses_nothing_and_sends_nothing_twice(
    digest_rt: Runtime, mail_sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest DAG's job: record_alerts never composes; a run that fails while composing leaves
    nothing half-done (digest rows and outbox rows in one transaction); when the rest of the day's
    runs are missed too, the next day's run gathers every queued item; re-runs send nothing."""
    rt = digest_rt
    _seed_four_stories(rt)
    record_alerts(rt, now=NOW)
    assert deliver(rt, now=NOW)["sent"] == 4  # desk@'s immediate alerts
    assert record_alerts(rt, now=NEXT_MORNING)["digests_new"] == 0  # not its job any more
    real_insert = digest_module.insert_ignore

    def outbox_refused(session, table, rows, keys):  # the database fails on the outbox row
        if table is Delivery:
            raise OperationalError("INSERT INTO deliveries", {}, Exception("disk I/O error"))
        return real_insert(session, table, rows, keys)

    monkeypatch.setattr(digest_module, "insert_ignore", outbox_refused)
    with pytest.raises(OperationalError):
        compose_digests(rt, now=NEXT_MORNING)
    monkeypatch.undo()
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Digest)) == 0  # rolled back, whole
        assert (
            s.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.digest_id.is_not(None))
            )
            == 0
        )
    # The rest of the day's runs are missed; the day after, at 09:30, both recipients are due.
    day_after = NEXT_MORNING.replace(hour=9, minute=30) + timedelta(days=1)
    report = compose_digests(rt, now=day_after)
    assert (report.digests_new, report.items) == (2, 4 + 1)  # daily@ ×4, libya@ ×1: none lost
    assert compose_digests(rt, now=day_after + timedelta(hours=1)).digests_new == 0
    assert deliver(rt, now=day_after)["sent"] == 2
    assert deliver(rt, now=day_after + timedelta(hours=1))["sent"] == 0
    subjects = sorted(
        parse(m)["Subject"] for m in mail_sink.messages if "Daily digest" in parse(m)["Subject"]
    )
    assert len(subjects) == 2 and all("Daily digest 2026-11-29" in x for x in subjects)
    assert "4 stories" in subjects[0] + subjects[1] and "1 story" in subjects[0] + subjects[1]
    with rt.sessions() as s:
        assert (
            s.scalar(
                select(func.count()).select_from(DigestItem).where(DigestItem.digest_id.is_(None))
            )
            == 0
        )
