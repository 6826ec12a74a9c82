"""Retraining: corpus + analysts' labels, a challenger beside the champion, the gate, the card, the
analysts' mail; a poisoned label batch is flagged and the gate refuses its challenger."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import NOW, ROOT

from pipeline.classify.model import doc_of
from pipeline.classify.registry import GateVerdict, load_active, promote
from pipeline.config import ModelLocations
from pipeline.training.corpus import load_items
from pipeline.training.gate import split_sha256
from pipeline.training.retrain import (
    RetrainSettings,
    comparison_message,
    judge_labels,
    merge_training,
    retrain,
)
from pipeline.training.train import train_model

# DPRK items (the round-6 file adds launches, exports and look-alikes): enough for a small champion
# that ranks its own corpus the right way round.
DPRK = (ROOT / "data" / "corpus" / "dprk.jsonl", ROOT / "data" / "corpus" / "round6_kinds.jsonl")
SMALL = RetrainSettings(candidates=("tfidf-word-lr",), folds=3, actor="test-retrain")


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "_source"}


def _write(path: Path, items: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(_clean(i)) + "\n" for i in items), encoding="utf-8")
    return path


def _label(item: dict[str, Any], n: int, *, flip: bool = False, when: str | None = None) -> dict:
    """An analyst label in the corpus format export_labels writes."""
    label = 1 - item["label"] if flip else item["label"]
    return {
        **_clean(item),
        "id": f"label-{n:04d}",
        "label": label,
        "kind": "analyst_label",
        "event_id": f"label-event-{n}",
        "labelled_by": "ana",
        "labelled_at": when or NOW.isoformat(),
    }


def _baseline(path: Path, test_dir: Path, minimum: float) -> Path:
    body = {"test_sha256": split_sha256(test_dir), "minimums": {"overall": {"f1": minimum}}}
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def champion_build(tmp_path_factory) -> dict[str, Any]:
    """A small corpus fixture, a frozen split from other events, and a small champion."""
    base = tmp_path_factory.mktemp("retrain")
    items = load_items(list(DPRK))
    frozen = items[1::6]
    frozen_events = {i["event_id"] for i in frozen}
    rest = [i for i in items if i["event_id"] not in frozen_events]
    corpus = _write(base / "corpus" / "small.jsonl", rest[::2])
    test_dir = base / "test"
    _write(test_dir / "frozen.jsonl", frozen)
    version = train_model(
        rest[::2], model_dir=base / "built", now=NOW, candidates=["tfidf-word-lr"], folds=3
    ).version
    return {"base": base, "corpus": corpus, "test": test_dir, "v1": version, "rest": rest}


@pytest.fixture
def where(champion_build, tmp_path: Path) -> ModelLocations:
    ship = tmp_path / "models"
    shutil.copytree(
        champion_build["base"] / "built" / champion_build["v1"], ship / champion_build["v1"]
    )
    promote(ship, champion_build["v1"], now=NOW, verdict=GateVerdict(champion_build["v1"], ()))
    return ModelLocations(str(tmp_path / "store"), ship, tmp_path / "cache")


def _run(where: ModelLocations, build: dict[str, Any], labels: list[dict], baseline: Path,
         settings: RetrainSettings = SMALL, conflicts: list[dict] | None = None,
         now: datetime = NOW):  # fmt: skip
    return retrain(
        where,
        corpus_paths=[build["corpus"]],
        test_path=build["test"],
        baseline_path=baseline,
        labels=labels,
        conflicts=conflicts or [],
        now=now,
        settings=settings,
    )


def test_merge_training_dedups_lets_labels_win_and_keeps_the_frozen_split_out() -> None:
    corpus = [
        {"id": "c1", "title": "Ship  transfer", "summary": "A", "label": 1, "event_id": "e1"},
        {"id": "c2", "title": "ship transfer", "summary": "a", "label": 1, "event_id": "e2"},
        {"id": "c3", "title": "Frozen", "summary": "x", "label": 0, "event_id": "frozen-e"},
        {"id": "c4", "title": "Other", "summary": "y", "label": 0, "event_id": "e4"},
    ]
    frozen = [{"id": "t1", "event_id": "frozen-e"}]
    labels = [
        {"id": "label-a", "title": "Other", "summary": "y", "label": 1, "kind": "analyst_label",
         "labelled_at": "2026-11-27T10:00:00+00:00", "event_id": "l1"},
        {"id": "label-b", "title": "New", "summary": "z", "label": 0, "kind": "analyst_label",
         "labelled_at": "2026-11-27T11:00:00+00:00", "event_id": "l2"},
    ]  # fmt: skip
    items, info = merge_training(corpus, labels, frozen)
    assert sorted(i["id"] for i in items) == ["c1", "label-a", "label-b"]
    assert info["duplicates_dropped"] == ["c2"]  # same text once normalised
    assert info["replaced_by_label"] == [{"id": "c4", "by": "label-a", "label": 1}]
    assert (info["n_items"], info["n_corpus"], info["n_labels"]) == (3, 1, 2)


@pytest.mark.slow
def test_a_challenger_that_fails_the_gate_is_refused_with_reasons_and_carded(
    where, champion_build, tmp_path: Path
) -> None:
    build = champion_build
    labels = _honest(build)
    conflicts = [{"article_id": 7, "labels": {"ana": "relevant", "bob": "not_relevant"}}]
    strict = _baseline(tmp_path / "strict.json", build["test"], 0.999)
    report = _run(where, build, labels, strict, conflicts=conflicts)
    assert not report.promoted and report.challenger and report.challenger != build["v1"]
    assert any("overall f1" in r and "0.999" in r for r in report.refused)
    assert load_active(where).version == build["v1"]  # the champion stays
    assert report.training["n_labels"] == 12 and report.training["conflicts"] == conflicts
    frozen = report.comparison["frozen"]
    assert frozen["champion"]["f1"] is not None and frozen["challenger"]["f1"] is not None
    assert report.comparison["recent_labels"]["n"] == 12
    card = (tmp_path / "store" / report.challenger / "MODEL_CARD.md").read_text()
    assert "## Retraining" in card and "refused" in card and "| frozen split f1 |" in card
    saved = json.loads((tmp_path / "store" / report.challenger / "retrain.json").read_text())
    assert saved["refused"] == list(report.refused) and saved["training"]["conflicts"] == conflicts
    subject, text, html = comparison_message(report)
    assert "refused" in subject and "champion" in text and "overall f1" in text
    assert "<table>" in html and "<script" not in html


@pytest.mark.slow
def test_a_challenger_that_passes_is_promoted_and_a_dry_run_promotes_nothing(
    where, champion_build, tmp_path: Path
) -> None:
    build = champion_build
    labels = _honest(build)
    lenient = _baseline(tmp_path / "lenient.json", build["test"], 0.0)
    dry = _run(
        where, build, labels, lenient, RetrainSettings(**{**_fields(SMALL), "dry_run": True})
    )
    assert dry.dry_run and not dry.promoted and dry.refused == ()
    assert load_active(where).version == build["v1"]
    report = _run(where, build, labels, lenient, now=NOW + timedelta(minutes=1))
    assert report.promoted and report.refused == ()
    assert load_active(where).version == report.challenger
    event = json.loads((tmp_path / "store" / "registry.json").read_text())["history"][-1]
    assert event["by"] == "test-retrain" and event["gate"]["passed"] is True
    assert not (Path(where.shipped) / report.challenger).exists()  # written to the store only


@pytest.mark.slow
def test_a_poisoned_label_batch_is_flagged_and_its_challenger_refused(
    where, champion_build, tmp_path: Path
) -> None:
    build = champion_build
    # labels of items the champion is sure about (agreeing with their corpus label by well over the
    # margin), most of them flipped: what a careless or hostile batch is. Chosen by the champion's
    # own scores, so the test does not depend on which items the corpus happens to start with.
    champion = load_active(where)
    trained_on = load_items([build["corpus"]])
    probs = champion.predict_docs([doc_of(i) for i in trained_on]).tolist()
    sure = SMALL.margin + 0.02
    confident = [
        i
        for i, p in zip(trained_on, probs, strict=True)
        if (i["label"] == 1 and p >= champion.threshold + sure)
        or (i["label"] == 0 and p <= champion.threshold - sure)
    ][:40]
    assert len(confident) >= 20, len(confident)
    poisoned = [_label(i, n, flip=n % 5 != 0) for n, i in enumerate(confident)]
    batch = judge_labels(champion, poisoned, SMALL)
    assert batch.flagged and batch.share > SMALL.max_disagreement
    honest = judge_labels(champion, [_label(i, n) for n, i in enumerate(confident)], SMALL)
    assert not honest.flagged  # the same items labelled honestly pass
    lenient = _baseline(tmp_path / "lenient.json", build["test"], 0.0)
    report = _run(where, build, poisoned, lenient)
    assert not report.promoted
    assert report.label_batch["flagged"] is True
    assert any(r.startswith("label batch flagged") for r in report.refused)
    assert load_active(where).version == build["v1"]


def _honest(build: dict[str, Any]) -> list[dict[str, Any]]:
    """Twelve labels the small champion agrees with: items of its own corpus, labelled as they are
    (held-out items would be judged by too weak a champion to be a fair honest batch)."""
    return [_label(i, n) for n, i in enumerate(load_items([build["corpus"]])[:12])]


def _fields(settings: RetrainSettings) -> dict[str, Any]:
    return {f: getattr(settings, f) for f in settings.__slots__}
