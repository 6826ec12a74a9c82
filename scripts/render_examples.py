"""Render one example of every message kind into docs/examples/ from fixed sample data.

    .venv/bin/python scripts/render_examples.py           # (re)write docs/examples/
    .venv/bin/python scripts/render_examples.py --check   # exit 1 if a committed example is stale

Kinds: an immediate alert (HTML, plain text and the whole .eml), the same for a story in Korean
(subject and facts line in English, the original beside them), an update alert, a daily digest, and
the webhook bodies (Slack, Microsoft Teams, our JSON; alert and digest). Nothing reads the clock: the
sample's times are fixed and ``NOW`` is passed in as the sending time (the latency each alert and digest
entry shows is counted to it, as the outbox does). The vessels, companies and figures are fictional;
the regime facts come from config/regimes.yaml. Who and where are extracted from the sample texts by
the real extractor (config/actors.yaml, config/places.yaml); the kinds are fixed here, as the
tagger would give them, so the examples do not change when the tagger is retrained.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.alerts.allegation import Allegation  # noqa: E402
from pipeline.alerts.describe import Describer  # noqa: E402
from pipeline.alerts.ids import message_id_for  # noqa: E402
from pipeline.alerts.severity import RULE, SeverityInput, explain_severity  # noqa: E402
from pipeline.alerts.views import (  # noqa: E402
    AlertView,
    DigestGroup,
    DigestView,
    RegimeView,
    SourceView,
)
from pipeline.classify.stopwords import meaningful_terms  # noqa: E402
from pipeline.deliver.mail import build_message  # noqa: E402
from pipeline.deliver.render import render_alert, render_digest  # noqa: E402
from pipeline.deliver.webhook import digest_payload, payload_for  # noqa: E402
from pipeline.knowledge.actors import load_actors  # noqa: E402
from pipeline.knowledge.places import load_places  # noqa: E402
from pipeline.knowledge.regimes import load_regimes  # noqa: E402

NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
SENDER = "sanctions-watch <alerts@sanctions-watch.invalid>"
RECIPIENT = "compliance@example.org"
FEEDBACK = "send feedback to analysts@example.org quoting alert {id}"
OUT = ROOT / "docs" / "examples"


def _allegation(texts: list[tuple[str, str]], kinds: tuple[str, ...], when: datetime) -> Allegation:
    """Who and where by the extractor, with the kinds given (see the module docstring)."""
    config = ROOT / "config"
    describer = Describer(
        tagger=None,
        actors=load_actors(config / "actors.yaml", config / "regimes.yaml", config / "places.yaml"),
        places=load_places(config / "places.yaml"),
    )
    found = describer.describe_texts(texts, date=when)
    return Allegation(kinds, actors=found.actors, flows=found.flows, places=found.places,
                      routes=found.routes, date=found.date)  # fmt: skip


def _regime(key: str) -> RegimeView:
    r = load_regimes(ROOT / "config" / "regimes.yaml").get(key)
    assert r is not None
    return RegimeView(r.key, r.name, r.committee, r.url, r.resolutions)


def _sources(n: int) -> tuple[SourceView, ...]:
    t = datetime(2026, 3, 15, 6, 10, tzinfo=UTC)
    all_sources = (
        SourceView(
            "World Wire",
            "https://wire.example/asia/2026/03/15/tanker-sts-zhoushan",
            t,
            "Tanker seen in ship-to-ship transfer with North Korean vessel off Zhoushan",
            "en",
            t + timedelta(minutes=5),
        ),
        SourceView(
            "Daily Courier",
            "https://daily.example/world/satellite-tanker-north-korea",
            t + timedelta(hours=1),
            "Satellite images show tanker alongside North Korean ship near Zhoushan",
            "en",
            t + timedelta(hours=1, minutes=10),
        ),
        SourceView(
            "Le Journal",
            "https://journal.example/monde/petrolier-transbordement",
            t + timedelta(hours=2),
            "Un pétrolier repéré lors d'un transbordement avec un navire nord-coréen au large de Zhoushan",
            "fr",
            t + timedelta(hours=2, minutes=20),
        ),
    )
    return all_sources[:n]


def _alert(alert_id: int, *, kind: str, sources: int, previous: str | None = None) -> AlertView:
    designated = ("HAO FAN 6 (vessel, IMO 8628597, DPRK)",)
    sev_in = SeverityInput(
        score=0.82,
        threshold=0.31,
        designated_matches=len(designated),
        sources=sources,
        regimes=("dprk",),
    )
    reason = explain_severity(sev_in)
    severity = reason.rsplit("⇒ ", 1)[1]
    title = "Tanker seen in ship-to-ship transfer with North Korean vessel off Zhoushan"
    summary = (
        "Satellite images taken on 14 March show the Togo-flagged tanker Ocean Lark 7, IMO 9386421, "
        "lying alongside the North Korean tanker Hao Fan 6 about 30 nautical miles east of Zhoushan "
        "for nearly six hours. Analysts said both ships had switched off their transponders. Security "
        "Council resolution 2397 caps North Korea's imports of refined petroleum & bans ship-to-ship "
        "transfers with North Korean vessels."
    )
    published = datetime(2026, 3, 15, 6, 10, tzinfo=UTC)
    return AlertView(
        alert_id=alert_id,
        title=title,
        summary=summary,
        url="https://wire.example/asia/2026/03/15/tanker-sts-zhoushan",
        lang="en",
        first_seen_at=datetime(2026, 3, 15, 6, 15, tzinfo=UTC),
        published_at=datetime(2026, 3, 15, 6, 10, tzinfo=UTC),
        score=0.82,
        threshold=0.31,
        model_version="20261127-043440-fusiontfidfe-8acaf0",
        severity=severity,
        severity_reason=reason,
        sources=_sources(sources),
        evidence_sentences=(
            "Satellite images taken on 14 March show the Togo-flagged tanker Ocean Lark 7 lying alongside the North Korean tanker Hao Fan 6 for nearly six hours.",
            "Analysts said both ships had switched off their transponders.",
        ),
        evidence_terms=("ship-to-ship", "north korean", "transponders", "tanker"),
        regimes=(_regime("dprk"),),
        designated=designated,
        feedback=FEEDBACK.format(id=alert_id),
        kind=kind,
        previous_severity=previous,
        story_id=17,
        rule=RULE,
        independent_sources=sources,
        regime_keys=("dprk",),
        allegation=_allegation(
            [(f"{title}\n{summary}", "en")], ("ship-to-ship", "oil-above-cap"), published
        ),
    )


def _korean(alert_id: int) -> AlertView:
    """A story in Korean: subject and facts line in English, the original headline and evidence kept."""
    title = '북한, 나진항서 러시아에 포탄 컨테이너 300여 개 보내…정부 "안보리 결의 위반"'
    summary = (
        "정부 소식통은 15일 위성사진 분석 결과 북한이 러시아에 포탄과 탄약이 담긴 컨테이너 약 300개를 "
        "보냈다고 밝혔다. 컨테이너는 나진항에서 블라디보스토크로 옮겨졌다. 정부는 북한과의 모든 무기 "
        "거래를 금지한 유엔 안보리 결의 위반이라고 밝혔다."
    )
    t = datetime(2026, 3, 15, 7, 40, tzinfo=UTC)
    url = "https://daily.example/ko/politics/2026/03/15/rajin-containers"
    sev_in = SeverityInput(
        score=0.93, threshold=0.31, designated_matches=0, sources=1, regimes=("dprk",)
    )
    reason = explain_severity(sev_in)
    return AlertView(
        alert_id=alert_id,
        title=title,
        summary=summary,
        url=url,
        lang="ko",
        first_seen_at=t + timedelta(minutes=4),
        published_at=t,
        score=0.93,
        threshold=0.31,
        model_version="20261127-043440-fusiontfidfe-8acaf0",
        severity=reason.rsplit("⇒ ", 1)[1],
        severity_reason=reason,
        sources=(
            SourceView(
                "Daily Courier (Korean edition)", url, t, title, "ko", t + timedelta(minutes=4)
            ),
        ),
        evidence_sentences=(
            "정부 소식통은 15일 위성사진 분석 결과 북한이 러시아에 포탄과 탄약이 담긴 컨테이너 약 300개를 보냈다고 밝혔다.",
            "컨테이너는 나진항에서 블라디보스토크로 옮겨졌다.",
        ),
        # what the model gives, function words ("밝혔다" said, "있다" is) removed as the view does
        evidence_terms=meaningful_terms(("밝혔다", "포탄", "있다", "컨테이너", "것으로"), "ko"),
        regimes=(_regime("dprk"),),
        feedback=FEEDBACK.format(id=alert_id),
        story_id=23,
        rule=RULE,
        regime_keys=("dprk",),
        allegation=_allegation([(f"{title}\n{summary}", "ko")], ("arms-transfer",), t),
    )


def _other(
    alert_id: int,
    title: str,
    regime: str,
    score: float,
    severity: str,
    reason: str,
    url: str,
    sentence: str,
    kinds: tuple[str, ...],
) -> AlertView:
    t = datetime(2026, 3, 14, 15, 0, tzinfo=UTC)
    return AlertView(
        alert_id=alert_id,
        title=title,
        summary=sentence,
        url=url,
        lang="en",
        first_seen_at=t,
        published_at=t,
        score=score,
        threshold=0.31,
        model_version="20261127-043440-fusiontfidfe-8acaf0",
        severity=severity,
        severity_reason=reason,
        sources=(SourceView("World Wire", url, t, title, "en", t),),
        evidence_sentences=(sentence,),
        evidence_terms=(),
        regimes=(_regime(regime),),
        designated=(),
        feedback=FEEDBACK.format(id=alert_id),
        story_id=alert_id + 100,
        rule=RULE,
        regime_keys=(regime,),
        allegation=_allegation([(f"{title}\n{sentence}", "en")], kinds, t),
    )


def _digest() -> DigestView:
    update = _alert(42, kind="update", sources=3, previous="high")
    launch = _other(
        39,
        "North Korea fires two short-range ballistic missiles into the sea",
        "dprk",
        0.88,
        "medium",
        "score 0.88 → medium ⇒ medium",
        "https://wire.example/asia/2026/03/14/missile-launch",
        "North Korea launched two short-range ballistic missiles from the Pyongyang area, the Joint Chiefs of Staff said.",
        ("banned-launch",),
    )
    irini = _other(
        40,
        "EU mission inspects cargo ship suspected of carrying armoured vehicles to eastern Libya",
        "libya",
        0.97,
        "high",
        "score 0.97 → high ⇒ high",
        "https://wire.example/africa/2026/03/14/irini-inspection",
        "Operation Irini boarded the cargo ship Nova Crest north of Benghazi and found 82 armoured vehicles in its hold.",
        ("arms-transfer",),
    )
    return DigestView(
        day="2026-03-15",
        recipient=RECIPIENT,
        generated_at=NOW,
        groups=(
            DigestGroup(_regime("dprk"), _regime("dprk").name, (update, _korean(43), launch)),
            DigestGroup(_regime("libya"), _regime("libya").name, (irini,)),
        ),
        feedback="send feedback to analysts@example.org quoting the alert id",
        rule=RULE,
    )


def render_all() -> dict[str, str]:
    """File name → content of every example."""
    new = _alert(41, kind="new", sources=1)
    update = _alert(42, kind="update", sources=3, previous="high")
    digest = _digest()
    files: dict[str, str] = {}
    korean = _korean(43)
    for name, rendered in (
        ("alert", render_alert(new, sent_at=NOW)),
        ("alert-ko", render_alert(korean, sent_at=NOW)),
        ("update", render_alert(update, sent_at=NOW)),
        ("digest", render_digest(digest)),
    ):
        files[f"{name}.html"] = rendered.html
        files[f"{name}.txt"] = f"Subject: {rendered.subject}\n\n{rendered.text}"
    msg = build_message(
        render_alert(new, sent_at=NOW),
        sender=SENDER,
        recipient=RECIPIENT,
        message_id=message_id_for(41, RECIPIENT, SENDER),
        date=NOW,
    )
    msg.set_boundary("===============sanctions-watch-example==")
    files["alert.eml"] = msg.as_bytes().decode("utf-8").replace("\r\n", "\n")
    msg = build_message(
        render_alert(korean, sent_at=NOW),
        sender=SENDER,
        recipient=RECIPIENT,
        message_id=message_id_for(43, RECIPIENT, SENDER),
        date=NOW,
    )
    msg.set_boundary("===============sanctions-watch-example-ko==")
    files["alert-ko.eml"] = msg.as_bytes().decode("utf-8").replace("\r\n", "\n")
    for fmt in ("slack", "teams", "json"):
        files[f"webhook-{fmt}.json"] = (
            json.dumps(payload_for(new, fmt, sent_at=NOW), indent=2, ensure_ascii=False) + "\n"
        )
    files["webhook-slack-ko.json"] = (
        json.dumps(payload_for(korean, "slack", sent_at=NOW), indent=2, ensure_ascii=False) + "\n"
    )
    files["webhook-teams-digest.json"] = (
        json.dumps(digest_payload(digest, "teams"), indent=2, ensure_ascii=False) + "\n"
    )
    files["webhook-slack-digest.json"] = (
        json.dumps(digest_payload(digest, "slack"), indent=2, ensure_ascii=False) + "\n"
    )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/examples/ is stale")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    files = render_all()
    if args.check:
        stale = [
            n
            for n, text in files.items()
            if not (args.out / n).exists() or (args.out / n).read_text(encoding="utf-8") != text
        ]
        if stale:
            print(
                "stale examples (run scripts/render_examples.py): " + ", ".join(sorted(stale)),
                file=sys.stderr,
            )
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} examples to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
