"""Address policy for outbound feed fetches, and URL redaction for logs and error messages.

A feed URL comes from configuration or from a redirect the feed's server chose, so the fetcher must
not become a way to reach the machine it runs on or its private network (cloud metadata at
169.254.169.254, an admin port on 127.0.0.1, a database on 10.0.0.5). :func:`vet_addresses`
decides, for every address a host name resolves to, whether the fetcher may connect to it:

* refused: loopback, private (RFC 1918, ULA ``fc00::/7``), link-local, multicast, reserved,
  unspecified (``0.0.0.0``, ``::``), "this network" ``0.0.0.0/8``, shared address space (CGNAT
  ``100.64.0.0/10``), IPv4-mapped IPv6 (``::ffff:127.0.0.1``), IPv6 forms that embed a refused IPv4
  address (6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``), and anything else Python does not call
  globally routable;
* unless the operator allow-listed the host name, or the address (an IP, or a network in CIDR
  form), in ``FetchPolicy.allow_hosts``.

A host with *several* addresses is refused when any one of them is refused and not allow-listed: a
name that mixes public and private records is not one we want to connect to.

This module decides and resolves; it does not connect. :mod:`pipeline.ingest.fetch` connects only to the
addresses this module approved (it pins them, see there), which closes the DNS-rebinding gap
between "check" and "connect".
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from pipeline.errors import ConfigError

__all__ = [
    "AllowList",
    "Refusal",
    "Verdict",
    "blocked_reason",
    "is_ip_literal",
    "normalize_host",
    "redact_url",
    "resolve_host",
    "vet_addresses",
]

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))

REDACTED = "REDACTED"
# A query parameter is treated as a credential when a word of its name is one of these, or ends with
# one of the suffixes ("apikey", "accessToken", "X-Amz-Signature", "session_id" ...).
_SENSITIVE_WORDS = frozenset(
    {
        "auth",
        "bearer",
        "cred",
        "hash",
        "hmac",
        "jwt",
        "nonce",
        "otp",
        "pass",
        "private",
        "pw",
        "pwd",
        "sid",
        "sig",
        "ticket",
    }
)
_SENSITIVE_SUFFIXES = (
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "signature",
    "sig",
    "auth",
    "session",
    "sessionid",
    "credential",
    "credentials",
    "apikey",
)
# A value that looks like an opaque credential (long, mixing letters and digits) is redacted
# whatever its parameter is called.
_OPAQUE_VALUE = re.compile(r"[A-Za-z0-9_\-.~+/=]{20,}")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")


# --------------------------------------------------------------------------------------- redaction


def _sensitive_key(key: str) -> bool:
    words = [w for w in re.split(r"[^a-z0-9]+", unquote(key).lower()) if w]
    return any(w in _SENSITIVE_WORDS or w.endswith(_SENSITIVE_SUFFIXES) for w in words)


def _looks_opaque(value: str) -> bool:
    plain = unquote(value)
    return (
        _OPAQUE_VALUE.fullmatch(plain) is not None
        and any(c.isdigit() for c in plain)
        and any(c.isalpha() for c in plain)
    )


def _hides_secret(value: str, depth: int) -> bool:
    """Does a query value carry a URL or query string of its own with a credential in it?

    Redirectors and feed proxies take the real URL as a (percent-encoded) parameter:
    ``/r?to=%2Ffeed%3Ftoken%3Dabc``. The value is decoded and checked like a URL, a few levels deep;
    deeper nesting is assumed to hide something.
    """
    plain = value
    for _ in range(3):  # percent-encoded once, twice, ...
        decoded = unquote(plain)
        if decoded == plain:
            break
        plain = decoded
    if "=" not in plain and "@" not in plain:
        return False
    if depth >= 3:
        return True
    try:
        parts = urlsplit(plain)
    except ValueError:
        return True
    if "@" in parts.netloc:
        return True
    query = parts.query if (parts.query or "?" in plain) else plain
    return _redact_query(query, depth + 1) != query


def _redact_query(query: str, depth: int = 0) -> str:
    if not query:
        return ""
    out: list[str] = []
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        if sep:
            if value and (
                _sensitive_key(key) or _looks_opaque(value) or _hides_secret(value, depth)
            ):
                value = REDACTED
            out.append(f"{key}={value}")
        else:
            out.append(REDACTED if _looks_opaque(key) else key)
    return "&".join(out)


def _escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: f"%{ord(m.group()):02X}", text)


def redact_url(url: object) -> str:
    """Return ``url`` safe to log: no userinfo, credential-like query values replaced, no fragment.

    Query values are replaced (the names kept) when the parameter name looks like a credential
    (``token``, ``api_key``, ``sig``, ``password`` ...) or the value looks like an opaque token (20+
    characters mixing letters and digits). Control characters and spaces are percent-escaped so a
    hostile URL cannot forge log lines. Never raises: anything that does not parse as a URL is
    reduced to its part before any ``@``, ``?`` or ``#``. Secrets placed in the *path* of a URL are
    not recognised.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        # Unparseable (e.g. a broken IPv6 literal): keep only what cannot hold a credential.
        head = re.split(r"[?#]", text, maxsplit=1)[0]
        scheme, sep, rest = head.partition("://")
        if sep:
            rest = rest.rpartition("@")[2]
            head = f"{scheme}://{rest}"
        elif "@" in head:
            head = head.rpartition("@")[2]
        suffix = f"?{REDACTED}" if len(head) < len(text) else ""
        return _escape_controls(head + suffix)
    netloc = parts.netloc.rpartition("@")[2]
    path = parts.path
    if not parts.netloc and "@" in path:  # "user:secret@host/feed" parses as scheme "user"
        path = path.rpartition("@")[2]
    redacted = urlunsplit((parts.scheme, netloc, path, _redact_query(parts.query), ""))
    return _escape_controls(redacted)


# ----------------------------------------------------------------------------------- address policy


def normalize_host(host: str) -> str:
    """Lower-case a host name, drop a trailing dot and IPv6 brackets, IDNA-encode non-ASCII."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name.isascii():
        with contextlib.suppress(UnicodeError):
            name = name.encode("idna").decode("ascii")
    return name


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if any(ip in net for net in _NAT64):
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def blocked_reason(address: str | IPAddress) -> str | None:
    """Why the fetcher must not connect to ``address``, or ``None`` when it is a public address.

    Raises ``ValueError`` when ``address`` is not an IP address.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"IPv4-mapped IPv6 address (of {ip.ipv4_mapped})"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            kind, v4 = embedded
            inner = blocked_reason(v4)
            if inner is not None:
                return f"{kind} address embedding {v4} ({inner})"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address (cloud metadata lives here)"
    if ip.is_multicast:
        return "multicast address"
    if isinstance(ip, ipaddress.IPv4Address):
        if ip in _THIS_NETWORK:
            return "'this network' address (0.0.0.0/8)"
        if ip in _SHARED_ADDRESS_SPACE:
            return "shared address space (CGNAT 100.64.0.0/10) address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local address"
    if ip.is_reserved:
        return "reserved address"
    if ip.is_private:
        return "private address"
    if not ip.is_global:
        return "not globally routable address"
    return None


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts the operator allows even though their addresses are refused by default."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str]) -> AllowList:
        """Parse ``allow_hosts`` entries: host names, IP addresses, or networks in CIDR form.

        Raises :class:`ConfigError` for an entry that is none of these.
        """
        if isinstance(entries, str | bytes):
            raise ConfigError(
                "allow_hosts: expected a collection of host names or IPs, got the string "
                f"{entries!r}"
            )
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            if not isinstance(entry, str) or not entry.strip():
                raise ConfigError(f"allow_hosts: invalid entry {entry!r} (empty or not a string)")
            text = normalize_host(entry)
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            if _HOST_NAME.match(text) is None:
                raise ConfigError(
                    f"allow_hosts: invalid entry {entry!r} (not a host name, an IP address or a "
                    "CIDR network)"
                )
            names.add(text)
        return cls(frozenset(names), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return normalize_host(host) in self.names

    def allows_address(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(
            c.version == net.version and c in net for c in candidates for net in self.networks
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    address: str
    reason: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one host: the addresses it resolved to and the ones that are refused."""

    host: str
    addresses: tuple[str, ...]
    refusals: tuple[Refusal, ...]

    @property
    def allowed(self) -> bool:
        return bool(self.addresses) and not self.refusals

    def explain(self) -> str:
        """A one-line reason for a refusal (empty when allowed)."""
        if not self.addresses:
            return f"host {self.host!r} resolved to no address"
        return "; ".join(
            f"{r.address} is a {r.reason}"
            if r.address == self.host
            else f"host {self.host!r} resolves to {r.address} ({r.reason})"
            for r in self.refusals
        )


def vet_addresses(host: str, addresses: Iterable[str], allow: AllowList) -> Verdict:
    """Check every address ``host`` resolved to against the policy and the operator's allow-list."""
    addrs = tuple(addresses)
    if allow.allows_host(host):
        return Verdict(host, addrs, ())
    refusals: list[Refusal] = []
    for address in addrs:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            refusals.append(Refusal(address, "value that is not an IP address"))
            continue
        reason = blocked_reason(ip)
        if reason is not None and not allow.allows_address(ip):
            refusals.append(Refusal(address, reason))
    return Verdict(host, addrs, tuple(refusals))


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve_host(host: str, port: int) -> tuple[str, ...]:
    """Resolve ``host`` with :func:`socket.getaddrinfo`: its IPv4/IPv6 addresses, in resolver order.

    Raises :class:`OSError` (``socket.gaierror``) or :class:`UnicodeError` when it cannot.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0])
        if address not in out:
            out.append(address)
    return tuple(out)
