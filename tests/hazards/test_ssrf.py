"""Hazards: feed hosts that resolve to this machine or its private network (SSRF), at ingest level.

A feed URL is operator config, but what its host *resolves to* and where its server *redirects*
are decided by others. Names are resolved by a fake resolver (``tests/_httpfixtures.FakeDNS``;
numeric forms such as ``2130706433`` go to the system's numeric parser, never the network), every
``connect()`` is recorded, and a real loopback server stands where an internal service would be.
Pass criterion: no connection to a refused address unless the operator allow-listed the host; the
refusal is a feed error that names the reason, and the other feeds are processed.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import quote

import pytest
from _httpfixtures import MisbehavingServer, install_fake_dns, misbehaving_server
from helpers import NOW
from sqlalchemy import select

from pipeline.jobs import Runtime, ingest
from pipeline.store.schema import FetchLog

_REAL_GETADDRINFO = socket.getaddrinfo

pytestmark = pytest.mark.timeout(60)


def _numeric(name: str) -> Any:
    """Resolve an IPv4 number in any inet_aton form (2130706433, 0x7f.1, 127.1) like libc does."""
    return lambda: sorted(
        {ai[4][0] for ai in _REAL_GETADDRINFO(name, 80, flags=socket.AI_NUMERICHOST)}
    )


DNS = {
    "loopback.test": ["127.0.0.1"],
    "loopback6.test": ["::1"],
    "metadata.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "zero.test": ["0.0.0.0"],
    "private.test": ["10.0.0.5"],
    "mixed.test": ["93.184.216.34", "127.0.0.1"],  # one public and one loopback record
    "feeds.test": ["127.0.0.1"],  # the one name the operator allow-lists below
    "rebind.test": None,  # set per test: a different answer on every lookup
    "2130706433": _numeric("2130706433"),
    "0x7f.1": _numeric("0x7f.1"),
    "127.1": _numeric("127.1"),
}


@pytest.fixture
def server() -> MisbehavingServer:
    with misbehaving_server() as srv:
        yield srv


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address a socket tried to connect to (on top of the offline guard of conftest.py)."""
    attempts: list[str] = []
    inner = socket.socket.connect

    def record(self: socket.socket, address: Any) -> Any:
        attempts.append(str(address[0]) if isinstance(address, tuple) else str(address))
        return inner(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    return attempts


def _ingest(make_config, feeds: list[dict[str, str]], allow: list[str]) -> tuple[dict, dict]:
    rt = Runtime.open(make_config(feeds=feeds, settings={"fetch": {"allow_hosts": allow}}))
    try:
        report = ingest(rt, now=NOW, run_id="ssrf")
        with rt.sessions() as s:
            log = {r.feed_id: r for r in s.scalars(select(FetchLog))}
    finally:
        rt.close()
    return report, log


def test_hosts_resolving_to_internal_addresses_are_never_connected(
    make_config, server: MisbehavingServer, connections: list[str], monkeypatch
) -> None:
    install_fake_dns(monkeypatch, DNS)
    port = server.port
    targets = {
        "name-loopback": f"http://loopback.test:{port}/feed",
        "name-loopback6": f"http://loopback6.test:{port}/feed",
        "name-metadata": "http://metadata.test/latest/meta-data/",
        "name-mapped": f"http://mapped.test:{port}/feed",
        "name-zero": f"http://zero.test:{port}/feed",
        "name-private": f"http://private.test:{port}/feed",
        "name-mixed": f"http://mixed.test:{port}/feed",
        "ip-loopback": f"http://127.0.0.1:{port}/feed",
        "ip-loopback6": f"http://[::1]:{port}/feed",
        "ip-metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "ip-mapped": f"http://[::ffff:127.0.0.1]:{port}/feed",
        "ip-zero": f"http://0.0.0.0:{port}/feed",
        "ip-decimal": f"http://2130706433:{port}/feed",
        "ip-hex": f"http://0x7f.1:{port}/feed",
        "ip-short": f"http://127.1:{port}/feed",
    }
    feeds = [{"id": k, "url": v} for k, v in targets.items()]
    report, log = _ingest(make_config, feeds, allow=[])
    assert report["feeds_failed"] == len(targets) and report["feeds_ok"] == 0
    assert connections == []  # not one connect() anywhere
    assert server.requests == []
    for feed_id, row in log.items():
        assert "refused by the address policy" in row.error, (feed_id, row.error)
    reasons = {k: log[k].error for k in targets}
    assert "link-local" in reasons["name-metadata"] and "link-local" in reasons["ip-metadata"]
    assert "IPv4-mapped" in reasons["ip-mapped"] and "IPv4-mapped" in reasons["name-mapped"]
    assert "unspecified" in reasons["ip-zero"] and "unspecified" in reasons["name-zero"]
    assert "loopback" in reasons["ip-decimal"] and "loopback" in reasons["name-mixed"]


def test_redirects_to_internal_addresses_are_never_followed(
    make_config, server: MisbehavingServer, connections: list[str], monkeypatch
) -> None:
    install_fake_dns(monkeypatch, DNS)
    port = server.port
    targets = {
        "to-loopback-ip": f"http://127.0.0.1:{port}/feed",
        "to-loopback-name": f"http://loopback.test:{port}/feed",
        "to-metadata": "http://169.254.169.254/latest/meta-data/",
        "to-mapped": f"http://[::ffff:127.0.0.1]:{port}/feed",
        "to-zero": f"http://0.0.0.0:{port}/feed",
        "to-decimal": f"http://2130706433:{port}/feed",
    }
    # The operator allow-listed one name (feeds.test -> 127.0.0.1), not the address: the first hop
    # is allowed, and every redirect hop is checked again on its own.
    feeds = [
        {"id": k, "url": f"http://feeds.test:{port}/redirect?code=302&to={quote(v, safe='')}"}
        for k, v in targets.items()
    ]
    report, log = _ingest(make_config, feeds, allow=["feeds.test"])
    assert report["feeds_failed"] == len(targets)
    assert [r.path for r in server.requests] == ["/redirect"] * len(targets)
    assert set(connections) == {"127.0.0.1"} and len(connections) == len(targets)
    for feed_id in targets:
        assert "refused by the address policy" in log[feed_id].error, log[feed_id].error
        assert "after 1 redirect(s)" in log[feed_id].error


def test_allow_listed_hosts_are_fetched_and_pinned_against_rebinding(
    make_config, server: MisbehavingServer, connections: list[str], monkeypatch
) -> None:
    # First lookup: 127.0.0.1 (allow-listed by IP); every later one: cloud metadata. A fetcher that
    # resolved again at connect time would go there.
    answers = iter([["127.0.0.1"]])
    table = {**DNS, "rebind.test": lambda: next(answers, ["169.254.169.254"])}
    install_fake_dns(monkeypatch, table)
    port = server.port
    feeds = [
        {"id": "by-ip", "url": f"http://127.0.0.1:{port}/feed"},
        {"id": "by-name", "url": f"http://feeds.test:{port}/feed"},
        {"id": "rebind", "url": f"http://rebind.test:{port}/feed"},
        {"id": "metadata", "url": "http://metadata.test/latest/meta-data/"},
    ]
    report, log = _ingest(make_config, feeds, allow=["127.0.0.1", "feeds.test"])
    assert (report["feeds_ok"], report["feeds_failed"]) == (3, 1)
    assert "link-local" in log["metadata"].error
    assert set(connections) == {"127.0.0.1"}
    assert sorted(r.headers["host"] for r in server.requests) == sorted(
        [f"127.0.0.1:{port}", f"feeds.test:{port}", f"rebind.test:{port}"]
    )
