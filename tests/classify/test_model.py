"""The shipped model's behaviour, the score CLI, evidence and regime tagging."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import ROOT

from pipeline.classify.model import article_text
from pipeline.classify.registry import load_active
from pipeline.knowledge.regimes import load_regimes

ORIGIN = (
    "North Korea suspected of sending artillery shells and missiles to Russia",
    "U.S. and South Korean officials say Pyongyang has shipped artillery shells, missiles and thousands of "
    "containers of military equipment to Russia for its war in Ukraine. Both countries deny it, as it "
    "would violate U.N. Security Council resolutions.",
)
COUNCIL_VOTE = (
    "Security Council extends mandate of UN mission in South Sudan",
    "The 15-member Council voted 13-0 with two abstentions to renew the peacekeeping mission for a year.",
)
SUMMIT = (
    "Putin and Kim hold talks in Vladivostok, pledge closer ties",
    "The leaders discussed trade, tourism and a new road bridge across the Tumen River, state media said.",
)


@pytest.fixture(scope="module")
def model():
    return load_active(ROOT / "models")


@pytest.fixture(scope="module")
def regimes():
    return load_regimes(ROOT / "config" / "regimes.yaml")


def test_origin_story_is_flagged_with_evidence(model, regimes) -> None:
    (score,) = model.score([article_text(*ORIGIN)], regimes=regimes)
    assert score.flagged and score.score >= model.threshold
    assert score.evidence.regimes[0] == "dprk"
    assert score.evidence.sentences and score.evidence.terms
    assert any("shells" in s or "missiles" in s for s in score.evidence.sentences)


@pytest.mark.parametrize("item", [COUNCIL_VOTE, SUMMIT], ids=["council-vote", "summit"])
def test_hard_negatives_are_not_flagged(model, item) -> None:
    (score,) = model.score([article_text(*item)])
    assert not score.flagged, score


def test_scores_are_probabilities_and_deterministic(model) -> None:
    texts = [article_text(*ORIGIN), article_text(*COUNCIL_VOTE), ""]
    a, b = model.predict_proba(texts), model.predict_proba(texts)
    assert ((a >= 0) & (a <= 1)).all() and (a == b).all()


def test_regime_detection_multilingual(regimes) -> None:
    assert regimes.detect("Les houthis ont reçu des missiles iraniens")[0][0] in ("yemen", "iran")
    assert regimes.detect("북한이 탄도미사일을 발사했다")[0][0] == "dprk"
    assert regimes.detect("Ситуация в Ливии")[0][0] == "libya"
    assert regimes.detect("Weather in Paris") == []


def run_score(lines: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--config", str(ROOT / "config"), "score"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_score_cli_json_lines() -> None:
    out = run_score(
        [
            json.dumps({"id": "a", "title": ORIGIN[0], "summary": ORIGIN[1], "lang": "en"}),
            json.dumps({"id": 2, "title": COUNCIL_VOTE[0]}),
            json.dumps({"id": "c"}),
        ]
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", 2, "c"]
    assert (
        rows[0]["flagged"] is True
        and rows[0]["regimes"] == ["dprk"]
        and rows[0]["evidence"]["sentences"]
    )
    assert rows[1]["flagged"] is False
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)


def test_score_cli_names_bad_lines() -> None:
    out = run_score(
        [
            json.dumps({"id": "ok", "title": "x"}),
            "{not json",
            json.dumps({"title": "no id"}),
            json.dumps({"id": 1, "title": 5}),
        ]
    )
    assert out.returncode == 1
    assert "line 2" in out.stderr and "line 3" in out.stderr and "line 4" in out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows[0]["id"] == "ok" and {r.get("line") for r in rows[1:]} == {2, 3, 4}


def test_score_cli_two_processes_same_output_in_order() -> None:
    lines = [
        json.dumps({"id": i, "title": t, "summary": s})
        for i, (t, s) in enumerate([ORIGIN, COUNCIL_VOTE, SUMMIT] * 4)
    ]
    lines.insert(5, "not json")
    single = run_score(lines)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "--config",
            str(ROOT / "config"),
            "score",
            "--processes",
            "2",
            "--batch",
            "3",
        ],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert out.returncode == single.returncode == 1
    assert out.stdout == single.stdout
    assert json.loads(out.stdout.splitlines()[5]) == {
        "line": 6,
        "error": json.loads(single.stdout.splitlines()[5])["error"],
    }
