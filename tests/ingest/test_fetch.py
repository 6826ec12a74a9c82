"""Tests of the feed fetcher (pipeline.ingest.fetch) and the demo feed server (pipeline.devtools.feedserver).

Unit tests drive ``fetch_feed`` through ``httpx.MockTransport`` clients with a fake resolver; the
integration tests use real loopback servers from ``_httpfixtures`` (127.0.0.1 allow-listed there).
Timing assertions are deliberately generous: a deadline of 1-1.5 s must end the call within 6 s.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from _httpfixtures import (
    FEED_ETAG,
    FEED_LAST_MODIFIED,
    FEED_XML,
    FakeDNS,
    MisbehavingServer,
    install_fake_dns,
    misbehaving_server,
)
from hypothesis import given
from hypothesis import strategies as st

from pipeline.devtools.feedserver import content_type_for, serve_directory
from pipeline.devtools.feedserver import main as feedserver_main
from pipeline.errors import ConfigError, FetchError
from pipeline.ingest.fetch import (
    ACCEPT_ENCODING,
    BlockedAddressError,
    ContentDecodingError,
    DeadlineExceeded,
    FetchPolicy,
    FetchResult,
    FetchTimeout,
    HTTPStatusError,
    InvalidURLError,
    NetworkError,
    ResolutionError,
    TooManyRedirects,
    UnsupportedScheme,
    fetch_feed,
    parse_retry_after,
)
from pipeline.net.watchdog import Watchdog

REPO = Path(__file__).resolve().parents[2]
PUBLIC_IP = "93.184.216.34"
FEED_URL = "https://feeds.example.org/world/rss.xml"
DNS_TABLE = {
    "feeds.example.org": [PUBLIC_IP],
    "cdn.example.net": ["151.101.1.1", "2a04:4e42::1"],
    "evil.example": ["10.0.0.5"],
    "mixed.example": [PUBLIC_IP, "127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "cgnat.example": ["100.64.1.1"],
    "zero.example": ["0.0.0.0"],
    "v6any.example": ["::"],
    "multicast.example": ["239.1.2.3"],
    "reserved.example": ["240.0.0.9"],
    "loopback.example": ["127.0.0.1"],
}
LOOPBACK = frozenset({"127.0.0.1"})
SLOW = {"connect_timeout": 30.0, "read_timeout": 30.0}  # only the total deadline can stop these


def loopback_policy(**kwargs: Any) -> FetchPolicy:
    return FetchPolicy(allow_hosts=LOOPBACK, **kwargs)


Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that records requests and answers from a function."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


class ExplodingStream(httpx.SyncByteStream):
    """A body that fails the test if anyone reads it."""

    def __iter__(self) -> Iterator[bytes]:
        raise AssertionError("the body must not be read")


class Body(httpx.SyncByteStream):
    """A streamed body (with ``content=`` httpx reads and decodes it before fetch_feed sees it)."""

    def __init__(self, data: bytes, chunk: int = 16384) -> None:
        self.data = data
        self.chunk = chunk

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.chunk):
            yield self.data[start : start + self.chunk]


class SlowStream(httpx.SyncByteStream):
    def __init__(self, pause: float) -> None:
        self.pause = pause

    def __iter__(self) -> Iterator[bytes]:
        while True:
            time.sleep(self.pause)
            yield b"<"


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    return install_fake_dns(monkeypatch, DNS_TABLE)


@pytest.fixture
def server() -> Iterator[MisbehavingServer]:
    with misbehaving_server() as srv:
        yield srv


def mock_fetch(
    answer: Handler, url: str = FEED_URL, **kwargs: Any
) -> tuple[FetchResult | FetchError, Recorder]:
    """Run fetch_feed through a MockTransport; returns (result or raised FetchError, recorder)."""
    recorder = Recorder(answer)
    with httpx.Client(transport=httpx.MockTransport(recorder)) as client:
        try:
            outcome: FetchResult | FetchError = fetch_feed(url, client=client, **kwargs)
        except FetchError as exc:
            outcome = exc
    return outcome, recorder


def ok_feed(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        headers={
            "Content-Type": "application/rss+xml",
            "ETag": FEED_ETAG,
            "Last-Modified": FEED_LAST_MODIFIED,
        },
        stream=Body(FEED_XML),
    )


# ---------------------------------------------------------------------------------------- policy


def test_policy_defaults_match_the_spec() -> None:
    policy = FetchPolicy()
    assert (policy.connect_timeout, policy.read_timeout, policy.total_deadline) == (5.0, 15.0, 30.0)
    assert policy.max_bytes == 5 * 1024 * 1024
    assert policy.max_redirects == 5
    assert policy.allow_hosts == frozenset()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"connect_timeout": 0},
        {"read_timeout": -1.0},
        {"total_deadline": float("inf")},
        {"total_deadline": True},
        {"max_bytes": 0},
        {"max_redirects": -1},
        {"user_agent": "evil\r\nX-Injected: 1"},
        {"allow_hosts": "127.0.0.1"},  # a bare string would become a set of characters
        {"allow_hosts": frozenset({"not a host"})},
    ],
)
def test_policy_rejects_invalid_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"FetchPolicy|allow_hosts"):
        FetchPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_accepts_any_iterable_of_hosts() -> None:
    policy = FetchPolicy(allow_hosts=("127.0.0.1", "feeds.internal"))  # type: ignore[arg-type]
    assert policy.allow_hosts == frozenset({"127.0.0.1", "feeds.internal"})


# ---------------------------------------------------------------------------- schemes and URLs


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://feeds.example.org/rss.xml",
        "data:application/rss+xml,<rss/>",
        "gopher://feeds.example.org/",
        "javascript:alert(1)",
        "/etc/passwd",
        "feeds/world.xml",
        "",
    ],
)
def test_non_http_urls_are_refused_before_any_io(dns: FakeDNS, url: str) -> None:
    outcome, recorder = mock_fetch(ok_feed, url=url)
    assert isinstance(outcome, UnsupportedScheme)
    assert recorder.requests == []
    assert dns.calls == []
    assert "only http and https" in str(outcome) or "absolute" in str(outcome)


@pytest.mark.parametrize(
    "url", ["http://", "https:///feed.xml", "http://feeds.example.org:0/", "http://[::1/"]
)
def test_malformed_urls_are_refused(dns: FakeDNS, url: str) -> None:
    outcome, recorder = mock_fetch(ok_feed, url=url)
    assert isinstance(outcome, InvalidURLError)
    assert recorder.requests == []


# -------------------------------------------------------------------------------- success path


def test_fetch_returns_body_validators_and_sends_our_headers(dns: FakeDNS) -> None:
    outcome, recorder = mock_fetch(ok_feed)
    assert isinstance(outcome, FetchResult)
    assert outcome.status == "ok"
    assert outcome.http_status == 200
    assert outcome.content == FEED_XML
    assert outcome.content_type == "application/rss+xml"
    assert outcome.etag == FEED_ETAG
    assert outcome.last_modified == FEED_LAST_MODIFIED
    assert outcome.truncated is False
    assert outcome.url == FEED_URL
    assert outcome.elapsed >= 0
    (request,) = recorder.requests
    assert request.headers["user-agent"] == FetchPolicy().user_agent
    assert request.headers["accept-encoding"] == ACCEPT_ENCODING
    assert "rss+xml" in request.headers["accept"]
    assert "if-none-match" not in request.headers
    assert "if-modified-since" not in request.headers
    assert dns.calls == ["feeds.example.org"]


def test_injected_client_gets_the_policy_user_agent(dns: FakeDNS) -> None:
    outcome, recorder = mock_fetch(ok_feed, policy=FetchPolicy(user_agent="probe/1.0"))
    assert isinstance(outcome, FetchResult)
    assert recorder.requests[0].headers["user-agent"] == "probe/1.0"


def test_wrong_content_type_is_reported_not_judged(dns: FakeDNS) -> None:
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Type": "text/html"}, stream=Body(b"<html></html>")
        )

    outcome, _ = mock_fetch(html)
    assert isinstance(outcome, FetchResult)
    assert outcome.content_type == "text/html"
    assert outcome.content == b"<html></html>"


# --------------------------------------------------------------------------------- conditional


def test_conditional_get_sends_validators_and_304_reads_no_body(dns: FakeDNS) -> None:
    def not_modified(request: httpx.Request) -> httpx.Response:
        assert request.headers["if-none-match"] == FEED_ETAG
        assert request.headers["if-modified-since"] == FEED_LAST_MODIFIED
        return httpx.Response(304, headers={"ETag": FEED_ETAG}, stream=ExplodingStream())

    outcome, recorder = mock_fetch(not_modified, etag=FEED_ETAG, last_modified=FEED_LAST_MODIFIED)
    assert isinstance(outcome, FetchResult), outcome
    assert outcome.status == "not_modified"
    assert outcome.http_status == 304
    assert outcome.content == b""
    assert outcome.etag == FEED_ETAG
    # The 304 carried no Last-Modified: the caller's validator still holds.
    assert outcome.last_modified == FEED_LAST_MODIFIED
    assert len(recorder.requests) == 1


def test_unsendable_validators_are_dropped(dns: FakeDNS) -> None:
    outcome, recorder = mock_fetch(ok_feed, etag='"x"\r\nX-Injected: 1', last_modified="é")
    assert isinstance(outcome, FetchResult)
    headers = recorder.requests[0].headers
    assert "if-none-match" not in headers
    assert "if-modified-since" not in headers
    assert "x-injected" not in headers


# ----------------------------------------------------------------------------- status codes


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 500, 502])
def test_error_statuses_raise_without_reading_the_body(dns: FakeDNS, status: int) -> None:
    outcome, _ = mock_fetch(lambda r: httpx.Response(status, stream=ExplodingStream()))
    assert isinstance(outcome, HTTPStatusError)
    assert outcome.http_status == status
    assert outcome.retry_after is None
    assert f"HTTP {status}" in str(outcome)
    assert FEED_URL in str(outcome)


def test_429_carries_retry_after_seconds(dns: FakeDNS) -> None:
    outcome, _ = mock_fetch(lambda r: httpx.Response(429, headers={"Retry-After": "120"}))
    assert isinstance(outcome, HTTPStatusError)
    assert outcome.http_status == 429
    assert outcome.retry_after == 120.0


def test_503_carries_retry_after_from_an_http_date(dns: FakeDNS) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    outcome, _ = mock_fetch(lambda r: httpx.Response(503, headers={"Retry-After": when}))
    assert isinstance(outcome, HTTPStatusError)
    assert outcome.retry_after is not None
    assert 280 <= outcome.retry_after <= 301


def test_parse_retry_after_forms() -> None:
    now = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 3600 ") == 3600.0
    assert parse_retry_after("Wed, 01 May 2024 10:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Wed, 01 May 2024 09:00:00 GMT", now=now) == 0.0  # past: retry now
    for bad in (None, "", "-5", "1.5", "soon", "Wed, 99 Foo 2024"):
        assert parse_retry_after(bad, now=now) is None


@given(st.integers(min_value=0, max_value=10**12))
def test_parse_retry_after_delta_roundtrip(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == float(seconds)


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises(text: str) -> None:
    value = parse_retry_after(text)
    assert value is None or value >= 0


# ---------------------------------------------------------------------------------- redirects


def test_relative_redirect_is_resolved_and_followed(dns: FakeDNS) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/world/rss.xml":
            return httpx.Response(301, headers={"Location": "../moved/feed.xml"})
        return ok_feed(request)

    outcome, recorder = mock_fetch(answer)
    assert isinstance(outcome, FetchResult), outcome
    assert outcome.url == "https://feeds.example.org/moved/feed.xml"
    assert [str(r.url) for r in recorder.requests] == [
        FEED_URL,
        "https://feeds.example.org/moved/feed.xml",
    ]


def test_every_redirect_hop_is_vetted_again(dns: FakeDNS) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "feeds.example.org":
            return httpx.Response(302, headers={"Location": "https://cdn.example.net/rss"})
        return ok_feed(request)

    outcome, _ = mock_fetch(answer)
    assert isinstance(outcome, FetchResult), outcome
    assert dns.calls == ["feeds.example.org", "cdn.example.net"]


@pytest.mark.parametrize(
    ("location", "needle"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:8080/admin", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped"),
        ("http://evil.example/", "private"),
        ("http://0.0.0.0:6379/", "unspecified"),
    ],
)
def test_redirect_to_a_refused_address_is_blocked_before_connecting(
    dns: FakeDNS, location: str, needle: str
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "feeds.example.org":
            return httpx.Response(302, headers={"Location": location})
        raise AssertionError(f"the fetcher connected to {request.url}")

    # Even a client that would follow redirects itself must not: fetch_feed follows them by hand.
    recorder = Recorder(answer)
    transport = httpx.MockTransport(recorder)
    with (
        httpx.Client(transport=transport, follow_redirects=True) as client,
        pytest.raises(BlockedAddressError) as info,
    ):
        fetch_feed(FEED_URL, client=client)
    assert needle in str(info.value)
    assert "after 1 redirect(s) from https://feeds.example.org/world/rss.xml" in str(info.value)
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://feeds.example.org/x", "gopher://x/"]
)
def test_redirect_to_another_scheme_is_refused(dns: FakeDNS, location: str) -> None:
    outcome, recorder = mock_fetch(lambda r: httpx.Response(302, headers={"Location": location}))
    assert isinstance(outcome, UnsupportedScheme)
    assert len(recorder.requests) == 1


def test_too_many_redirects(dns: FakeDNS) -> None:
    outcome, recorder = mock_fetch(
        lambda r: httpx.Response(302, headers={"Location": "/again"}),
        policy=FetchPolicy(max_redirects=3),
    )
    assert isinstance(outcome, TooManyRedirects)
    assert outcome.max_redirects == 3
    assert len(recorder.requests) == 4  # the original request and three redirects


def test_zero_redirects_allowed(dns: FakeDNS) -> None:
    outcome, recorder = mock_fetch(
        lambda r: httpx.Response(301, headers={"Location": "/x"}),
        policy=FetchPolicy(max_redirects=0),
    )
    assert isinstance(outcome, TooManyRedirects)
    assert len(recorder.requests) == 1


def test_redirect_without_location_is_an_error(dns: FakeDNS) -> None:
    outcome, _ = mock_fetch(lambda r: httpx.Response(302))
    assert isinstance(outcome, HTTPStatusError)
    assert outcome.http_status == 302
    assert "Location" in str(outcome)


# ----------------------------------------------------------------------------- address policy


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "mixed.example",
        "metadata.example",
        "mapped.example",
        "cgnat.example",
        "zero.example",
        "v6any.example",
        "multicast.example",
        "reserved.example",
        "loopback.example",
        "127.0.0.1",
        "[::1]",
        "169.254.169.254",
        "100.64.0.1",
    ],
)
def test_refused_hosts_are_blocked_before_any_request(dns: FakeDNS, host: str) -> None:
    outcome, recorder = mock_fetch(ok_feed, url=f"http://{host}/rss")
    assert isinstance(outcome, BlockedAddressError)
    assert recorder.requests == []
    assert "allow_hosts" in str(outcome)


def test_allow_list_by_name_and_by_ip(dns: FakeDNS) -> None:
    by_name = FetchPolicy(allow_hosts=frozenset({"evil.example"}))
    outcome, _ = mock_fetch(ok_feed, url="http://evil.example/rss", policy=by_name)
    assert isinstance(outcome, FetchResult), outcome
    by_ip = FetchPolicy(allow_hosts=frozenset({"10.0.0.5"}))
    outcome, _ = mock_fetch(ok_feed, url="http://evil.example/rss", policy=by_ip)
    assert isinstance(outcome, FetchResult), outcome
    outcome, _ = mock_fetch(ok_feed, url="http://metadata.example/rss", policy=by_name)
    assert isinstance(outcome, BlockedAddressError)


def test_unresolvable_host(dns: FakeDNS) -> None:
    outcome, recorder = mock_fetch(ok_feed, url="https://no-such-host.example/rss")
    assert isinstance(outcome, ResolutionError)
    assert "no-such-host.example" in str(outcome)
    assert recorder.requests == []


# ------------------------------------------------------------------------ size cap and decoding


def _encoded(body: bytes, encoding: str, chunk: int = 7) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Encoding": encoding}
        return httpx.Response(200, headers=headers, stream=Body(body, chunk))

    return answer


def test_body_over_the_cap_is_truncated(dns: FakeDNS) -> None:
    body = bytes(range(256)) * 40  # 10240 bytes
    for chunk in (1, 999, 1000, 1001, 4096):
        outcome, _ = mock_fetch(
            _encoded(body, "identity", chunk), policy=FetchPolicy(max_bytes=1000)
        )
        assert isinstance(outcome, FetchResult)
        assert outcome.truncated is True
        assert outcome.content == body[:1000]


def test_in_memory_response_is_capped_too(dns: FakeDNS) -> None:
    outcome, _ = mock_fetch(
        lambda r: httpx.Response(200, content=b"a" * 5000), policy=FetchPolicy(max_bytes=1000)
    )
    assert isinstance(outcome, FetchResult)
    assert outcome.truncated is True
    assert outcome.content == b"a" * 1000


def test_body_exactly_at_the_cap_is_not_truncated(dns: FakeDNS) -> None:
    outcome, _ = mock_fetch(
        lambda r: httpx.Response(200, stream=Body(b"a" * 1000, 300)),
        policy=FetchPolicy(max_bytes=1000),
    )
    assert isinstance(outcome, FetchResult)
    assert outcome.truncated is False
    assert outcome.content == b"a" * 1000


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("gzip", gzip.compress(FEED_XML)),
        ("x-gzip", gzip.compress(FEED_XML)),
        ("deflate", zlib.compress(FEED_XML)),
        ("deflate", _raw_deflate(FEED_XML)),  # "deflate" sent without the zlib header
        ("identity", FEED_XML),
        ("GZIP", gzip.compress(FEED_XML)),
        ("gzip", gzip.compress(FEED_XML[:100]) + gzip.compress(FEED_XML[100:])),  # two members
        (
            "deflate, gzip",
            gzip.compress(zlib.compress(FEED_XML)),
        ),  # applied in order: undo gzip first
    ],
)
def test_content_encodings_are_decoded(dns: FakeDNS, encoding: str, payload: bytes) -> None:
    for chunk in (1, 7, 65536):  # however the network splits the compressed bytes
        outcome, _ = mock_fetch(_encoded(payload, encoding, chunk))
        assert isinstance(outcome, FetchResult), (chunk, outcome)
        assert outcome.content == FEED_XML


def test_cap_counts_decoded_bytes(dns: FakeDNS) -> None:
    bomb = gzip.compress(bytes(5_000_000))  # ~5 KB that inflates to 5 MB
    outcome, _ = mock_fetch(_encoded(bomb, "gzip"), policy=FetchPolicy(max_bytes=100_000))
    assert isinstance(outcome, FetchResult)
    assert outcome.truncated is True
    assert outcome.content == bytes(100_000)


@pytest.mark.parametrize(
    ("encoding", "payload", "needle"),
    [
        ("br", b"\x1b\x00", "unsupported content-encoding 'br'"),
        ("zstd", b"\x28\xb5\x2f\xfd", "unsupported"),
        ("gzip", b"this is not gzip at all", "corrupt gzip"),
        ("gzip", gzip.compress(FEED_XML)[:-30], "ended before"),
        ("gzip, gzip, gzip, gzip", b"", "too many"),
    ],
)
def test_bad_encodings_raise(dns: FakeDNS, encoding: str, payload: bytes, needle: str) -> None:
    outcome, _ = mock_fetch(_encoded(payload, encoding))
    assert isinstance(outcome, ContentDecodingError)
    assert needle in str(outcome)


# ------------------------------------------------------------------------------ deadline (unit)


def test_deadline_is_checked_between_chunks_of_a_slow_body(dns: FakeDNS) -> None:
    started = time.monotonic()
    outcome, _ = mock_fetch(
        lambda r: httpx.Response(200, stream=SlowStream(0.1)),
        policy=FetchPolicy(total_deadline=0.5),
    )
    assert isinstance(outcome, DeadlineExceeded)
    assert time.monotonic() - started < 4


def test_slow_dns_cannot_outlast_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def stuck() -> list[str]:
        release.wait(10)
        return [PUBLIC_IP]

    install_fake_dns(monkeypatch, {"slow-dns.example": stuck})
    started = time.monotonic()
    try:
        outcome, recorder = mock_fetch(
            ok_feed, url="http://slow-dns.example/", policy=FetchPolicy(total_deadline=1.0)
        )
    finally:
        release.set()
    assert isinstance(outcome, DeadlineExceeded)
    assert "resolving" in str(outcome)
    assert recorder.requests == []
    assert time.monotonic() - started < 5


def test_watchdog_unblocks_a_read_stuck_on_a_silent_peer() -> None:
    class Stream:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, info: str) -> object:
            return self.sock if info == "socket" else None

    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(10)  # if the watchdog failed, recv would raise TimeoutError after 10 s
        watchdog = Watchdog(time.monotonic() + 0.3)
        watchdog.track(Stream(ours))
        watchdog.start()
        started = time.monotonic()
        try:
            assert ours.recv(10) == b""
        finally:
            watchdog.cancel()
        assert watchdog.fired
        assert time.monotonic() - started < 5


# ------------------------------------------------------------------------- errors and logging


def test_credentials_never_reach_messages_or_logs(
    dns: FakeDNS, caplog: pytest.LogCaptureFixture
) -> None:
    url = "https://reader:pa55word@feeds.example.org/rss?token=t0psecret&page=2"
    caplog.set_level(logging.DEBUG)
    outcome, recorder = mock_fetch(lambda r: httpx.Response(500), url=url)
    assert isinstance(outcome, HTTPStatusError)
    assert recorder.requests[0].headers["authorization"].startswith("Basic ")  # creds were used ...
    text = str(outcome) + outcome.url + caplog.text
    for secret in ("pa55word", "t0psecret", "reader:"):
        assert secret not in text  # ... but never shown
    assert "https://feeds.example.org/rss?token=REDACTED&page=2" in str(outcome)
    assert "HTTP Request" in caplog.text  # httpx's own log line was captured, redacted


def test_errors_pickle_with_their_attributes(dns: FakeDNS) -> None:
    outcome, _ = mock_fetch(lambda r: httpx.Response(429, headers={"Retry-After": "7"}))
    assert isinstance(outcome, HTTPStatusError)
    copy = pickle.loads(pickle.dumps(outcome))
    assert type(copy) is HTTPStatusError
    assert (copy.http_status, copy.retry_after, copy.url, str(copy)) == (
        429,
        7.0,
        outcome.url,
        str(outcome),
    )
    assert isinstance(copy, FetchError)


# ======================================================================== integration: loopback


def test_loopback_is_refused_unless_allow_listed(server: MisbehavingServer) -> None:
    with pytest.raises(BlockedAddressError, match="loopback"):
        fetch_feed(server.url("/feed"))
    assert server.requests == []
    result = fetch_feed(server.url("/feed"), policy=loopback_policy())
    assert result.content == FEED_XML
    assert server.requests[0].headers["user-agent"] == FetchPolicy().user_agent
    assert server.requests[0].headers["accept-encoding"] == ACCEPT_ENCODING


def test_conditional_get_against_a_real_server(server: MisbehavingServer) -> None:
    first = fetch_feed(server.url("/feed"), policy=loopback_policy())
    assert (first.status, first.etag, first.last_modified) == ("ok", FEED_ETAG, FEED_LAST_MODIFIED)
    again = fetch_feed(server.url("/feed"), etag=first.etag, policy=loopback_policy())
    assert (again.status, again.http_status, again.content) == ("not_modified", 304, b"")
    by_date = fetch_feed(
        server.url("/feed"), last_modified=first.last_modified, policy=loopback_policy()
    )
    assert by_date.status == "not_modified"


def test_relative_redirect_chain_on_a_real_server(server: MisbehavingServer) -> None:
    result = fetch_feed(server.url("/chain?n=3"), policy=loopback_policy())
    assert result.content == FEED_XML
    assert result.url == server.url("/chain?n=0")
    with pytest.raises(TooManyRedirects):
        fetch_feed(server.url("/chain?n=3"), policy=loopback_policy(max_redirects=2))
    with pytest.raises(TooManyRedirects):
        fetch_feed(server.url("/loop"), policy=loopback_policy())


def test_redirect_from_an_allowed_name_to_loopback_ip_is_blocked(
    server: MisbehavingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_dns(monkeypatch, {"feeds.test": ["127.0.0.1"]})
    policy = FetchPolicy(allow_hosts=frozenset({"feeds.test"}))
    # The name is allowed, so the first hop goes through ...
    assert fetch_feed(f"http://feeds.test:{server.port}/feed", policy=policy).content == FEED_XML
    # ... but a redirect to the bare loopback IP, or to cloud metadata, is checked and refused.
    for target in (server.url("/feed"), "http://169.254.169.254/latest/meta-data/"):
        before = len(server.requests)
        with pytest.raises(BlockedAddressError):
            fetch_feed(f"http://feeds.test:{server.port}/redirect?to={target}", policy=policy)
        assert len(server.requests) == before + 1  # only the redirecting request reached a server


def test_connection_goes_to_the_vetted_address_not_a_rebound_one(
    server: MisbehavingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # First answer: 127.0.0.1 (allow-listed by IP); any later lookup: 127.0.0.2, where nothing
    # listens. A fetcher that resolved again at connect time would get "connection refused".
    answers = iter([["127.0.0.1"]])
    fake = install_fake_dns(monkeypatch, {"rebind.test": lambda: next(answers, ["127.0.0.2"])})
    result = fetch_feed(f"http://rebind.test:{server.port}/feed", policy=loopback_policy())
    assert result.content == FEED_XML
    assert fake.calls == ["rebind.test"]
    assert server.requests[0].headers["host"] == f"rebind.test:{server.port}"


def test_429_and_503_from_a_real_server(server: MisbehavingServer) -> None:
    with pytest.raises(HTTPStatusError) as info:
        fetch_feed(server.url("/status?code=429&retry_after=30"), policy=loopback_policy())
    assert (info.value.http_status, info.value.retry_after) == (429, 30.0)
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    with pytest.raises(HTTPStatusError) as info:
        fetch_feed(server.url(f"/status?code=503&retry_after={when}"), policy=loopback_policy())
    assert info.value.http_status == 503
    assert info.value.retry_after is not None
    assert 100 <= info.value.retry_after <= 121


def test_wrong_content_type_from_a_real_server(server: MisbehavingServer) -> None:
    result = fetch_feed(server.url("/wrong-type"), policy=loopback_policy())
    assert result.content_type == "text/html; charset=utf-8"


def test_server_closing_without_answer_is_a_network_error(server: MisbehavingServer) -> None:
    with pytest.raises(NetworkError, match=r"disconnected|closed|reset"):
        fetch_feed(server.url("/close"), policy=loopback_policy())


def test_connection_refused_is_a_network_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NetworkError) as info:
        fetch_feed(f"http://127.0.0.1:{port}/feed", policy=loopback_policy())
    assert not isinstance(info.value, FetchTimeout)


@pytest.mark.parametrize("with_length", ["1", "0"])
def test_huge_body_is_truncated_at_the_cap(server: MisbehavingServer, with_length: str) -> None:
    cap = 1 << 20
    started = time.monotonic()
    result = fetch_feed(
        server.url(f"/huge?size={256 << 20}&length={with_length}"),
        policy=loopback_policy(max_bytes=cap),
    )
    assert result.truncated is True
    assert len(result.content) == cap
    assert result.content == b"x" * cap
    assert time.monotonic() - started < 10


def test_gzip_bomb_stays_bounded_in_memory(server: MisbehavingServer) -> None:
    cap = 2 << 20
    size = 64 << 20
    server.bomb(size)  # compress before measuring: the server runs in this process
    policy = loopback_policy(max_bytes=cap, total_deadline=20.0)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        result = fetch_feed(server.url(f"/gzip-bomb?size={size}"), policy=policy)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.truncated is True
    assert len(result.content) == cap
    assert result.content.count(0) == cap
    growth = peak - baseline
    assert growth < 3 * cap, (
        f"peak memory grew by {growth / 2**20:.1f} MiB for a {cap / 2**20:.0f} MiB cap"
    )


# ===================================================================== integration: the deadline


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("path", "phase"),
    [
        ("/silent", "waiting for the response"),
        ("/trickle-headers?interval=0.1", "waiting for the response"),
        ("/trickle-body?interval=0.1", "reading the body"),
    ],
)
def test_total_deadline_holds_against_stalling_servers(
    server: MisbehavingServer, path: str, phase: str
) -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        fetch_feed(server.url(path), policy=loopback_policy(total_deadline=1.5, **SLOW))
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 6
    assert phase in str(info.value)
    assert info.value.deadline == 1.5


@pytest.mark.timeout(30)
def test_deadline_holds_with_an_injected_real_client(server: MisbehavingServer) -> None:
    # The client's own timeouts are long and a trickle never trips a read timeout: only the
    # watchdog (reaching the socket through httpcore's trace hook) can end this.
    started = time.monotonic()
    with httpx.Client(timeout=30.0) as client, pytest.raises(DeadlineExceeded):
        fetch_feed(
            server.url("/trickle-headers?interval=0.1"),
            policy=loopback_policy(total_deadline=1.5, **SLOW),
            client=client,
        )
    assert time.monotonic() - started < 6


@pytest.mark.timeout(30)
def test_one_feeds_deadline_does_not_touch_other_fetches(server: MisbehavingServer) -> None:
    outcomes: dict[str, object] = {}

    def stalled() -> None:
        try:
            fetch_feed(server.url("/silent"), policy=loopback_policy(total_deadline=1.0, **SLOW))
        except FetchError as exc:
            outcomes["stalled"] = exc

    def steady() -> None:
        # ~1.8 s of trickle that spans the other fetch's deadline; it has its own, longer one.
        result = fetch_feed(
            server.url("/trickle-body?interval=0.15&length=12"),
            policy=loopback_policy(total_deadline=15.0),
        )
        outcomes["steady"] = result

    threads = [threading.Thread(target=stalled), threading.Thread(target=steady)]
    for thread in threads:
        thread.start()
    quick = [fetch_feed(server.url("/feed"), policy=loopback_policy()) for _ in range(5)]
    for thread in threads:
        thread.join(timeout=20)
    assert isinstance(outcomes["stalled"], DeadlineExceeded)
    steady_result = outcomes["steady"]
    assert isinstance(steady_result, FetchResult)
    assert steady_result.content == FEED_XML[:12]
    assert all(r.content == FEED_XML for r in quick)


# ============================================================================ integration: TLS


def _self_signed(directory: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_certificates_are_verified(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10)

        def serve_one() -> None:
            try:
                conn, _ = listener.accept()
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1024)
            except OSError:  # ssl.SSLError included: the client rejects our certificate
                pass

        thread = threading.Thread(target=serve_one)
        thread.start()
        port = listener.getsockname()[1]
        with pytest.raises(NetworkError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch_feed(f"https://127.0.0.1:{port}/feed", policy=loopback_policy())
        thread.join(timeout=10)


@pytest.mark.timeout(30)
def test_deadline_holds_during_a_tls_handshake_that_never_completes(
    server: MisbehavingServer,
) -> None:
    # The fixture server speaks plain HTTP and waits for a request head that a ClientHello never
    # completes: the handshake stalls until the deadline ends it.
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        fetch_feed(
            f"https://127.0.0.1:{server.port}/silent",
            policy=loopback_policy(total_deadline=1.5, **SLOW),
        )
    assert time.monotonic() - started < 6


# ========================================================================== the demo feed server


RSS = b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>t</title></channel></rss>\n'
ATOM = b'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>\n'


@pytest.fixture
def feed_dir(tmp_path: Path) -> Path:
    (tmp_path / "world.xml").write_bytes(RSS)
    (tmp_path / "atom.xml").write_bytes(ATOM)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "asia.rss").write_bytes(RSS)
    (tmp_path / ".hidden.xml").write_bytes(RSS)
    (tmp_path.parent / f"{tmp_path.name}-secret.txt").write_bytes(b"secret")
    return tmp_path


def _raw_get(port: int, target: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_feedserver_serves_with_validators_and_304(feed_dir: Path) -> None:
    policy = loopback_policy()
    with serve_directory(feed_dir) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        first = fetch_feed(srv.url_for("world.xml"), policy=policy)
        assert (first.http_status, first.content, first.content_type) == (
            200,
            RSS,
            "application/rss+xml",
        )
        assert first.etag is not None
        assert first.etag.startswith('"')
        assert first.last_modified is not None
        assert (
            fetch_feed(srv.url_for("world.xml"), etag=first.etag, policy=policy).status
            == "not_modified"
        )
        by_date = fetch_feed(
            srv.url_for("world.xml"), last_modified=first.last_modified, policy=policy
        )
        assert by_date.status == "not_modified"
        # A changed file gets a new ETag, and the old one no longer matches.
        (feed_dir / "world.xml").write_bytes(RSS.replace(b"<title>t", b"<title>u"))
        os.utime(feed_dir / "world.xml", (time.time() + 5, time.time() + 5))
        changed = fetch_feed(srv.url_for("world.xml"), etag=first.etag, policy=policy)
        assert changed.status == "ok"
        assert changed.etag != first.etag
        assert (
            fetch_feed(srv.url_for("atom.xml"), policy=policy).content_type
            == "application/atom+xml"
        )
        assert fetch_feed(srv.url_for("sub/asia.rss"), policy=policy).content == RSS
        index = fetch_feed(srv.url, policy=policy).content.decode()
        assert index.split() == ["atom.xml", "sub/asia.rss", "world.xml"]


def test_feedserver_refuses_traversal_and_hidden_files(feed_dir: Path) -> None:
    (feed_dir / "escape.xml").symlink_to(feed_dir.parent / f"{feed_dir.name}-secret.txt")
    with serve_directory(feed_dir) as srv:
        for target in (
            "/escape.xml",
            f"/../{feed_dir.name}-secret.txt",
            f"/%2e%2e/{feed_dir.name}-secret.txt",
            "/.hidden.xml",
            "/sub/../../etc/passwd",
            "/missing.xml",
            "/sub",
        ):
            answer = _raw_get(srv.port, target)
            assert answer.startswith(b"HTTP/1.1 404"), (target, answer[:60])
            assert b"secret" not in answer
        with pytest.raises(HTTPStatusError) as info:
            fetch_feed(srv.url_for("missing.xml"), policy=loopback_policy())
        assert info.value.http_status == 404


def test_feedserver_close_stops_listening(feed_dir: Path) -> None:
    srv = serve_directory(feed_dir)
    srv.close()
    srv.close()  # idempotent
    with pytest.raises(NetworkError):
        fetch_feed(srv.url_for("world.xml"), policy=loopback_policy())


def test_feedserver_rejects_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        serve_directory(tmp_path / "nope")
    assert feedserver_main(["--dir", str(tmp_path / "nope"), "--port", "0"]) == 2


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("a.rss", b"", "application/rss+xml"),
        ("a.atom", b"", "application/atom+xml"),
        ("a.xml", b'<?xml version="1.0"?><rss version="2.0">', "application/rss+xml"),
        ("a.xml", b"<?xml version='1.0'?>\n<feed xmlns='x'>", "application/atom+xml"),
        ("a.xml", b"<rdf:RDF>", "application/rdf+xml"),
        ("a.xml", b"<note/>", "application/xml"),
        ("a.bin", b"", "application/octet-stream"),
    ],
)
def test_content_type_for(name: str, head: bytes, expected: str) -> None:
    assert content_type_for(Path(name), head) == expected


@pytest.mark.timeout(60)
def test_feedserver_module_runs_until_terminated(feed_dir: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pipeline.devtools.feedserver",
        "--dir",
        str(feed_dir),
        "--port",
        "0",
    ]
    with subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stderr is not None
            line = proc.stderr.readline()
            match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
            assert match, line
            result = fetch_feed(match.group(1) + "world.xml", policy=loopback_policy())
            assert result.content == RSS
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert proc.returncode == 0
