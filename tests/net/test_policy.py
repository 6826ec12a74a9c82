"""Tests of the address policy and URL redaction (pipeline.net.policy)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from _httpfixtures import install_fake_dns
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.net.policy import (
    AllowList,
    blocked_reason,
    is_ip_literal,
    normalize_host,
    redact_url,
    resolve_host,
    vet_addresses,
)

# ------------------------------------------------------------------------------------ redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.org/feed.xml", "https://example.org/feed.xml"),
        ("https://alice:hunter2@example.org/rss", "https://example.org/rss"),
        ("https://alice@example.org:8443/rss", "https://example.org:8443/rss"),
        (
            "https://example.org/rss?token=abc&page=2",
            "https://example.org/rss?token=REDACTED&page=2",
        ),
        (
            "https://example.org/rss?api_key=k1&apiKey=k2&X-Amz-Signature=s&sessionid=x&format=rss",
            "https://example.org/rss?api_key=REDACTED&apiKey=REDACTED&X-Amz-Signature=REDACTED"
            "&sessionid=REDACTED&format=rss",
        ),
        # An opaque value is redacted whatever its parameter is called.
        (
            "https://example.org/rss?u=9f8e7d6c5b4a39281706f5e4&lang=en",
            "https://example.org/rss?u=REDACTED&lang=en",
        ),
        ("https://example.org/rss#access_token=xyz", "https://example.org/rss"),
        ("https://example.org/rss?keyword=sanctions", "https://example.org/rss?keyword=sanctions"),
        ("http://[::1]:8080/x?password=p", "http://[::1]:8080/x?password=REDACTED"),
        ("reader:s3cret@feeds.example.org/rss", "reader:feeds.example.org/rss"),  # no "//"
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_escapes_line_breaks_so_logs_cannot_be_forged() -> None:
    out = redact_url("https://example.org/a\r\nFAKE LOG LINE\x1b[2J")
    assert "\n" not in out
    assert "\r" not in out
    assert "\x1b" not in out
    assert "%1B" in out


def test_redact_url_on_unparseable_url_keeps_no_secret() -> None:
    out = redact_url("http://user:topsecret@[::1/feed?token=topsecret2")
    assert "topsecret" not in out
    assert "REDACTED" in out


@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=40),
    path=st.text(alphabet="abcdefgh/", max_size=10),
)
def test_redact_url_never_leaks_userinfo_or_token(secret: str, path: str) -> None:
    marked = f"ZQ{secret}"  # cannot occur in the rest of the URL
    url = f"https://reader:{marked}@feeds.example.org/{path}?token={marked}&password={marked}"
    assert marked not in redact_url(url)


@given(st.text())
def test_redact_url_never_raises(text: str) -> None:
    out = redact_url(text)
    assert isinstance(out, str)
    assert "\n" not in out


# -------------------------------------------------------------------------------- blocked_reason


@pytest.mark.parametrize(
    ("address", "needle"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "this network"),
        ("::", "unspecified"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("2002:7f00:1::", "6to4"),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "NAT64"),  # NAT64 wrapping 169.254.169.254
        ("192.0.2.1", "address"),  # TEST-NET-1 documentation range
    ],
)
def test_blocked_reason_refuses(address: str, needle: str) -> None:
    reason = blocked_reason(address)
    assert reason is not None
    assert needle in reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::1"]
)
def test_blocked_reason_allows_public(address: str) -> None:
    assert blocked_reason(address) is None


_REFUSED_NETWORKS = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "0.0.0.0/8",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    "::ffff:0:0/96",
]


@given(data=st.data(), network=st.sampled_from(_REFUSED_NETWORKS))
def test_every_address_in_refused_networks_is_refused(data: st.DataObject, network: str) -> None:
    net = ipaddress.ip_network(network)
    offset = data.draw(st.integers(min_value=0, max_value=net.num_addresses - 1))
    address = net.network_address + offset
    assert blocked_reason(address) is not None


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_ipv4_mapped_form_is_never_allowed(value: int) -> None:
    v4 = ipaddress.IPv4Address(value)
    assert blocked_reason(ipaddress.IPv6Address(f"::ffff:{v4}")) is not None


def test_blocked_reason_rejects_non_ip() -> None:
    with pytest.raises(ValueError):
        blocked_reason("example.org")


# -------------------------------------------------------------------------- allow-list and vetting


def test_allow_list_parses_names_ips_and_networks() -> None:
    allow = AllowList.from_entries(["Feeds.Internal.", "127.0.0.1", "[::1]", "10.20.0.0/16"])
    assert allow.allows_host("feeds.internal")
    assert allow.allows_host("FEEDS.INTERNAL.")
    assert not allow.allows_host("other.internal")
    assert allow.allows_address(ipaddress.ip_address("127.0.0.1"))
    assert allow.allows_address(ipaddress.ip_address("::1"))
    assert allow.allows_address(ipaddress.ip_address("10.20.3.4"))
    assert not allow.allows_address(ipaddress.ip_address("10.21.0.1"))
    # The IPv4-mapped form of an allowed IPv4 address is allowed too.
    assert allow.allows_address(ipaddress.ip_address("::ffff:127.0.0.1"))


@pytest.mark.parametrize("entries", ["localhost", ["bad host"], [""], ["a/b/c"], [None]])
def test_allow_list_rejects_invalid_entries(entries: object) -> None:
    with pytest.raises(ConfigError, match="allow_hosts"):
        AllowList.from_entries(entries)  # type: ignore[arg-type]


def test_vet_refuses_a_host_when_any_address_is_refused() -> None:
    verdict = vet_addresses("mixed.example", ["93.184.216.34", "10.0.0.7"], AllowList())
    assert not verdict.allowed
    assert [r.address for r in verdict.refusals] == ["10.0.0.7"]
    assert "10.0.0.7" in verdict.explain()
    assert "private" in verdict.explain()


def test_vet_allows_public_addresses() -> None:
    verdict = vet_addresses("feeds.example", ["93.184.216.34", "2606:4700:4700::1111"], AllowList())
    assert verdict.allowed
    assert verdict.refusals == ()


def test_vet_honours_allow_list_by_name_and_by_ip() -> None:
    by_name = AllowList.from_entries(["intranet.example"])
    assert vet_addresses("intranet.example", ["10.0.0.7"], by_name).allowed
    assert not vet_addresses("other.example", ["10.0.0.7"], by_name).allowed
    by_ip = AllowList.from_entries(["10.0.0.7"])
    assert vet_addresses("anything.example", ["10.0.0.7"], by_ip).allowed
    assert not vet_addresses("anything.example", ["10.0.0.7", "10.0.0.8"], by_ip).allowed


def test_vet_without_addresses_is_not_allowed() -> None:
    verdict = vet_addresses("empty.example", [], AllowList())
    assert not verdict.allowed
    assert "no address" in verdict.explain()


def test_vet_refuses_garbage_address() -> None:
    assert not vet_addresses("x.example", ["not-an-ip"], AllowList()).allowed


# ------------------------------------------------------------------------------------- resolution


def test_resolve_host_dedupes_and_keeps_order(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_fake_dns(monkeypatch, {"multi.test": ["192.0.2.1", "2001:db8::1", "192.0.2.1"]})
    assert resolve_host("multi.test", 443) == ("192.0.2.1", "2001:db8::1")
    assert fake.calls == ["multi.test"]


def test_resolve_host_propagates_resolver_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_dns(monkeypatch, {})
    with pytest.raises(socket.gaierror):
        resolve_host("nowhere.test", 80)


@settings(max_examples=50)
@given(st.ip_addresses())
def test_is_ip_literal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert is_ip_literal(str(ip))


def test_normalize_host() -> None:
    assert normalize_host("Example.ORG.") == "example.org"
    assert normalize_host("[::1]") == "::1"
    assert normalize_host("bücher.example") == "xn--bcher-kva.example"
