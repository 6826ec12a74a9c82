"""Structured log records (feed id, article id, model version), JSON lines, masked secrets."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
from helpers import NOW, sample_feeds, write_config

from pipeline import logs
from pipeline.errors import ConfigError
from pipeline.jobs import Runtime, classify, ingest

log = logging.getLogger("pipeline.tests.logging")

SECRET_URLS = [
    ("https://ops:hunter2-pw@feeds.example.org/rss.xml", "hunter2-pw"),
    ("https://feeds.example.org/rss?token=tok-AAA111&lang=en", "tok-AAA111"),
    ("https://api.example.org/v1/feed?api_key=k3y-value", "k3y-value"),
    ("https://s3.example.org/f.xml?X-Amz-Signature=s1gnature0", "s1gnature0"),
    ("https://x.example.org/f?sig=abc123&password=pa55word", "pa55word"),
    ("postgresql+psycopg://sw:db-secret-9@db.internal:5432/sanctions", "db-secret-9"),
    ("https://hooks.example.org/in?secret=shh-shh-shh", "shh-shh-shh"),
]


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Records as the handlers see them, after the installed record factory."""
    logs.install()
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep(logging.DEBUG)
    root = logging.getLogger("pipeline")
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield seen
    root.removeHandler(handler)
    root.setLevel(old)


@pytest.mark.parametrize(("url", "secret"), SECRET_URLS)
def test_secrets_in_urls_are_masked_in_text(url: str, secret: str) -> None:
    text = f"feed x: FAILED: GET {url}: connection refused."
    masked = logs.mask_secrets(text)
    assert secret not in masked
    assert masked.startswith("feed x: FAILED: GET ") and masked.endswith(": connection refused.")
    assert "REDACTED" in masked or "@" not in masked


def test_text_without_secrets_is_left_alone() -> None:
    for text in (
        "feed a: ok, 12 entries, 3 new",
        "GET https://feeds.example.org/rss.xml?lang=en&page=2 (200)",
        "see https://example.org/a/b.",
    ):
        assert logs.mask_secrets(text) == text


def test_a_record_with_a_secret_is_masked_before_any_handler(
    records: list[logging.LogRecord],
) -> None:
    url, secret = SECRET_URLS[0]
    log.warning("fetch of %s failed", url)
    try:
        raise ConnectionError(f"cannot reach {SECRET_URLS[5][0]}")
    except ConnectionError:
        log.exception("database down")
    plain = "no url here: %d"
    log.info(plain, 3)
    warned, failed, info = records[-3:]
    assert secret not in warned.getMessage() and "feeds.example.org/rss.xml" in warned.getMessage()
    assert warned.exc_text is None and SECRET_URLS[5][1] not in (failed.exc_text or "")
    assert "ConnectionError: cannot reach postgresql+psycopg://db.internal" in (
        failed.exc_text or ""
    )
    assert (info.msg, info.args) == (plain, (3,))  # untouched when there is nothing to hide


def test_known_secrets_are_masked_wherever_they_appear(
    make_config, records: list[logging.LogRecord]
) -> None:
    hook = "https://hooks.slack.com/services/T0001/B0002/AbCdEfGhIjKlMnOpQrStUvWx1234"
    config = make_config(
        feeds=[
            {"id": "f1", "url": "http://reader:feedpass99@127.0.0.1:9/feed.xml?key=k-123456789"}
        ],
        subscriptions=[
            {"id": "ops-hook", "channel": "webhook", "recipients": [hook]},
        ],
    )
    found = logs.secrets_of(config)
    assert {"feedpass99", "k-123456789", "AbCdEfGhIjKlMnOpQrStUvWx1234"} <= set(found)
    logs.install(found)
    log.info("posting to %s", hook)  # a secret in the path: only known secrets catch it
    assert "AbCdEfGhIjKlMnOpQrStUvWx1234" not in records[-1].getMessage()
    assert records[-1].getMessage() == "posting to https://hooks.slack.com/services/T0001/B0002/***"
    logs.install([])  # the next config's secrets replace these
    log.info("posting to %s", hook)
    assert records[-1].getMessage() == f"posting to {hook}"


def test_bind_sets_context_per_block_and_restores_it(records: list[logging.LogRecord]) -> None:
    with logs.bind(feed_id="outer"):
        with logs.bind(feed_id="inner", article_id=42):
            log.info("in")
        log.info("out")
    log.info("none")
    inner, outer, none = records[-3:]
    assert (inner.feed_id, inner.article_id) == ("inner", "42")  # type: ignore[attr-defined]
    assert (outer.feed_id, outer.article_id) == ("outer", None)  # type: ignore[attr-defined]
    assert none.feed_id is None  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="unknown log context field 'feed'"), logs.bind(feed="x"):
        pass


def test_json_lines_carry_feed_id_and_model_version(
    make_config, sqlite_url: str, feed_server, records: list[logging.LogRecord]
) -> None:
    """A real ingest (feeds fetched concurrently) and classify: every per-feed line names its
    feed, the classify lines the model version."""
    feeds = [*sample_feeds(feed_server.url), {"id": "dead", "url": f"{feed_server.url}/no.xml"}]
    config = make_config(database_url=sqlite_url, feeds=feeds)
    with Runtime.open(config) as rt:
        ingest(rt, now=NOW, run_id="j1")
        report = classify(rt, now=NOW)
    formatter = logs.JsonFormatter()
    lines = [json.loads(formatter.format(r)) for r in records]
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line)
    per_feed = [x for x in lines if x["message"].startswith("feed ") and ": " in x["message"]]
    ids = {f["id"] for f in feeds}
    named = {x["message"].split(":")[0].removeprefix("feed ") for x in per_feed}
    assert ids <= named
    for x in per_feed:
        assert x["feed_id"] == x["message"].split(":")[0].removeprefix("feed "), x
    summary = next(x for x in lines if x["message"].startswith("ingest j1:"))
    assert "feed_id" not in summary  # bound per feed, never leaked to the run's summary
    classified = next(x for x in lines if x["message"].startswith("classified "))
    assert classified["model_version"] == report.model_version


def test_text_format_shows_the_context_in_brackets() -> None:
    record = logging.LogRecord("pipeline.jobs", logging.INFO, __file__, 1, "feed a: ok", None, None)
    record.feed_id, record.model_version = "a", "v7"  # type: ignore[attr-defined]
    line = logs.TextFormatter().format(record)
    assert line.endswith("INFO pipeline.jobs: feed a: ok [feed=a model=v7]")


@pytest.mark.slow
def test_the_command_line_writes_json_lines_with_secrets_masked(
    make_config, feed_server, tmp_path
) -> None:
    secret_url = f"http://reader:feedpass99@{feed_server.url.split('://')[1]}/gone.xml?token=t0k3n"
    config = make_config(
        feeds=[{"id": "guarded", "url": secret_url}],
        settings={"logging": {"format": "json"}},
    )
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--config", str(config.config_dir), "run-once"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr  # every feed failed
    assert "feedpass99" not in out.stderr and "t0k3n" not in out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.strip()]
    failed = next(x for x in lines if x["message"].startswith("feed guarded: FAILED"))
    assert failed["feed_id"] == "guarded" and failed["level"] == "WARNING"
    assert "404" in failed["message"]


@pytest.mark.parametrize("fmt", ["xml", 3])
def test_invalid_logging_format_is_refused(make_config, fmt: object) -> None:
    with pytest.raises(ConfigError, match=r"settings.yaml: logging.format: must be"):
        make_config(settings={"logging": {"format": fmt}})


def test_a_config_error_naming_a_url_hides_its_secrets(tmp_path, run_cli) -> None:
    hook = "ftp://ops:hunter2secret@hooks.example.org/in?token=tok-123"
    folder = write_config(
        tmp_path / "config",
        database_url=f"sqlite:///{tmp_path / 'sw.db'}",
        feeds=[{"id": "f1", "url": "http://127.0.0.1:9/feed.xml"}],
        subscriptions=[{"id": "hook", "channel": "webhook", "recipients": [hook]}],
    )
    code, _, err = run_cli("run-once", "--config", str(folder))
    assert code == 2 and "must be an http(s) URL" in err
    assert "hunter2secret" not in err and "tok-123" not in err
    assert "ftp://hooks.example.org/in?token=REDACTED" in err
