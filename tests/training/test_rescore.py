"""Re-scoring history after a promotion (real SQLite, a real small model, a real SMTP sink): only
stories that become flagged are alerted, once; those that drop out are recorded, not alerted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import FEEDS, add_article
from helpers import NOW, ROOT
from sqlalchemy import func, select

from pipeline.classify.model import doc_of
from pipeline.classify.registry import GateVerdict, load_active, promote
from pipeline.jobs import Runtime, deliver, record_alerts
from pipeline.modeljobs import rescore_job, rescore_window
from pipeline.store.schema import Alert, Classification, Story
from pipeline.training.corpus import load_items
from pipeline.training.train import train_model

CORPUS = ROOT / "data" / "corpus"


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]]]:
    """A small real model made active in its own folder, and texts it clearly flags / clearly
    does not (chosen by its own scores, so the test does not depend on what it learnt)."""
    folder = tmp_path_factory.mktemp("rescore-model")
    items = load_items([CORPUS / "dprk.jsonl"])
    version = train_model(
        items, model_dir=folder, now=NOW, candidates=["tfidf-word-lr"], folds=3
    ).version
    promote(folder, version, now=NOW, verdict=GateVerdict(version, ()))
    model = load_active(folder)
    positives = [i for i in items if i["label"] == 1][:40]
    negatives = load_items([CORPUS / "everyday_a.jsonl"])[:40]
    p_pos = model.predict_docs([doc_of(i) for i in positives]).tolist()
    p_neg = model.predict_docs([doc_of(i) for i in negatives]).tolist()
    flagged = [i for i, p in sorted(zip(positives, p_pos, strict=True), key=lambda x: -x[1])]
    clean = [i for i, p in sorted(zip(negatives, p_neg, strict=True), key=lambda x: x[1])]
    assert p_pos and max(p_pos) >= model.threshold and min(p_neg) < model.threshold
    return folder, flagged[:3], clean[:2]


def _article(rt: Runtime, item: dict[str, Any], n: int, *, score: float, when) -> int:
    article = add_article(
        rt, feed=FEEDS[n % 3]["id"], title=item["title"], summary=item["summary"],
        url=f"https://{FEEDS[n % 3]['id']}.example/{n}", now=when, score=score,
    )  # fmt: skip
    assert article is not None
    return article


@pytest.mark.slow
def test_rescore_alerts_only_newly_flagged_stories_and_records_those_that_drop_out(
    small_model, make_config, mail_sink, tmp_path: Path
) -> None:
    folder, flagged, clean = small_model
    config = make_config(
        feeds=FEEDS,
        model_dir=folder,
        smtp_port=mail_sink.port,
        settings={"model_store": str(tmp_path / "store")},
    )
    day = NOW - timedelta(days=1)
    with Runtime.open(config) as rt:
        newly = _article(rt, flagged[0], 0, score=0.1, when=day)  # the old model missed it
        still = _article(rt, flagged[1], 1, score=0.9, when=day)  # flagged before and after
        drops = _article(rt, clean[0], 2, score=0.9, when=day)  # a false alarm of the old model
        old = _article(rt, flagged[2], 3, score=0.1, when=NOW - timedelta(days=30))  # too old
        record_alerts(rt, now=day)
        deliver(rt, now=day)
        with rt.sessions() as s:
            before = {a.article_id for a in s.scalars(select(Alert))}
    assert before == {still, drops}
    mails_before = len(mail_sink.messages)
    assert mails_before > 0

    report = rescore_job(config, now=NOW, days=7)
    assert report["scored"] == 3 and report["newly_flagged"] == 1 and report["dropped"] == 1
    assert report["alerts_new"] == 1
    with Runtime.open(config, migrate=False) as rt, rt.sessions() as s:
        alerts = list(s.scalars(select(Alert).order_by(Alert.id)))
        assert [a.article_id for a in alerts] == [still, drops, newly]  # one new alert, no update
        version = rt.model.version
        new_cls = {
            c.article_id: c
            for c in s.scalars(
                select(Classification).where(Classification.model_version == version)
            )
        }
        assert set(new_cls) == {newly, still, drops}  # the 30-day-old article was left alone
        assert old not in new_cls
        dropped = new_cls[drops]
        assert dropped.flagged is False
        assert dropped.evidence["rescore"] == {
            "previous_version": "test-v1",
            "previous_flagged": True,
            "at": NOW.isoformat(),
        }
        story = s.scalar(select(Story.id).join(Alert, Alert.story_id == Story.id).where(
            Alert.article_id == drops))  # fmt: skip
        assert report["stories_dropped"] == [story]
    recipients = len(config.subscriptions[0].recipients)
    assert len(mail_sink.messages) == mails_before + recipients  # the new story only

    again = rescore_job(config, now=NOW + timedelta(minutes=5), days=7)
    assert again["scored"] == 0 and again["alerts_new"] == 0
    assert len(mail_sink.messages) == mails_before + recipients
    with Runtime.open(config, migrate=False) as rt, rt.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 3


def test_rescore_window_from_days_or_dates() -> None:
    assert rescore_window(NOW, days=3) == (NOW - timedelta(days=3), NOW)
    assert rescore_window(NOW) == (NOW - timedelta(days=7), NOW)
    since, until = NOW - timedelta(days=10), NOW - timedelta(days=2)
    assert rescore_window(NOW, since=since, until=until) == (since, until)
    with pytest.raises(ValueError, match="window is empty"):
        rescore_window(NOW, since=NOW, until=NOW - timedelta(days=1))
