"""Render one example of every message kind into docs/examples/ from fixed sample data.

    .venv/bin/python scripts/render_examples.py           # (re)write docs/examples/
    .venv/bin/python scripts/render_examples.py --check   # exit 1 if a committed example is stale

Kinds: an immediate alert (HTML, plain text and the whole .eml), an update alert, a daily digest, and
the webhook bodies (Slack, Microsoft Teams, our JSON; alert and digest). Nothing reads the clock: the
sample's times are fixed and ``NOW`` is passed in. The vessels, companies and figures are fictional;
the regime facts come from config/regimes.yaml.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.alerts.ids import message_id_for  # noqa: E402
from pipeline.alerts.severity import RULE, SeverityInput, explain_severity  # noqa: E402
from pipeline.alerts.views import (  # noqa: E402
    AlertView,
    DigestGroup,
    DigestView,
    RegimeView,
    SourceView,
)
from pipeline.deliver.mail import build_message  # noqa: E402
from pipeline.deliver.render import render_alert, render_digest  # noqa: E402
from pipeline.deliver.webhook import digest_payload, payload_for  # noqa: E402
from pipeline.knowledge.regimes import load_regimes  # noqa: E402

NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
SENDER = "sanctions-watch <alerts@sanctions-watch.invalid>"
RECIPIENT = "compliance@example.org"
FEEDBACK = "send feedback to analysts@example.org quoting alert {id}"
OUT = ROOT / "docs" / "examples"


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
    return AlertView(
        alert_id=alert_id,
        title="Tanker seen in ship-to-ship transfer with North Korean vessel off Zhoushan",
        summary=(
            "Satellite images taken on 14 March show the Togo-flagged tanker Ocean Lark 7, IMO 9386421, "
            "lying alongside the North Korean tanker Hao Fan 6 about 30 nautical miles east of Zhoushan "
            "for nearly six hours. Analysts said both ships had switched off their transponders. Security "
            "Council resolution 2397 caps North Korea's imports of refined petroleum & bans ship-to-ship "
            "transfers with North Korean vessels."
        ),
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
    )
    return DigestView(
        day="2026-03-15",
        recipient=RECIPIENT,
        generated_at=NOW,
        groups=(
            DigestGroup(_regime("dprk"), _regime("dprk").name, (update, launch)),
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
    for name, rendered in (
        ("alert", render_alert(new)),
        ("update", render_alert(update)),
        ("digest", render_digest(digest)),
    ):
        files[f"{name}.html"] = rendered.html
        files[f"{name}.txt"] = f"Subject: {rendered.subject}\n\n{rendered.text}"
    msg = build_message(
        render_alert(new),
        sender=SENDER,
        recipient=RECIPIENT,
        message_id=message_id_for(41, RECIPIENT, SENDER),
        date=NOW,
    )
    msg.set_boundary("===============sanctions-watch-example==")
    files["alert.eml"] = msg.as_bytes().decode("utf-8").replace("\r\n", "\n")
    for fmt in ("slack", "teams", "json"):
        files[f"webhook-{fmt}.json"] = (
            json.dumps(payload_for(new, fmt), indent=2, ensure_ascii=False) + "\n"
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
