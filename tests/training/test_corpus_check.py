"""``corpus check``: allowed regime/kind/style values, every problem reported, frozen events refused;
``evaluate --errors`` lists the misclassified items."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import ROOT

from pipeline.training.corpus import check_items, load_items

GOOD = {
    "id": "t-1", "title": "Tanker met a North Korean ship off Nampo", "summary": "", "body": "",
    "date": "2024-03-01", "outlet": "synthetic-wire", "lang": "en", "label": 1, "regime": "dprk",
    "kind": "ship_to_ship", "event": "x (Mar 2024)", "event_id": "dprk-2024-03-nampo-sts",
    "style": "wire",
}  # fmt: skip


def _write(path: Path, items: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def test_every_problem_is_reported_with_its_line(tmp_path: Path, run_cli) -> None:
    items = [
        GOOD,
        {**GOOD, "id": "t-2", "title": "b", "regime": "dprk_korea", "kind": "smuggling",
         "style": "tweet"},
        {**GOOD, "id": "t-3", "title": "c", "style": "article", "kind": "everyday_news",
         "regime": "none", "label": 0},
        {k: v for k, v in GOOD.items() if k not in ("lang", "kind")} | {"id": "t-4", "title": "d"},
        {**GOOD, "id": "t-5", "title": "e", "label": 2},
    ]  # fmt: skip
    data = _write(tmp_path / "c.jsonl", items)
    test = tmp_path / "test"
    test.mkdir()
    _write(test / "frozen.jsonl", [{**GOOD, "id": "f-1", "event_id": "dprk-2020-01-other"}])
    code, out, _ = run_cli("corpus", "check", "--data", str(data), "--test", str(test))
    problems = json.loads(out)["problems"]
    assert code == 1
    assert any("c.jsonl:2: regime 'dprk_korea'" in p for p in problems)
    assert any("c.jsonl:2: kind 'smuggling'" in p for p in problems)
    assert any("c.jsonl:2: style 'tweet'" in p for p in problems)
    assert any("c.jsonl:4: missing keys ['lang', 'kind']" in p for p in problems)
    assert any("c.jsonl:5: label must be 0 or 1" in p for p in problems)
    assert not any("c.jsonl:3" in p or "c.jsonl:1" in p for p in problems)  # article, everyday


def test_an_item_about_a_frozen_event_is_refused(tmp_path: Path) -> None:
    frozen = [{**GOOD, "id": "f-1", "_source": "frozen.jsonl:1"}]
    later = {**GOOD, "id": "t-9", "title": "A later story", "_source": "c.jsonl:1"}
    problems = check_items([later], frozen=frozen).problems
    assert len(problems) == 1 and "is in the frozen test split" in problems[0]
    assert check_items([later]).problems == ()


def test_the_real_corpus_uses_only_allowed_values() -> None:
    problems = check_items(load_items([ROOT / "data" / "corpus"])).problems
    assert not [p for p in problems if "allowed values" in p], problems[:5]


def test_evaluate_errors_lists_misclassified_ids_with_score_and_kind(
    tmp_path: Path, run_cli, make_config
) -> None:
    items = load_items([ROOT / "data" / "test" / "frozen.jsonl"])[:40]
    flipped = [{k: v for k, v in i.items() if k != "_source"} for i in items]
    flipped[0]["label"] = 1 - flipped[0]["label"]  # certainly wrong for one side of the threshold
    data = _write(tmp_path / "e.jsonl", flipped)
    config = make_config()
    code, out, _ = run_cli("evaluate", "--data", str(data), "--errors",
                           "--config", str(config.config_dir))  # fmt: skip
    assert code == 0
    listing = out.split("misclassified:")[1].splitlines()[2:]
    rows = {line.split()[0]: line.split() for line in listing if line.strip()}
    assert rows, out
    for row in rows.values():
        assert row[1] in ("0", "1") and 0 <= float(row[2]) <= 1 and row[3]
    ids = {i["id"] for i in flipped}
    assert set(rows) <= ids
