"""Hazards: conditional GET and back-off through the ingest stage.

* 304 on matching validators: no parse, no write (only the fetch is logged);
* 429 (and 503) with Retry-After: the feed's next fetch waits as told (``feeds.next_fetch_after``),
  the next run skips it and counts it deferred, the run after the date fetches it again;
* a server's hostile Retry-After (fifteen digits, a date in 9999) or validators that cannot be
  stored are contained: capped or dropped, never a crash of the run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from _httpfixtures import FEED_ETAG, FEED_XML, Exchange, MisbehavingServer, misbehaving_server
from helpers import NOW
from sqlalchemy import func, select

import pipeline.ingest.cycle as ingest_cycle
import pipeline.ingest.parsepool as parsepool
from pipeline.jobs import MAX_RETRY_AFTER, Runtime, ingest
from pipeline.store.schema import Article, Feed, FetchLog, Sighting

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server() -> MisbehavingServer:
    with misbehaving_server() as srv:
        yield srv


def _snapshot(rt: Runtime) -> list[tuple[Any, ...]]:
    with rt.sessions() as s:
        articles = [
            (a.id, a.key, a.title, a.revision, a.updated_at)
            for a in s.scalars(select(Article).order_by(Article.id))
        ]
        sightings = s.scalar(select(func.count()).select_from(Sighting))
    return [*articles, ("sightings", sightings)]


def _requests(server: MisbehavingServer, path: str) -> int:
    return sum(1 for r in server.requests if r.path == path)


def test_304_means_no_parse_and_no_write(
    make_config, db_url: str, server: MisbehavingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = Runtime.open(
        make_config(database_url=db_url, feeds=[{"id": "f", "url": server.url("/feed")}])
    )
    assert ingest(rt, now=NOW, run_id="first")["articles_new"] == 1
    before = _snapshot(rt)

    calls = {"parse": 0, "upsert": 0}

    def spy(name: str, real: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(parsepool, "parse_feed", spy("parse", parsepool.parse_feed))
    monkeypatch.setattr(ingest_cycle, "upsert_entries", spy("upsert", ingest_cycle.upsert_entries))
    report = ingest(rt, now=NOW + timedelta(minutes=15), run_id="second")
    after = _snapshot(rt)
    with rt.sessions() as s:
        logged = s.scalars(select(FetchLog).where(FetchLog.run_id == "second")).one()
        feed = s.get(Feed, "f")
    rt.close()
    assert server.requests[-1].headers["if-none-match"] == FEED_ETAG
    assert (report["feeds_not_modified"], report["articles_new"]) == (1, 0)
    assert calls == {"parse": 0, "upsert": 0}
    assert after == before
    assert (logged.outcome, logged.http_status, logged.bytes) == ("not_modified", 304, 0)
    assert feed.etag == FEED_ETAG and feed.last_ok_at == NOW + timedelta(minutes=15)


@pytest.mark.parametrize(
    ("code", "retry_after", "wait"),
    [
        (429, "120", timedelta(seconds=120)),
        (503, "3600", timedelta(hours=1)),
        # Hostile values: capped, never an overflow that would stop the run.
        (429, "999999999999999", MAX_RETRY_AFTER),
        (503, "Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
    ],
)
def test_retry_after_defers_the_next_fetch_as_told(
    make_config,
    db_url: str,
    server: MisbehavingServer,
    code: int,
    retry_after: str,
    wait: timedelta,
) -> None:
    path = "/status"
    url = server.url(f"{path}?code={code}&retry_after={retry_after.replace(' ', '%20')}")
    feeds = [{"id": "busy", "url": url}, {"id": "ok", "url": server.url("/feed")}]
    rt = Runtime.open(make_config(database_url=db_url, feeds=feeds))
    first = ingest(rt, now=NOW, run_id="first")
    with rt.sessions() as s:
        busy = s.get(Feed, "busy")
        assert busy.next_fetch_after == NOW + wait
        assert busy.last_error and str(code) in busy.last_error
    assert (first["feeds_ok"], first["feeds_failed"]) == (1, 1)
    assert _requests(server, path) == 1

    # Before the date: the feed is not fetched (and the other one is).
    early = ingest(rt, now=NOW + wait - timedelta(seconds=1), run_id="early")
    assert (early["feeds_deferred"], early["feeds_failed"]) == (1, 0)
    assert _requests(server, path) == 1
    assert _requests(server, "/feed") == 2

    # After it: fetched again.
    late = ingest(rt, now=NOW + wait + timedelta(seconds=1), run_id="late")
    rt.close()
    assert (late["feeds_deferred"], late["feeds_failed"]) == (0, 1)
    assert _requests(server, path) == 2


def test_http_date_retry_after_is_honoured(make_config, server: MisbehavingServer) -> None:
    # An HTTP-date is relative to the wall clock (the server's), so this one runs on real time.
    now = datetime.now(UTC).replace(microsecond=0)
    when = format_datetime(now + timedelta(minutes=10), usegmt=True).replace(" ", "%20")
    rt = Runtime.open(
        make_config(
            feeds=[{"id": "busy", "url": server.url(f"/status?code=503&retry_after={when}")}]
        )
    )
    ingest(rt, now=now, run_id="first")
    with rt.sessions() as s:
        deferred_until = s.get(Feed, "busy").next_fetch_after
    rt.close()
    assert timedelta(minutes=9) <= deferred_until - now <= timedelta(minutes=10, seconds=1)


def test_validators_that_cannot_be_stored_are_dropped(
    make_config, db_url: str, server: MisbehavingServer
) -> None:
    long_etag = '"' + "e" * 900 + '"'  # longer than feeds.etag holds (PostgreSQL would refuse it)
    long_date = "Wed, 01 May 2024 10:00:00 GMT" + " " * 10 + "x" * 200

    def answer(ex: Exchange) -> None:
        ex.respond(
            200,
            {"Content-Type": "application/rss+xml", "ETag": long_etag, "Last-Modified": long_date},
            FEED_XML,
        )

    server.route("/long-validators", answer)
    feeds = [
        {"id": "long", "url": server.url("/long-validators")},
        {"id": "ok", "url": server.url("/feed")},
    ]
    rt = Runtime.open(make_config(database_url=db_url, feeds=feeds))
    report = ingest(rt, now=NOW, run_id="v")
    with rt.sessions() as s:
        long_feed, ok_feed = s.get(Feed, "long"), s.get(Feed, "ok")
    rt.close()
    assert (report["feeds_ok"], report["feeds_failed"], report["articles_new"]) == (2, 0, 1)
    assert (long_feed.etag, long_feed.last_modified) == (None, None)
    assert ok_feed.etag == FEED_ETAG
