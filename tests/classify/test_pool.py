"""Scoring in worker processes (pipeline/classify/pool.py, issue 13 item 2).

The pool must give exactly the scores the calling process gives, use workers only when the backlog
repays them, and lose nothing when workers cannot start (a daemonic process) or die mid-run.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import timedelta

import pytest
from helpers import NOW, ROOT
from sqlalchemy import insert, select

from pipeline.classify.model import Doc
from pipeline.classify.pool import MIN_ARTICLES_PER_PROCESS, ModelRef, ScorePool, score_processes
from pipeline.classify.registry import active_version, load_active, load_version
from pipeline.ingest.normalise import article_key, content_hash
from pipeline.jobs import Runtime, classify
from pipeline.knowledge.regimes import load_regimes
from pipeline.store.articles import count_to_classify, sync_feeds
from pipeline.store.schema import Article, Classification

MODELS = ROOT / "models"
REGIMES = ROOT / "config" / "regimes.yaml"

DOCS = [
    Doc(
        "Pyongyang shipped artillery shells to Russia, Seoul says",
        "Containers of munitions crossed at the Tumangang rail bridge, officials said; both deny it.",
        "",
    ),
    Doc("Harbour festival draws record crowds", "Fireworks and a regatta closed the week.", ""),
    Doc("Security Council renews the Libya panel's mandate", "The vote was unanimous.", ""),
    Doc("", "", ""),
] * 5


@pytest.fixture(scope="module")
def model():
    return load_active(MODELS)


@pytest.fixture(scope="module")
def regimes():
    return load_regimes(REGIMES)


def _plain(scores):
    return [(s.score, s.flagged, s.confidence, s.evidence) for s in scores]


def test_how_many_processes_a_backlog_gets() -> None:
    assert score_processes(1, 10**6) == 1  # the setting caps it
    assert score_processes(2, MIN_ARTICLES_PER_PROCESS - 1) == 1  # too little work for a worker
    assert score_processes(2, 2 * MIN_ARTICLES_PER_PROCESS) == 2
    assert score_processes(8, 3 * MIN_ARTICLES_PER_PROCESS) == 3
    assert score_processes(0, 10**6) == (os.cpu_count() or 1)  # 0: the CPU count


def test_workers_give_the_scores_this_process_gives(model, regimes) -> None:
    expected = _plain(model.score_docs(DOCS, regimes=regimes))
    with ScorePool(model, regimes, model_dir=MODELS, regimes_path=REGIMES, processes=2) as pool:
        assert pool.parallel
        futures = [pool.submit(DOCS[i : i + 7]) for i in range(0, len(DOCS), 7)]
        got = [
            s
            for i, f in zip(range(0, len(DOCS), 7), futures, strict=True)
            for s in pool.result(f, DOCS[i : i + 7])
        ]
    assert _plain(got) == expected
    assert any(s.flagged for s in got) and not all(s.flagged for s in got)


def test_given_a_version_only_the_workers_load_the_model(model, regimes) -> None:
    """With a ModelRef, this process loads the model only when it must score itself."""
    loads: list[str] = []

    def load():
        loads.append("here")
        return load_version(MODELS, model.version)

    ref = ModelRef(model.version, 0.5, load)
    expected = [(s.score, s.score >= 0.5) for s in model.score_docs(DOCS, regimes=regimes)]
    with ScorePool(ref, regimes, model_dir=MODELS, regimes_path=REGIMES, processes=2) as pool:
        assert pool.parallel and (pool.version, pool.threshold) == (model.version, 0.5)
        got = pool.result(pool.submit(DOCS), DOCS)
        assert loads == []  # the workers scored; nothing was loaded here
        quick = pool.result(pool.submit(DOCS, explain=False), DOCS, explain=False)
    assert [(s.score, s.flagged) for s in got] == expected
    assert [s.score for s in quick] == [s for s, _ in expected]
    with ScorePool(ref, regimes, model_dir=MODELS, regimes_path=REGIMES, processes=1) as pool:
        assert not pool.parallel and loads == []
        got = pool.result(pool.submit(DOCS), DOCS)
        assert loads == ["here"] and pool.model.threshold == 0.5  # loaded once, on first use
        pool.submit(DOCS[:2])
        assert loads == ["here"]
    assert [(s.score, s.flagged) for s in got] == expected


def test_the_active_version_is_read_without_loading(model) -> None:
    assert active_version(MODELS) == (model.version, model.threshold)
    assert active_version(MODELS, threshold=0.42) == (model.version, 0.42)


def test_one_process_scores_here_without_workers(model, regimes) -> None:
    with ScorePool(model, regimes, model_dir=MODELS, regimes_path=REGIMES, processes=1) as pool:
        assert not pool.parallel
        future = pool.submit(DOCS)
        assert future.done()
        assert _plain(pool.result(future, DOCS)) == _plain(model.score_docs(DOCS, regimes=regimes))


def test_a_killed_worker_loses_no_batch(model, regimes, caplog) -> None:
    expected = _plain(model.score_docs(DOCS, regimes=regimes))
    with ScorePool(model, regimes, model_dir=MODELS, regimes_path=REGIMES, processes=2) as pool:
        for pid in list(pool._pool._processes):  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
        got = []
        for i in range(0, len(DOCS), 5):
            batch = DOCS[i : i + 5]
            got += pool.result(pool.submit(batch), batch)
        assert not pool.parallel
    assert _plain(got) == expected
    assert "scoring worker died" in caplog.text


def _in_a_daemon(queue) -> None:  # pragma: no cover - runs in a child process
    model = load_active(MODELS)
    regimes = load_regimes(REGIMES)
    with ScorePool(model, regimes, model_dir=MODELS, regimes_path=REGIMES, processes=2) as pool:
        scores = pool.result(pool.submit(DOCS[:4]), DOCS[:4])
        queue.put((pool.parallel, [s.score for s in scores]))


def test_a_daemonic_process_scores_in_itself(model, regimes) -> None:
    """A Celery prefork child is daemonic and may not start processes: the pool scores in place."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_in_a_daemon, args=(queue,), daemon=True)
    child.start()
    parallel, scores = queue.get(timeout=120)
    child.join(30)
    assert parallel is False
    assert scores == [s.score for s in model.score_docs(DOCS[:4], regimes=regimes)]


def _articles(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        doc = DOCS[i % 3]
        title = f"{doc.title} ({i})"
        chash = content_hash(title, doc.summary)
        url = f"https://pool.example/{i}"
        rows.append(
            {
                "key": article_key("pool", url=url, guid=None, chash=chash),
                "feed_id": "pool",
                "guid": None,
                "url": url,
                "title": title,
                "summary": doc.summary,
                "body": "",
                "lang": "en",
                "published_at": NOW - timedelta(hours=1),
                "first_seen_at": NOW,
                "updated_at": NOW,
                "content_hash": chash,
                "revision": 1,
            }
        )
    return rows


@pytest.mark.parametrize("processes", [1, 2])
def test_classify_with_worker_processes_writes_every_verdict_once(
    make_config, tmp_path, monkeypatch, processes, model, regimes, caplog
) -> None:
    """A backlog of several pages per process, scored in workers while pages are read and written:
    every revision gets exactly one verdict, equal to the calling process's score."""
    monkeypatch.setattr("pipeline.classify.pool.MIN_ARTICLES_PER_PROCESS", 40)
    monkeypatch.setattr("pipeline.classify.cycle.MIN_ARTICLES_PER_PROCESS", 40)
    config = make_config(
        database_url=f"sqlite:///{tmp_path / f'pool{processes}.db'}",
        feeds=[{"id": "pool", "url": "http://127.0.0.1:9/pool.xml", "full_text": "never"}],
        settings={"classify": {"processes": processes, "batch_size": 37}},
    )
    assert config.classify.processes == processes
    rows = _articles(250)
    with Runtime.open(config) as rt:
        with rt.sessions.begin() as session:
            sync_feeds(session, config.feeds)
            session.execute(insert(Article), rows)
        with caplog.at_level("INFO", logger="pipeline.jobs"):
            report = classify(rt, now=NOW)
        # With workers, only they load the model; alone, this process does.
        assert (rt._model is None) == (processes == 2)
    assert ("in 2 worker processes" in caplog.text) == (processes == 2)
    with Runtime.open(config) as rt, rt.sessions() as session:
        verdicts = session.execute(
            select(Classification.article_id, Classification.score, Article.title)
            .join(Article, Article.id == Classification.article_id)
            .order_by(Classification.article_id)
        ).all()
        left = count_to_classify(session, cap=1000)
    assert report.classified == 250 and left == 0
    assert len(verdicts) == 250 and len({v.article_id for v in verdicts}) == 250
    docs = [Doc(r["title"], r["summary"], "") for r in rows]
    expected = [s.score for s in model.score_docs(docs, regimes=regimes)]
    assert [v.score for v in verdicts] == pytest.approx(expected, abs=1e-9)
    assert report.flagged == sum(s >= model.threshold for s in expected)
