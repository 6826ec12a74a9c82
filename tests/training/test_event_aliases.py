"""One real event under two event ids: ``data/test/event_aliases.json`` decisions make a corpus event a
frozen or hold-out event (refused by ``corpus check``, never trained on); a likely pair not yet decided
is a warning, a decided non-duplicate is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ROOT

from pipeline.errors import InputError
from pipeline.training.corpus import (
    ALIASES_PATH,
    check_items,
    likely_overlaps,
    load_aliases,
    training_items,
)

BASE = {
    "summary": "", "body": "", "outlet": "synthetic-wire", "lang": "en", "label": 1,
    "regime": "dprk", "kind": "panel_finding", "style": "wire",
}  # fmt: skip
CORPUS = {
    **BASE, "id": "c-1", "title": "Panel finds coal shipped by barge in Chinese waters",
    "date": "2020-03-05", "event_id": "dprk-2020-03-panel-coal-barges",
    "event": "Panel of Experts report S/2020/151: DPRK coal exported via barges (Mar 2020)",
}  # fmt: skip
TEST = {
    **BASE, "id": "f-1", "title": "Tankers sailed dark to Nampo, UN experts say",
    "date": "2020-03-10", "event_id": "dprk-2020-03-nampo-dark-tankers",
    "event": "Panel of Experts documents tankers delivering to Nampo with AIS off (S/2020/151)",
}  # fmt: skip
OTHER = {
    **BASE, "id": "c-2", "title": "A Council vote on the Panel's mandate", "kind": "council_vote",
    "label": 0, "date": "2020-03-20", "event_id": "dprk-2020-03-panel-mandate-vote",
    "event": "Security Council renews the 1718 Panel of Experts mandate (Mar 2020)",
}  # fmt: skip


def _write(path: Path, items: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def _aliases(path: Path, same: bool, split: str = "test") -> Path:
    entry = {
        "corpus_event": CORPUS["event_id"], "test_event": TEST["event_id"], "split": split,
        "same": same, "reason": "read both",
    }  # fmt: skip
    path.write_text(json.dumps([entry]), encoding="utf-8")
    return path


@pytest.mark.parametrize("split", ["test", "holdout"])
def test_corpus_check_refuses_an_aliased_event_naming_the_file_and_the_held_out_event(
    tmp_path: Path, run_cli, split: str
) -> None:
    data = _write(tmp_path / "corpus" / "c.jsonl", [CORPUS, OTHER])
    test = tmp_path / "test"
    if split == "test":
        _write(test / "frozen.jsonl", [TEST])
    else:
        _write(test / "frozen.jsonl", [{**OTHER, "id": "f-9", "event_id": "dprk-2019-01-other"}])
        _write(tmp_path / "holdout" / "independent.jsonl", [TEST])
    alias_file = _aliases(test / "event_aliases.json", same=True, split=split)
    code, out, _ = run_cli("corpus", "check", "--data", str(data), "--test", str(test))
    report = json.loads(out)
    assert code == 1
    assert len(report["problems"]) == 1, report["problems"]
    problem = report["problems"][0]
    assert problem.startswith("c.jsonl:1: event_id 'dprk-2020-03-panel-coal-barges'")
    assert f"{split} event 'dprk-2020-03-nampo-dark-tankers'" in problem
    assert str(alias_file) in problem
    assert report["warnings"] == []


def test_an_aliased_event_is_never_trained_on_and_a_non_duplicate_is(tmp_path: Path) -> None:
    corpus = [CORPUS, OTHER]
    same = load_aliases(_aliases(tmp_path / "same.json", same=True))
    different = load_aliases(_aliases(tmp_path / "different.json", same=False))
    assert [i["id"] for i in training_items(corpus, [TEST], aliases=same)] == ["c-2"]
    assert [i["id"] for i in training_items(corpus, [TEST], aliases=different)] == ["c-1", "c-2"]
    assert training_items(corpus, [TEST], aliases=[]) == corpus


def test_training_items_reads_the_repository_alias_file_by_default() -> None:
    """The brief's example: the corpus event of Panel report S/2020/151, the hold-out's Nampo event."""
    leaked = {**CORPUS, "id": "c-9", "event_id": "dprk-2020-03-panel-s2020-151"}
    assert training_items([leaked, OTHER], []) == [OTHER]
    assert ALIASES_PATH == ROOT / "data" / "test" / "event_aliases.json"


def test_a_likely_overlap_not_yet_decided_is_a_warning_not_a_problem(tmp_path: Path) -> None:
    corpus = [{**CORPUS, "_source": "c.jsonl:1"}, {**OTHER, "_source": "c.jsonl:2"}]
    report = check_items(corpus, frozen=[TEST])
    assert report.problems == ()
    assert len(report.warnings) == 1, report.warnings
    warning = report.warnings[0]
    assert "'dprk-2020-03-panel-coal-barges'" in warning
    assert "test event 'dprk-2020-03-nampo-dark-tankers'" in warning
    assert "s/2020/151" in warning
    # The same rule, seen from the audit script's side.
    pairs = likely_overlaps(corpus, {"test": [TEST]})
    assert [(p.corpus_event, p.test_event, p.split) for p in pairs] == [
        ("dprk-2020-03-panel-coal-barges", "dprk-2020-03-nampo-dark-tankers", "test")
    ]


def test_a_decided_non_duplicate_is_no_warning_and_no_problem(tmp_path: Path) -> None:
    aliases = load_aliases(_aliases(tmp_path / "a.json", same=False))
    report = check_items([CORPUS, OTHER], frozen=[TEST], aliases=aliases)
    assert report.problems == () and report.warnings == ()


def test_far_apart_or_other_regime_events_are_not_paired() -> None:
    later = {**TEST, "event_id": "dprk-2020-06-nampo-dark-tankers"}  # three months later
    other_regime = {**TEST, "regime": "iran", "event_id": "iran-2020-03-nampo-dark-tankers"}
    assert likely_overlaps([CORPUS], {"test": [later], "holdout": [other_regime]}) == []


def test_a_malformed_alias_file_is_an_input_error_naming_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "a.json"
    bad.write_text(json.dumps([{"corpus_event": "a", "test_event": "b", "split": "train",
                                "reason": "x"}]), encoding="utf-8")  # fmt: skip
    with pytest.raises(InputError, match="entry 1: split must be one of"):
        load_aliases(bad)
    assert load_aliases(tmp_path / "absent.json") == []


def test_the_repository_alias_file_decides_the_reported_leaks() -> None:
    decided = {(a.corpus_event, a.test_event): a for a in load_aliases(ALIASES_PATH)}
    for pair, split in [
        (("none-2022-06-nuri-second", "none-2022-06-nuri-second-launch"), "test"),
        (("dprk-2020-03-panel-s2020-151", "dprk-2020-03-nampo-deliveries"), "holdout"),
        (("dprk-2017-08-res2371-adopted", "dprk-2017-08-res2371"), "holdout"),
        (("dprk-2018-08-kcs-coal-via-russia", "dprk-2018-08-coal-via-russia"), "holdout"),
    ]:
        assert decided[pair].same and decided[pair].split == split and decided[pair].reason


def test_a_hold_out_event_is_refused_by_corpus_check_and_never_trained_on() -> None:
    """The hold-out is event-disjoint from training like the frozen split: an item whose event_id is a
    hold-out event (same id, no alias needed) is a problem, and training leaves it out."""
    held = {**TEST, "id": "h-1", "event_id": CORPUS["event_id"]}
    report = check_items([CORPUS, OTHER], holdout=[held])
    assert any(
        "c-1" in p and "is a hold-out event" in p and "data/excluded/holdout_events.jsonl" in p
        for p in report.problems
    )
    assert not any("c-2" in p for p in report.problems)
    kept = training_items([CORPUS, OTHER], [], aliases=[], holdout=[held])
    assert [i["id"] for i in kept] == ["c-2"]


def test_the_repository_corpus_shares_no_event_with_the_hold_out() -> None:
    from pipeline.training.corpus import HOLDOUT_PATH, load_items

    held = {str(i["event_id"]) for i in load_items([HOLDOUT_PATH])}
    corpus = load_items([ROOT / "data" / "corpus"])
    assert held and not [i["id"] for i in corpus if str(i["event_id"]) in held]
