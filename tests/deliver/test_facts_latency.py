"""Facts and latency in every message: the English facts line and the breach kinds in each digest entry
(text, HTML, Slack, Teams, JSON), a Korean story's digest entry through the SMTP sink (aiosmtpd), and
the latency from publication and from first sight to sending, shown in the alert mail and recorded on
its delivery row (issue 14, issue 11 item 5)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from builders import BASE, BASE_TITLE, FEEDS, add_article, parse
from helpers import NOW
from sqlalchemy import select

from pipeline.alerts.allegation import Allegation
from pipeline.alerts.views import AlertView, DigestGroup, DigestView, RegimeView
from pipeline.deliver.render import duration_text, latency_for, render_alert, render_digest
from pipeline.deliver.webhook import digest_payload, payload_for
from pipeline.jobs import Runtime, compose_digests, deliver, record_alerts
from pipeline.store.schema import Delivery

HANGUL = re.compile(r"[\uac00-\ud7af]")
T = datetime(2026, 3, 15, 7, 40, tzinfo=UTC)
SENT = datetime(2026, 3, 16, 7, 5, tzinfo=UTC)
DPRK = RegimeView("dprk", "Democratic People's Republic of Korea", "1718 Committee",
                  "https://main.un.org/securitycouncil/en/sanctions/1718", (1718,))  # fmt: skip
KO_TITLE = "북한, 나진항서 러시아에 포탄 컨테이너 보내"
KO_VIEW = AlertView(
    alert_id=43,
    title=KO_TITLE,
    summary="컨테이너는 나진항에서 블라디보스토크로 옮겨졌다.",
    url="https://daily.example/ko/1",
    lang="ko",
    first_seen_at=T + timedelta(minutes=4),
    published_at=T,
    score=0.93,
    threshold=0.31,
    model_version="m1",
    severity="high",
    severity_reason="score 0.93 → high ⇒ high",
    evidence_sentences=("컨테이너는 나진항에서 블라디보스토크로 옮겨졌다.",),
    regimes=(DPRK,),
    story_id=23,
    regime_keys=("dprk",),
    allegation=Allegation(
        kinds=("arms-transfer",),
        actors=(
            {"name": "North Korea", "type": "state", "listed": False},
            {"name": "Russia", "type": "state", "listed": False},
        ),
        flows=(("North Korea", "Russia"),),
        places=("Rajin", "Vladivostok"),
        routes=(("Rajin", "Vladivostok"),),
        date="2026-03-15",
    ),
)
FACTS = (
    "Kind: arms transfer · Regime: DPRK · Who: North Korea → Russia · "
    "Where: Rajin → Vladivostok · Date: 2026-03-15"
)
DIGEST = DigestView(
    day="2026-03-16",
    recipient="daily@example.org",
    generated_at=SENT,
    groups=(DigestGroup(DPRK, DPRK.name, (KO_VIEW,)),),
)
DIGEST_LATENCY = (
    "Published 23 h 25 min before this digest was sent; first seen by us 23 h 21 min before."
)


# ------------------------------------------------------------------------------------- latency


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=59), "under 1 min"),
        (timedelta(minutes=4, seconds=59), "4 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(hours=3, minutes=10), "3 h 10 min"),
        (timedelta(days=2, hours=5, minutes=59), "2 d 5 h"),
        (timedelta(days=1), "1 d"),
        (timedelta(days=1215, hours=20), "1215 d"),
        (timedelta(seconds=-5), "under 1 min"),
    ],
)
def test_duration_text(delta: timedelta, text: str) -> None:
    assert duration_text(delta) == text


def test_latency_wording_without_a_publication_time_and_with_a_feed_clock_ahead() -> None:
    assert latency_for(KO_VIEW, None) is None
    lat = latency_for(KO_VIEW, T + timedelta(hours=3, minutes=10))
    assert lat is not None and (lat.published_seconds, lat.first_seen_seconds) == (11400, 11160)
    assert lat.text() == (
        "Published 3 h 10 min before this alert was sent; first seen by us 3 h 6 min before."
    )
    undated = latency_for(
        AlertView(**{**_fields(KO_VIEW), "published_at": None}), T + timedelta(hours=1)
    )
    assert undated is not None and undated.published_seconds is None
    assert undated.text() == (
        "Publication time not given by the feed; first seen by us 56 min before this alert was sent."
    )
    ahead = latency_for(
        AlertView(**{**_fields(KO_VIEW), "published_at": T + timedelta(hours=2)}),
        T + timedelta(hours=1),
    )
    assert ahead is not None and ahead.published_seconds == -3600
    assert ahead.text().startswith("Published (by the feed's clock) 1 h after this alert was sent")


def _fields(view: AlertView) -> dict[str, object]:
    return {name: getattr(view, name) for name in view.__dataclass_fields__}


def test_an_alert_rendered_without_a_sending_time_claims_no_latency() -> None:
    out = render_alert(KO_VIEW)
    assert "before this alert was sent" not in out.text + out.html
    sent = render_alert(KO_VIEW, sent_at=T + timedelta(minutes=9))
    line = "Published 9 min before this alert was sent; first seen by us 5 min before."
    assert line in sent.text and line in sent.html


# ------------------------------------------------------------------------------- digest entries


def test_digest_entry_text_and_html_carry_the_english_facts_line_and_latency() -> None:
    out = render_digest(DIGEST)
    assert f"   In English: {FACTS}" in out.text and "(headline in Korean)" in out.text
    assert DIGEST_LATENCY in out.text and KO_TITLE in out.text  # the original headline kept
    assert f"<b>What is alleged:</b> {FACTS.replace('→', '→')}" in out.html
    assert DIGEST_LATENCY in out.html and 'lang="ko"' in out.html


def test_digest_webhook_payloads_carry_facts_and_kinds_for_each_entry() -> None:
    slack = json.dumps(digest_payload(DIGEST, "slack"), ensure_ascii=False)
    assert f"_What is alleged:_ {FACTS}" in slack and DIGEST_LATENCY in slack
    assert "_Original headline (Korean):_" in slack
    teams = digest_payload(DIGEST, "teams")["attachments"][0]["content"]["body"]
    runs = [r["text"] for block in teams for r in block["inlines"]]
    assert FACTS in runs and DIGEST_LATENCY in runs
    (entry,) = digest_payload(DIGEST, "json")["groups"][0]["alerts"]
    assert entry["facts"] == FACTS and entry["breach_kinds"] == "arms transfer"
    assert entry["allegation"]["kinds"] == ["arms-transfer"]
    assert entry["allegation"]["flows"] == [["North Korea", "Russia"]]
    assert entry["latency"]["from_published_seconds"] == 23 * 3600 + 25 * 60


@pytest.mark.parametrize("fmt", ["slack", "teams", "json"])
def test_alert_payloads_without_an_allegation_say_not_tagged(fmt: str) -> None:
    """An alert recorded before allegations existed still gets a facts line (kind "not tagged")."""
    old = AlertView(**{**_fields(KO_VIEW), "allegation": None})
    raw = json.dumps(payload_for(old, fmt, sent_at=SENT), ensure_ascii=False)
    assert "Kind: not tagged · Regime: DPRK · Date: 2026-03-15" in raw
    assert "Published 23 h 25 min before this alert was sent" in raw


# ------------------------------------------------------------------------- end to end, SMTP sink

KOREAN_TITLE = '북한, 나진항서 러시아에 포탄 컨테이너 300여 개 보내…정부 "안보리 결의 위반"'
KOREAN = (
    "정부 소식통은 15일 위성사진 분석 결과 북한이 러시아에 포탄과 탄약이 담긴 컨테이너 약 300개를 "
    "보냈다고 밝혔다. 컨테이너는 나진항에서 블라디보스토크로 옮겨졌다."
)
SUBS = [
    {"id": "desk", "recipients": ["desk@example.org"]},
    {"id": "daily", "recipients": ["daily@example.org"], "mode": "digest", "digest_hour_utc": 7},
]


def test_digest_mail_shows_english_facts_for_a_korean_story_and_alerts_record_latency(
    make_config, db_url: str, mail_sink
) -> None:
    config = make_config(
        database_url=db_url, feeds=FEEDS, smtp_port=mail_sink.port, subscriptions=SUBS
    )
    with Runtime.open(config) as rt:
        add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://wire.example/1")
        add_article(
            rt, feed="daily", title=KOREAN_TITLE, summary=KOREAN, url="https://daily.example/ko/1",
            lang="ko", regimes=("dprk",),
        )  # fmt: skip
        assert record_alerts(rt, now=NOW)["alerts_new"] == 2
        sent_at = NOW + timedelta(minutes=7)
        assert deliver(rt, now=sent_at)["sent"] == 2
        immediate = [parse(m) for m in mail_sink.messages]
        # the immediate alerts: the latency line, and the same figures on their delivery rows
        for msg in immediate:
            text = msg.get_body(("plain",)).get_content()
            html = msg.get_body(("html",)).get_content()
            line = "Published 37 min before this alert was sent; first seen by us 7 min before."
            assert line in text and line in html
        with rt.sessions() as s:
            rows = s.scalars(select(Delivery).where(Delivery.alert_id.is_not(None))).all()
            assert {(r.latency_published_s, r.latency_first_seen_s) for r in rows} == {(2220, 420)}
        morning = NOW.replace(hour=7, minute=10) + timedelta(days=1)
        assert compose_digests(rt, now=morning)["digests_new"] == 1
        assert deliver(rt, now=morning)["sent"] == 1
        with rt.sessions() as s:
            digest_row = s.scalars(select(Delivery).where(Delivery.digest_id.is_not(None))).one()
            assert digest_row.status == "sent" and digest_row.latency_first_seen_s is None
    digest = parse(mail_sink.messages[-1])
    assert digest["To"] == "daily@example.org"
    text = digest.get_body(("plain",)).get_content()
    html = digest.get_body(("html",)).get_content()
    facts = [line.strip() for line in text.splitlines() if line.strip().startswith("In English:")]
    assert len(facts) == 2 and not any(HANGUL.search(f) for f in facts)
    korean = next(f for f in facts if "Rajin" in f)
    assert korean.startswith("In English: Kind: arms transfer · Regime: DPRK")
    assert "Who: North Korea → Russia" in korean and "Where: Rajin → Vladivostok" in korean
    assert KOREAN_TITLE in text and "(headline in Korean)" in text  # the original kept beside it
    english = next(f for f in facts if "Rajin" not in f)
    assert "Kind: ship-to-ship transfer" in english and "Zhoushan" in english
    assert text.count("before this digest was sent") == 2
    assert html.count("<b>What is alleged:</b> Kind: ") == 2


def test_a_long_slack_digest_group_continues_in_further_sections_with_every_entry_whole() -> None:
    views = tuple(
        AlertView(**{**_fields(KO_VIEW), "alert_id": i, "title": f"Story {i} " + "x" * 150})
        for i in range(1, 21)
    )
    digest = DigestView("2026-03-16", "d@example.org", SENT, (DigestGroup(DPRK, DPRK.name, views),))
    sections = [b["text"]["text"] for b in digest_payload(digest, "slack")["blocks"][1:]]
    assert len(sections) > 1 and all(len(t) <= 3000 for t in sections)
    assert sections[0].startswith(f"*{DPRK.name}*") and not any("…" in t for t in sections)
    joined = "\n".join(sections)
    assert [f"alert {i}\n" in joined for i in range(1, 21)] == [True] * 20
    assert joined.count("_What is alleged:_") == 20
