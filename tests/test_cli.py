"""The command line a person expects: options after the subcommand, ``score`` losing no good line,
``evaluate`` refusing an empty folder, ``train``'s short table, ``run-once`` migrating once."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, sample_feeds

from pipeline import cli
from pipeline.cli import models as cli_models
from pipeline.training.corpus import load_items

TITLE = "North Korea suspected of sending artillery shells and missiles to Russia"


# ------------------------------------------------------------------------ options after the command


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["--config", "DIR", "run-once"], "run-once"),
        (["run-once", "--config", "DIR", "--json"], "run-once"),
        (["score", "--config", "DIR", "--batch", "8"], "score"),
        (["db", "upgrade", "--config", "DIR"], "db"),
        (["db", "--config", "DIR", "downgrade", "0001"], "db"),
        (["evaluate", "--data", "x.jsonl", "--config", "DIR"], "evaluate"),
        (["gate", "--config", "DIR"], "gate"),
        (["models", "list", "--config", "DIR"], "models"),
        (["models", "rollback", "--config", "DIR"], "models"),
        (["corpus", "check", "--config", "DIR"], "corpus"),
        (["train", "--config", "DIR", "--json"], "train"),
    ],
)
def test_config_is_accepted_before_or_after_the_subcommand(argv: list[str], command: str) -> None:
    args = cli.build_parser().parse_args(argv)
    assert (args.command, args.config) == (command, "DIR")


def test_config_before_the_subcommand_is_kept_when_not_repeated() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["--config", "A", "models", "list"]).config == "A"
    assert parser.parse_args(["--config", "A", "run-once", "--config", "B"]).config == "B"
    assert parser.parse_args(["run-once"]).config is None
    assert parser.parse_args(["run-once", "-v"]).verbose is True


def test_corpus_data_and_test_are_accepted_after_check_and_split() -> None:
    parser = cli.build_parser()
    check = parser.parse_args(["corpus", "check", "--data", "a.jsonl", "b.jsonl"])
    assert check.data == ["a.jsonl", "b.jsonl"]
    split = parser.parse_args(["corpus", "split", "--force", "--test", "t.jsonl"])
    assert (split.test, split.force) == ("t.jsonl", True)
    before = parser.parse_args(["corpus", "--test", "t.jsonl", "check"])
    assert before.test == "t.jsonl" and before.data == [str(ROOT / "data" / "corpus")]


def test_corpus_check_reads_the_data_named_after_check(run_cli) -> None:
    data = ROOT / "data" / "corpus" / "dprk.jsonl"
    code, out, _ = run_cli("corpus", "check", "--data", str(data))
    assert code in (0, 1)  # 1 when the checks find problems: still a report of this file
    assert (
        json.loads(out)["n_items"]
        == len(load_items([data]))
        < len(load_items([ROOT / "data" / "corpus"]))
    )


def test_run_once_with_config_after_the_subcommand_migrates_once(
    run_cli, make_config, feed_server, mail_sink, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(feeds=sample_feeds(feed_server.url), smtp_port=mail_sink.port)
    caplog.set_level(logging.INFO, logger="pipeline.store.db")
    code, out, err = run_cli("run-once", "--config", str(config.config_dir), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["feeds_ok"] == 3 and summary["alerts_sent"] >= 1
    upgrades = [r for r in caplog.records if r.getMessage().startswith("database at revision")]
    assert len(upgrades) == 1  # once at the start, not once per stage


def test_run_once_json_keys_are_stable(run_cli, make_config, feed_server, mail_sink) -> None:
    config = make_config(feeds=sample_feeds(feed_server.url), smtp_port=mail_sink.port)
    code, out, err = run_cli("run-once", "--json", "--config", str(config.config_dir))
    assert code == 0, err
    assert list(json.loads(out)) == [
        "run_id", "feeds_ok", "feeds_failed", "feeds_deferred", "entries_seen", "articles_new",
        "articles_updated", "duplicates", "classified", "flagged", "model_version", "alerts_new",
        "alerts_sent", "alerts_retried", "alerts_failed", "alerts_pending", "notices_new",
        "errors", "stories_new", "alerts_updates", "digests_new", "webhooks_sent",
        "notices_emailed",
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------ score


def _score(config_dir: Path, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "score", "--config", str(config_dir)],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=300,
    )


def test_score_never_loses_good_lines_around_undecodable_ones(make_config) -> None:
    def item(n: int) -> bytes:
        return json.dumps({"id": n, "title": TITLE}).encode()

    lines = [
        b"\xef\xbb\xbf" + item(1),  # a UTF-8 byte-order mark on the first line is not an error
        item(2),
        '{"id": 3, "title": "Caf\u00e9 in Pyongyang"}'.encode("latin-1"),  # not UTF-8
        item(4),
        b'{"id": 5, "title": "\\ud800 lone surrogate"}',  # valid JSON, not text
        b"\xff\xfe{\x00",  # UTF-16 noise
        b"{not json",
        item(8),
    ]
    out = _score(make_config().config_dir, b"\n".join(lines) + b"\n")
    assert out.returncode == 1  # some lines were bad
    rows = [json.loads(line) for line in out.stdout.decode("utf-8").splitlines()]
    assert [r.get("id", r.get("line")) for r in rows] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [r["id"] for r in rows if "id" in r] == [1, 2, 4, 8]
    assert all(0.0 <= r["score"] <= 1.0 for r in rows if "id" in r)
    errors = {r["line"]: r["error"] for r in rows if "line" in r}
    assert set(errors) == {3, 5, 6, 7}
    assert "not valid UTF-8" in errors[3] and "0xe9" in errors[3]
    assert "surrogate" in errors[5]
    assert "not valid UTF-8" in errors[6]
    assert "not valid JSON" in errors[7]
    stderr = out.stderr.decode("utf-8")
    assert all(f"line {n}" in stderr for n in errors)


# --------------------------------------------------------------------------------------- evaluate


def test_evaluate_over_a_folder_with_no_data_is_an_error(
    run_cli, make_config, tmp_path: Path
) -> None:
    config = str(make_config().config_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a data file\n", encoding="utf-8")
    (empty / "blank.jsonl").write_text("\n\n", encoding="utf-8")
    code, out, err = run_cli("evaluate", "--data", str(empty), "--config", config)
    assert code == 2 and out == ""
    assert f"{empty} has no *.jsonl file with an item: nothing to evaluate" in err
    code, _, err = run_cli("evaluate", "--data", str(tmp_path / "missing"), "--config", config)
    assert code == 2 and "no such file or folder" in err


# ------------------------------------------------------------------------------------------ train

TRAIN_OUT = {
    "version": "20261127-120000-tfidfwordlr-abc123",
    "chosen": "tfidf-word-char-lr",
    "threshold": 0.4321,
    "cross_validation": {
        "tfidf-word-lr": {"kind": "tfidf", "pr_auc": 0.81, "f1_at_best": 0.77, "roc_auc": 0.9},
        "tfidf-word-char-lr": {
            "kind": "tfidf",
            "pr_auc": 0.86,
            "f1_at_best": 0.8,
            "precision_at_recall_0.9": 0.7,
            "roc_auc": 0.93,
            "by_lang": {"en": {"f1": 0.8, "pr_auc": 0.9, "n": 100}},
        },
    },
    "test": {"f1": 0.79, "pr_auc": 0.84, "precision": 0.81, "recall": 0.77},
}


def test_train_table_is_short_and_ranks_candidates() -> None:
    lines = cli_models.train_table(TRAIN_OUT)
    text = "\n".join(lines)
    assert len(lines) <= 8 and "by_lang" not in text and "{" not in text
    assert lines[0] == (
        "model 20261127-120000-tfidfwordlr-abc123: chose tfidf-word-char-lr (threshold 0.432)"
    )
    ranked = [line[2:].split()[0] for line in lines if line.startswith(("* ", "  tfidf"))]
    assert ranked == ["tfidf-word-char-lr", "tfidf-word-lr"]  # best PR-AUC first, chosen starred
    assert lines[3].startswith("* tfidf-word-char-lr") and " 0.860 " in lines[3]
    assert "P@R.9" in lines[2] and " - " in lines[4]  # a metric a candidate lacks shows as -
    assert "frozen test split: F1 0.790  PR-AUC 0.840" in text
    no_test = "\n".join(cli_models.train_table({**TRAIN_OUT, "test": None}))
    assert "frozen test split: none" in no_test


@pytest.mark.slow
def test_train_prints_the_table_and_json_only_when_asked(
    run_cli, make_config, tmp_path: Path
) -> None:
    config = make_config(model_dir=tmp_path / "models")
    data = str(ROOT / "data" / "corpus" / "dprk.jsonl")
    common = ["--config", str(config.config_dir), "--data", data, "--test", str(tmp_path / "none")]
    common += ["--candidates", "tfidf-word-lr", "--folds", "3"]
    code, out, err = run_cli("train", *common)
    assert code == 0, err
    assert out.startswith("model ") and "chose tfidf-word-lr" in out and "{" not in out
    code, out, err = run_cli("train", *common, "--json")
    assert code == 0, err
    full = json.loads(out)
    assert full["chosen"] == "tfidf-word-lr" and "tfidf-word-lr" in full["cross_validation"]
