"""The English facts line and subject (pure): built from what was extracted, escaped like every value
from a feed, present for every alert (also one recorded before allegations existed)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from pipeline.alerts.allegation import Allegation
from pipeline.alerts.views import AlertView
from pipeline.deliver.render import facts_line, kind_phrase, render_alert, subject_for

T = datetime(2026, 3, 15, 6, 10, tzinfo=UTC)
ALLEGATION = Allegation(
    kinds=("arms-transfer", "panel-finding"),
    actors=(
        {"name": "North Korea", "type": "state", "listed": False},
        {"name": "Russia", "type": "state", "listed": False},
        {"name": "KOREA MINING DEVELOPMENT TRADING CORPORATION", "type": "entity", "listed": True},
    ),
    flows=(("North Korea", "Russia"),),
    places=("Rajin", "Dunai"),
    routes=(("Rajin", "Dunai"),),
    date="2026-03-14",
)
VIEW = AlertView(
    alert_id=3,
    title="North Korea shipped shells to Russia through Rajin",
    summary="s",
    url="https://wire.example/1",
    lang="en",
    first_seen_at=T,
    published_at=T,
    score=0.9,
    threshold=0.4,
    model_version="m",
    severity="high",
    severity_reason="r",
    regime_keys=("dprk",),
    allegation=ALLEGATION,
)


def test_facts_line_says_kind_regime_who_where_when() -> None:
    assert facts_line(VIEW) == (
        "Kind: arms transfer, panel or monitoring-team finding · Regime: DPRK · "
        "Who: North Korea → Russia; also named: KOREA MINING DEVELOPMENT TRADING CORPORATION "
        "(UN-listed) · Where: Rajin → Dunai · Date: 2026-03-14"
    )


def test_every_alert_has_a_facts_line() -> None:
    old = dataclasses.replace(VIEW, allegation=None)
    assert facts_line(old) == "Kind: not tagged · Regime: DPRK · Date: 2026-03-15"
    unclear = dataclasses.replace(VIEW, allegation=Allegation(kinds=()))
    assert facts_line(unclear).startswith("Kind: unclear · ")
    assert (
        kind_phrase(Allegation(kinds=("other",) * 5), limit=3)
        == "other breach, other breach, other breach +2"
    )


def test_subjects_say_the_kind_and_stay_english() -> None:
    assert subject_for(VIEW) == (
        "[sanctions-watch] HIGH · DPRK · Arms transfer + panel or monitoring-team finding · "
        "North Korea shipped shells to Russia through Rajin"
    )
    korean = dataclasses.replace(VIEW, lang="ko", title="북한, 러시아에 포탄 보내")
    assert subject_for(korean) == (
        "[sanctions-watch] HIGH · DPRK · Arms transfer + panel or monitoring-team finding · "
        "North Korea → Russia · Rajin → Dunai [Korean]"
    )
    # nothing extracted: the original headline, marked with its language
    bare = dataclasses.replace(korean, allegation=Allegation(kinds=None))
    assert subject_for(bare) == "[sanctions-watch] HIGH · DPRK · [Korean] 북한, 러시아에 포탄 보내"
    assert subject_for(dataclasses.replace(VIEW, allegation=None)).startswith(
        "[sanctions-watch] HIGH · DPRK · North Korea shipped"
    )


def test_extracted_names_are_escaped_and_kept_on_one_line() -> None:
    hostile = Allegation(
        kinds=("other",),
        actors=(
            {"name": '<script>alert("x")</script>\r\nBcc: a@b', "type": "vessel", "listed": False},
        ),
    )
    out = render_alert(dataclasses.replace(VIEW, allegation=hostile))
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "\n" not in out.subject and "\r" not in out.subject
    facts = next(line for line in out.text.splitlines() if line.startswith("WHAT IS ALLEGED"))
    assert "Bcc: a@b" in facts  # flattened into the line, not a header of its own
