"""The whole cycle without Airflow: loopback feed server → classifier → database → SMTP sink."""

from __future__ import annotations

import ast
import dataclasses
import email
import json
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest
from helpers import NOW, ROOT, sample_feeds
from sqlalchemy import func, select

from pipeline.devtools.feedserver import serve_directory
from pipeline.jobs import Runtime, ingest, run_once
from pipeline.reports import IngestReport, RunSummary
from pipeline.store.schema import Alert, Article, FetchLog

ORIGIN = "North Korea suspected of sending artillery shells and missiles to Russia"


def test_run_once_end_to_end_then_nothing_new(
    make_config, db_url: str, feed_server, mail_sink
) -> None:
    feeds = [
        *sample_feeds(feed_server.url),
        {"id": "dead", "url": f"{feed_server.url}/missing.xml"},
    ]
    with Runtime.open(
        make_config(database_url=db_url, feeds=feeds, smtp_port=mail_sink.port)
    ) as rt:
        first = run_once(rt, now=NOW, run_id="t1")
        assert (first["feeds_ok"], first["feeds_failed"]) == (3, 1)
        assert "404" in first["errors"]["dead"]
        assert (
            first["articles_new"] == 13 and first["duplicates"] == 1
        )  # the syndicated origin story
        assert first["alerts_sent"] == 2 * first["alerts_new"] and first["alerts_pending"] == 0
        subjects = [
            email.message_from_bytes(m, policy=policy.default)["Subject"]
            for m in mail_sink.messages
        ]
        assert any(ORIGIN in s for s in subjects)
        assert not any("Security Council adopts resolution renewing" in s for s in subjects)
        assert not any("Putin and Kim toast" in s for s in subjects)
        second = run_once(rt, now=NOW, run_id="t2")
        assert (
            second["articles_new"] == 0 and second["alerts_new"] == 0 and second["alerts_sent"] == 0
        )
        assert len(mail_sink.messages) == first["alerts_sent"]
        with rt.sessions() as s:
            outcomes = dict(
                s.execute(
                    select(FetchLog.feed_id, FetchLog.outcome).where(FetchLog.run_id == "t2")
                ).all()
            )
            origin = s.scalars(select(Article).where(Article.title.like(ORIGIN + "%"))).one()
            assert (
                s.scalar(
                    select(func.count()).select_from(Alert).where(Alert.article_id == origin.id)
                )
                == 1
            )
        assert outcomes["sample-world-wire"] == "not_modified" and outcomes["dead"] == "error"


def test_changed_feed_is_fetched_again(
    make_config, sqlite_url: str, tmp_path: Path, mail_sink
) -> None:
    folder = tmp_path / "feeds"
    folder.mkdir()
    src = (ROOT / "data" / "sample_feeds" / "world-wire.xml").read_text()
    (folder / "w.xml").write_text(src)
    with serve_directory(folder) as server:
        config = make_config(
            database_url=sqlite_url,
            smtp_port=mail_sink.port,
            feeds=[{"id": "w", "url": f"{server.url}/w.xml"}],
        )
        with Runtime.open(config) as rt:
            assert run_once(rt, now=NOW, run_id="a").articles_new == 6
            (folder / "w.xml").write_text(
                src.replace(
                    "<item>",
                    "<item><title>Extra</title><link>https://n.example/extra</link><description>New item.</description></item><item>",
                    1,
                )
            )
            again = run_once(rt, now=NOW, run_id="b")
        assert again.articles_new == 1 and again.duplicates == 6


def test_cli_run_once_json(tmp_path: Path, make_config, feed_server, mail_sink) -> None:
    config = make_config(feeds=sample_feeds(feed_server.url), smtp_port=mail_sink.port)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "--config",
            str(config.config_dir),
            "run-once",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    for key in (
        "feeds_ok",
        "feeds_failed",
        "entries_seen",
        "articles_new",
        "duplicates",
        "flagged",
        "alerts_sent",
        "alerts_pending",
    ):
        assert isinstance(summary[key], int), key
    assert summary["feeds_ok"] == 3 and summary["flagged"] >= 1 and summary["alerts_sent"] >= 1


# ------------------------------------------------------------------------------- the runtime


def test_runtime_context_manager_closes_on_error(make_config, sqlite_url: str) -> None:
    config = make_config(database_url=sqlite_url)
    wal = Path(sqlite_url.removeprefix("sqlite:///") + "-wal")
    opened: list[Runtime] = []

    def task() -> None:
        with Runtime.open(config) as rt:
            opened.append(rt)
            with rt.sessions() as s:
                s.execute(select(func.count()).select_from(Article)).scalar()
            assert wal.exists()  # a connection is open (SQLite in WAL mode)
            raise RuntimeError("a task failed")

    with pytest.raises(RuntimeError, match="a task failed"):
        task()
    (rt,) = opened
    assert rt.closed
    assert not wal.exists()  # SQLite removes the WAL when the last connection closes
    rt.close()  # idempotent


def test_run_once_returns_typed_reports_that_become_json(
    make_config, sqlite_url: str, feed_server, mail_sink
) -> None:
    config = make_config(
        database_url=sqlite_url, feeds=sample_feeds(feed_server.url), smtp_port=mail_sink.port
    )
    with Runtime.open(config) as rt:
        summary = run_once(rt, now=NOW, run_id="typed")
        report = ingest(rt, now=NOW, run_id="again")
    assert isinstance(summary, RunSummary) and summary.run_id == "typed"
    assert summary["feeds_ok"] == summary.feeds_ok == 3  # read by key like the old dicts
    assert json.loads(json.dumps(summary.as_dict()))["alerts_sent"] == summary.alerts_sent
    assert isinstance(report, IngestReport) and report.feeds_not_modified == 3
    xcom = report.as_xcom()
    assert "errors" not in xcom and xcom["failed_feeds"] == [] and "new_ids" not in xcom
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.feeds_ok = 5  # type: ignore[misc]
    with pytest.raises(KeyError):
        report["no_such_key"]


@pytest.mark.parametrize("path", ["jobs.py", "runtime.py", "ingest/cycle.py", "classify/cycle.py"])
def test_jobs_orchestrates_only_no_sql_and_no_wording(path: str) -> None:
    """SQL lives in pipeline/store (and the outbox), message wording in pipeline/deliver; the same
    holds for the runtime and the stages jobs.py re-exports from their own modules."""
    source = (ROOT / "pipeline" / path).read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    sql = {name for module, name in imported if module and module.startswith("sqlalchemy")}
    assert sql <= {"Engine", "Session", "sessionmaker", "DataError", "IntegrityError"}, sql
    assert not any(module == "pipeline.store.schema" for module, _ in imported)
    for banned in ("select(", "update(", "insert(", "text(", "func."):
        assert banned not in source, banned


def test_a_server_that_ignores_conditional_requests_is_not_parsed_twice(
    make_config, sqlite_url: str, monkeypatch
) -> None:
    """Issue 13 item 5: the same body again (a server sending 200 and no validators every time) is
    recorded as not modified without being parsed; a changed body is parsed as before."""
    from _httpfixtures import FEED_XML, misbehaving_server

    import pipeline.ingest.parsepool as parsepool

    body = {"xml": FEED_XML}
    parses: list[int] = []
    real_parse = parsepool.parse_feed

    def counting_parse(content, **kwargs):
        parses.append(len(content))
        return real_parse(content, **kwargs)

    monkeypatch.setattr(parsepool, "parse_feed", counting_parse)
    with misbehaving_server() as server:
        server.route(
            "/stubborn",
            lambda ex: ex.respond(200, {"Content-Type": "application/rss+xml"}, body["xml"]),
        )
        config = make_config(
            database_url=sqlite_url, feeds=[{"id": "s", "url": server.url("/stubborn")}]
        )
        with Runtime.open(config) as rt:
            first = ingest(rt, now=NOW, run_id="a")
            second = ingest(rt, now=NOW, run_id="b")
            body["xml"] = FEED_XML.replace(
                b"<item>",
                b"<item><title>Extra</title><link>https://n.example/extra</link></item><item>",
                1,
            )
            third = ingest(rt, now=NOW, run_id="c")
            with rt.sessions() as s:
                logged = s.execute(
                    select(FetchLog.run_id, FetchLog.outcome, FetchLog.http_status).order_by(
                        FetchLog.id
                    )
                ).all()
    assert first.feeds_ok == 1 and first.articles_new > 0
    assert second.feeds_not_modified == 1 and second.articles_new == 0
    assert third.feeds_ok == 1 and third.articles_new == 1
    assert len(parses) == 2  # the first and the changed body; the repeat was not parsed
    assert [tuple(r) for r in logged] == [
        ("a", "ok", 200),
        ("b", "not_modified", 200),
        ("c", "ok", 200),
    ]
