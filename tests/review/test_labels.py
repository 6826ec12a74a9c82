"""Analysts' labels: append-only events with analyst, time, model version; CLI, export and import."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from builders import BASE, BASE_TITLE, FEEDS, OTHER, OTHER_TITLE, add_article
from helpers import NOW
from sqlalchemy import func, select

from pipeline.errors import InputError
from pipeline.jobs import Runtime, record_alerts
from pipeline.review.labels import (
    current_labels,
    export_labels,
    import_labels,
    label_history,
    record_label,
)
from pipeline.store.schema import Alert, LabelEvent
from pipeline.training.corpus import check_items


@pytest.fixture
def rt(make_config, db_url: str):
    with Runtime.open(make_config(database_url=db_url, feeds=FEEDS)) as runtime:
        yield runtime


def test_labels_are_append_only_events_and_the_latest_wins(rt) -> None:
    article = add_article(
        rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w.example/1"
    )
    with rt.sessions.begin() as s:
        first = record_label(
            s, article_id=article, label="relevant", analyst="ana", now=NOW, via="cli", note="clear"
        )
    with rt.sessions.begin() as s:
        record_label(
            s, article_id=article, label="not_relevant", analyst="ben", via="review",
            now=NOW + timedelta(minutes=5), note="a drill, not a transfer",
        )  # fmt: skip
    assert first is not None and first.model_version == "test-v1" and first.score == 0.95
    with rt.sessions() as s:
        history = label_history(s, article)
        current = current_labels(s)[article]
    assert [(h.label, h.analyst, h.via) for h in history] == [
        ("relevant", "ana", "cli"),
        ("not_relevant", "ben", "review"),
    ]
    assert history[0].created_at == NOW and history[0].note == "clear"
    assert (current.label, current.analyst) == ("not_relevant", "ben")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": "maybe", "analyst": "ana"}, "not one of"),
        ({"label": "relevant", "analyst": "  "}, "analyst's name"),
        ({"label": "relevant", "analyst": "ana", "article_id": 999}, "no article 999"),
        ({"label": "relevant", "analyst": "ana", "alert_id": 999}, "no alert 999"),
    ],
)
def test_a_bad_label_is_refused_naming_why(rt, kwargs, message: str) -> None:
    article = add_article(
        rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w.example/1"
    )
    kwargs.setdefault("article_id", article)
    with rt.sessions.begin() as s, pytest.raises(InputError, match=message):
        record_label(s, now=NOW, via="cli", **kwargs)
    with rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(LabelEvent)) == 0


def test_a_token_is_spent_once(rt) -> None:
    article = add_article(
        rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w.example/1"
    )
    for expected in (True, False):
        with rt.sessions.begin() as s:
            got = record_label(
                s, article_id=article, label="relevant", analyst="a@example.org", now=NOW,
                via="email", token_sha256="ab" * 32,
            )  # fmt: skip
        assert (got is not None) is expected
    with rt.sessions() as s:
        assert len(label_history(s, article)) == 1


def test_export_is_corpus_format_and_import_is_idempotent(rt) -> None:
    a = add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w.example/1")
    b = add_article(rt, feed="daily", title=OTHER_TITLE, summary=OTHER, url="https://d.example/2")
    with rt.sessions.begin() as s:
        record_label(s, article_id=a, label="relevant", analyst="ana", now=NOW, via="cli")
        record_label(s, article_id=b, label="unsure", analyst="ana", now=NOW, via="cli")
    with rt.sessions() as s:
        exported = export_labels(s)
    assert [e["label"] for e in exported] == [1]  # unsure is not a training label
    item = {**exported[0], "_source": "export:1"}
    assert check_items([item]).problems == ()
    lines = [json.dumps(e) for e in exported]
    with rt.sessions.begin() as s:
        again = import_labels(s, lines, analyst="ops", now=NOW)
    assert (again.recorded, again.unchanged, again.problems) == (0, 1, ())
    flipped = json.dumps({**exported[0], "label": 0, "labelled_by": "ben"})
    with rt.sessions.begin() as s:
        report = import_labels(s, [flipped, "{not json", '{"article_key": "nope", "label": 1}'],
                               analyst="ops", now=NOW)  # fmt: skip
    assert report.recorded == 1 and len(report.problems) == 2
    assert (
        report.problems[0].startswith("line 2:")
        and "line 3: no stored article" in report.problems[1]
    )
    with rt.sessions() as s:
        assert current_labels(s)[a].label == "not_relevant"
        assert [h.via for h in label_history(s, a)] == ["cli", "import"]


def test_label_command_labels_an_alert_and_export_round_trips(
    make_config, run_cli, tmp_path
) -> None:
    config = make_config(feeds=FEEDS)
    with Runtime.open(config) as rt:
        add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w.example/1")
        record_alerts(rt, now=NOW)
        with rt.sessions() as s:
            alert_id = s.scalar(select(Alert.id))
    args = ["--config", str(config.config_dir)]
    code, out, _ = run_cli("label", str(alert_id), "--alert", "--not-relevant", "--note",
                           "a drill", "--by", "ana", *args)  # fmt: skip
    assert code == 0 and "not_relevant by ana" in out and "model test-v1" in out
    code, _, err = run_cli("label", "12345", "--relevant", "--by", "ana", *args)
    assert code == 2 and "no article 12345" in err
    with pytest.raises(SystemExit):  # argparse: the three labels exclude each other
        run_cli("label", "1", "--relevant", "--unsure", *args)
    out_file = tmp_path / "labels.jsonl"
    assert run_cli("labels", "export", "--out", str(out_file), *args)[0] == 0
    (exported,) = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert exported["label"] == 0 and exported["labelled_by"] == "ana"
    code, out, _ = run_cli("labels", "import", str(out_file), *args)
    assert code == 0 and json.loads(out)["unchanged"] == 1


def test_label_quality_reports_conflicts_and_labels_the_model_disputes(
    make_config, run_cli
) -> None:
    config = make_config(feeds=FEEDS)
    with Runtime.open(config) as rt:
        a = add_article(rt, feed="wire", title=BASE_TITLE, summary=BASE, url="https://w.example/1")
        b = add_article(rt, feed="daily", title=OTHER_TITLE, summary=OTHER, url="https://d.example/2",
                        score=0.1)  # fmt: skip
        with rt.sessions.begin() as s:
            for who, label in (("ana", "relevant"), ("ben", "not_relevant"), ("cy", "unsure")):
                record_label(s, article_id=a, label=label, analyst=who, now=NOW, via="review")
            record_label(s, article_id=b, label="relevant", analyst="ana", now=NOW, via="review")
    code, out, _ = run_cli("labels", "quality", "--config", str(config.config_dir))
    report = json.loads(out)
    assert code == 1
    assert report["conflicts"] == [
        {"article_id": a, "labels": {"ana": "relevant", "ben": "not_relevant"}}
    ]
    assert [(d["article_id"], d["label"]) for d in report["model_disagrees"]] == [(b, "relevant")]
