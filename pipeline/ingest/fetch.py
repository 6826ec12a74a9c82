"""The HTTP fetcher for feeds: one hardened conditional GET per call.

:func:`fetch_feed` fetches one RSS/Atom URL and returns a :class:`FetchResult`, or raises a
:class:`~pipeline.errors.FetchError` subclass defined here, whose message names the (redacted) URL
and the reason. What it guarantees:

* **Schemes** — only ``http`` and ``https``; anything else (``file:``, ``ftp:``, ``data:``, a local
  path) is refused before any I/O, and so is a redirect to one. A ``Location`` the HTTP client
  cannot turn into a URL at all (``javascript:...``, ``http:moved.xml``, a host that is not valid
  IDNA) is an :class:`InvalidURLError`: httpx builds the next request of every 30x response even
  when redirects are not followed, and every error it can raise doing so, or while building or
  sending any request (:data:`~pipeline.net.transport.CLIENT_ERRORS`), becomes this feed's
  :class:`~pipeline.errors.FetchError`, so it never stops the other feeds.
* **Address policy** (:mod:`pipeline.net.policy`) — the host of every hop is resolved and each
  address checked; loopback, private, link-local, CGNAT, multicast, reserved, unspecified and
  IPv4-mapped addresses are refused unless allow-listed in :attr:`FetchPolicy.allow_hosts`.
  Redirects are followed by hand (at most ``max_redirects``), each ``Location`` resolved against
  the current URL and checked again.
* **DNS rebinding — closed for the default client.** When ``client`` is not given, connections go
  through a network backend that connects only to the addresses the policy has just approved for
  that host (the name is not resolved a second time at connect time); TLS still verifies the
  certificate against the host name. With an injected ``client`` the policy checks our own
  resolution, but the client's transport resolves again when it connects, so a rebinding DNS
  server could still win that race: inject clients for tests or trusted set-ups only.
* **Conditional GET** — ``If-None-Match`` / ``If-Modified-Since``; a 304 gives
  ``status="not_modified"`` without reading a body.
* **Size cap on decoded bytes** — only ``gzip`` and ``deflate`` are advertised, and they are decoded
  here in bounded steps (``zlib`` ``max_length``), so a compression bomb never holds more than the
  cap plus a few 64 KiB buffers in memory. Past ``max_bytes`` reading stops and ``truncated=True``.
* **Total deadline** — a per-call watchdog thread shuts down the sockets of the fetch when
  ``total_deadline`` passes, which unblocks a read stuck on a server that accepted and never
  answers, or that trickles its status line, headers or body a byte at a time. Every connect, read
  and write timeout is also clamped to the time left, and DNS resolution runs in a helper thread
  the call stops waiting for at the deadline. Nothing is shared between calls, so one feed's
  deadline never touches another's connection.
* **No credentials in logs** — URLs in our messages and logs go through
  :func:`~pipeline.net.policy.redact_url`; importing this module also adds a filter to the ``httpx``
  logger that redacts the URL httpx logs for every request (its only process-wide effect).

Limitations: with an injected client, sockets are reached through httpcore's ``trace`` hook, so a
connection the client reuses from its pool (opened before this call) can be shut down only once
its response headers have arrived; while such a connection trickles headers, only the client's
read timeout (clamped to the time left when the request was sent) bounds it. A DNS lookup
abandoned at the deadline finishes in its daemon thread (bounded by the system resolver's timeout).
"""

from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from pipeline.config import FetchPolicy  # the `fetch:` settings record is the policy
from pipeline.errors import FetchError
from pipeline.net import policy as netguard
from pipeline.net.decode import ACCEPT_ENCODING, CappedBuffer, DecodeError, Decoder
from pipeline.net.policy import redact_url
from pipeline.net.transport import CLIENT_ERRORS, GuardedTransport, PinnedBackend
from pipeline.net.watchdog import Watchdog

__all__ = [
    "ACCEPT",
    "ACCEPT_ENCODING",
    "DEFAULT_POLICY",
    "BlockedAddressError",
    "ContentDecodingError",
    "DeadlineExceeded",
    "FetchPolicy",
    "FetchResult",
    "FetchTimeout",
    "HTTPStatusError",
    "InvalidURLError",
    "NetworkError",
    "ResolutionError",
    "TooManyRedirects",
    "UnsupportedScheme",
    "fetch_feed",
    "parse_retry_after",
]

log = logging.getLogger(__name__)


ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/xml;q=0.9, "
    "text/xml;q=0.9, */*;q=0.5"
)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DELTA_SECONDS = re.compile(r"\d{1,15}", re.ASCII)
_VALIDATOR = re.compile(r"[\x20-\x7e\t]{1,1024}")


# ------------------------------------------------------------------------------------------ records


DEFAULT_POLICY = FetchPolicy()


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of a successful fetch. ``url`` is the final URL as requested, credentials
    included if the configured URL had any: pass it through ``redact_url`` before logging it."""

    url: str  # final URL after redirects
    status: Literal["ok", "not_modified"]
    http_status: int
    content: bytes  # b"" on 304
    content_type: str | None
    etag: str | None
    last_modified: str | None
    truncated: bool  # True when the body was cut at max_bytes
    elapsed: float


# ------------------------------------------------------------------------------------------- errors


def _rebuild_error(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


class _URLFetchError(FetchError):
    """Base of the errors below: ``url`` is the redacted URL concerned, ``reason`` says why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot fetch {url}: {reason}")
        self.url = url
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes (Airflow workers)
        return (_rebuild_error, (type(self), self.args, dict(self.__dict__)))


class InvalidURLError(_URLFetchError):
    """The URL (or a redirect's Location) is malformed, has no host or an invalid port."""


class UnsupportedScheme(_URLFetchError):
    """The URL (or a redirect target) is not http or https; ``scheme`` is what it was."""

    def __init__(self, url: str, reason: str, *, scheme: str) -> None:
        super().__init__(url, reason)
        self.scheme = scheme


class BlockedAddressError(_URLFetchError):
    """The host resolves to an address the policy refuses (``host``, ``addresses``)."""

    def __init__(self, url: str, reason: str, *, host: str, addresses: tuple[str, ...]) -> None:
        super().__init__(url, reason)
        self.host = host
        self.addresses = addresses


class ResolutionError(_URLFetchError):
    """The host name could not be resolved."""


class NetworkError(_URLFetchError):
    """Connecting, TLS, sending or receiving failed (refused, reset, certificate, protocol)."""


class FetchTimeout(NetworkError):
    """One connect, read or write took longer than the policy's connect/read timeout."""


class DeadlineExceeded(_URLFetchError):
    """The whole fetch took longer than ``total_deadline`` seconds (``deadline``)."""

    def __init__(self, url: str, reason: str, *, deadline: float) -> None:
        super().__init__(url, reason)
        self.deadline = deadline


class TooManyRedirects(_URLFetchError):
    """More than ``max_redirects`` redirects."""

    def __init__(self, url: str, reason: str, *, max_redirects: int) -> None:
        super().__init__(url, reason)
        self.max_redirects = max_redirects


class HTTPStatusError(_URLFetchError):
    """The server answered with an error status (or a redirect we cannot follow).

    ``retry_after`` is the server's Retry-After in seconds (delta-seconds or HTTP-date), else None.
    """

    def __init__(
        self, url: str, reason: str, *, http_status: int, retry_after: float | None = None
    ) -> None:
        super().__init__(url, reason)
        self.http_status = http_status
        self.retry_after = retry_after


class ContentDecodingError(_URLFetchError):
    """The body uses a content-encoding we do not accept, or its compressed data is corrupt."""


# -------------------------------------------------------------------------------------- Retry-After


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait according to a Retry-After value (delta-seconds or HTTP-date), else None.

    A date in the past gives 0.0; anything unparseable gives None.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def _build_client(
    policy: FetchPolicy, pins: dict[str, tuple[str, ...]], watchdog: Watchdog
) -> httpx.Client:
    return httpx.Client(
        transport=GuardedTransport(PinnedBackend(pins, watchdog)),
        timeout=httpx.Timeout(
            connect=policy.connect_timeout,
            read=policy.read_timeout,
            write=policy.read_timeout,
            pool=policy.connect_timeout,
        ),
        headers={"User-Agent": policy.user_agent},
        follow_redirects=False,
        trust_env=False,
    )


# -------------------------------------------------------------------------------------------- fetch


def _check_url(url: httpx.URL, safe: str, context: str = "") -> httpx.URL:
    scheme = url.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        reason = (
            f"{context}scheme {scheme!r} is not allowed (only http and https)"
            if scheme
            else f"{context}not an absolute http(s) URL"
        )
        raise UnsupportedScheme(safe, reason, scheme=scheme)
    if not url.raw_host:
        raise InvalidURLError(safe, f"{context}URL has no host")
    if url.port is not None and not 0 < url.port < 65536:
        raise InvalidURLError(safe, f"{context}invalid port {url.port}")
    return url


def _parse_url(url: str, safe: str) -> httpx.URL:
    if not isinstance(url, str):
        raise InvalidURLError(safe, f"expected the URL as a string, got {type(url).__name__}")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise InvalidURLError(safe, f"malformed URL ({exc})") from exc
    return _check_url(parsed, safe)


def _clean_validator(name: str, value: str | None) -> str | None:
    """Drop a stored validator that cannot be sent as a header value (it is only a cache hint)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or _VALIDATOR.fullmatch(value) is None:
        log.warning("ignoring invalid %s validator %r", name, value)
        return None
    return value


class _FetchRun:
    """State of one fetch_feed call."""

    def __init__(
        self,
        policy: FetchPolicy,
        client: httpx.Client,
        watchdog: Watchdog,
        pins: dict[str, tuple[str, ...]],
        etag: str | None,
        last_modified: str | None,
        started: float,
        origin: str,
    ) -> None:
        self.policy = policy
        self.allow = netguard.AllowList.from_entries(policy.allow_hosts)
        self.client = client
        self.watchdog = watchdog
        self.pins = pins
        self.etag = etag
        self.last_modified = last_modified
        self.started = started
        self.origin = origin  # redacted original URL
        self.redirects = 0
        # (status, Location) of the last response head received, from httpcore's trace hook: what
        # an error raised while httpx prepared the next request of a redirect was about.
        self._head: tuple[int, str | None] | None = None

    # -- helpers --------------------------------------------------------------------------------

    def _why(self, reason: str) -> str:
        if self.redirects:
            return f"{reason} (after {self.redirects} redirect(s) from {self.origin})"
        return reason

    def _deadline(self, safe: str, phase: str) -> DeadlineExceeded:
        reason = f"total deadline of {self.policy.total_deadline:g}s exceeded while {phase}"
        return DeadlineExceeded(safe, self._why(reason), deadline=self.policy.total_deadline)

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore ``trace`` extension: the watchdog's, plus the status and Location of the last
        response head (never logged as such: a Location can carry a token)."""
        self.watchdog.trace(event, info)
        if event.endswith("receive_response_headers.complete"):
            head = info.get("return_value")
            if isinstance(head, tuple) and len(head) == 4 and isinstance(head[1], int):
                location = next(
                    (
                        bytes(value).decode("latin-1")
                        for name, value in head[3]
                        if bytes(name).lower() == b"location"
                    ),
                    None,
                )
                self._head = (head[1], location)

    def _client_failure(self, exc: Exception, safe: str) -> FetchError:
        """A response the HTTP client raised on instead of returning it (see the module docstring)."""
        what = f"{type(exc).__name__}: {exc}"
        head = self._head
        if head is not None and head[0] in _REDIRECT_STATUSES:
            where = redact_url(head[1]) if head[1] is not None else "(none)"
            reason = f"HTTP {head[0]} redirect to a Location the HTTP client cannot use, {where!r}"
            return InvalidURLError(safe, self._why(f"{reason}: {what}"))
        return NetworkError(safe, self._why(f"the response could not be handled: {what}"))

    def _transport_failure(self, exc: Exception, safe: str, phase: str) -> FetchError:
        if self.watchdog.expired:
            return self._deadline(safe, phase)
        reason = self._why(f"{phase} failed: {type(exc).__name__}: {exc}")
        if isinstance(exc, httpx.TimeoutException):
            return FetchTimeout(safe, reason)
        return NetworkError(safe, reason)

    # -- steps ----------------------------------------------------------------------------------

    def _resolve(self, host: str, port: int, safe: str) -> tuple[str, ...]:
        box: list[tuple[str, ...] | Exception] = []
        done = threading.Event()

        def work() -> None:
            try:
                box.append(netguard.resolve_host(host, port))
            except Exception as exc:  # noqa: BLE001 - handed to the caller below
                box.append(exc)
            finally:
                done.set()

        threading.Thread(target=work, name="fetch-resolve", daemon=True).start()
        if not done.wait(max(0.0, self.watchdog.remaining())):
            raise self._deadline(safe, f"resolving host {host!r}")
        result = box[0]
        if isinstance(result, Exception):
            reason = self._why(f"cannot resolve host {host!r}: {result}")
            raise ResolutionError(safe, reason) from result
        if not result:
            raise ResolutionError(safe, self._why(f"host {host!r} resolved to no address"))
        return result

    def _vet(self, url: httpx.URL, safe: str) -> None:
        host = url.raw_host.decode("ascii")
        port = url.port or _DEFAULT_PORTS[url.scheme]
        addresses = (host,) if netguard.is_ip_literal(host) else self._resolve(host, port, safe)
        verdict = netguard.vet_addresses(host, addresses, self.allow)
        if not verdict.allowed:
            reason = (
                f"refused by the address policy: {verdict.explain()} (allow-list it in allow_hosts)"
            )
            raise BlockedAddressError(safe, self._why(reason), host=host, addresses=addresses)
        self.pins[host] = verdict.addresses

    def _send(self, url: httpx.URL, safe: str) -> httpx.Response:
        remaining = self.watchdog.remaining()
        if remaining <= 0:
            raise self._deadline(safe, "preparing the request")
        policy = self.policy
        headers = {
            "User-Agent": policy.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        timeout = httpx.Timeout(
            connect=min(policy.connect_timeout, remaining),
            read=min(policy.read_timeout, remaining),
            write=min(policy.read_timeout, remaining),
            pool=min(policy.connect_timeout, remaining),
        )
        try:
            request = self.client.build_request(
                "GET", url, headers=headers, timeout=timeout, extensions={"trace": self._trace}
            )
        except CLIENT_ERRORS as exc:
            reason = self._why(f"cannot build the request: {type(exc).__name__}: {exc}")
            raise InvalidURLError(safe, reason) from exc
        log.debug("GET %s", safe)
        self._head = None
        try:
            response = self.client.send(request, stream=True, follow_redirects=False)
        except (httpx.TransportError, OSError) as exc:
            raise self._transport_failure(exc, safe, "waiting for the response") from exc
        except CLIENT_ERRORS as exc:  # after the response head: e.g. an unusable redirect
            raise self._client_failure(exc, safe) from exc
        network_stream = response.extensions.get("network_stream")
        if network_stream is not None:
            self.watchdog.track(network_stream)
        if self.watchdog.fired:
            response.close()
            raise self._deadline(safe, "waiting for the response")
        return response

    def _follow(self, url: httpx.URL, location: str, safe: str) -> httpx.URL:
        target_safe = redact_url(location)
        try:
            target = url.join(location.strip())
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            reason = self._why(f"redirect to a malformed Location {target_safe!r}: {exc}")
            raise InvalidURLError(safe, reason) from exc
        return _check_url(
            target, safe, context=self._why(f"redirect to {redact_url(str(target))}: ")
        )

    def _read_body(self, response: httpx.Response, safe: str) -> tuple[bytes, bool]:
        try:
            decoder = Decoder(response.headers.get("content-encoding"))
        except DecodeError as exc:
            raise ContentDecodingError(safe, self._why(str(exc))) from exc
        limit = self.policy.max_bytes
        if response.is_stream_consumed:
            # Built in memory (e.g. httpx.MockTransport with content=): httpx has already read and
            # decoded it, so there is nothing left to bound; apply the cap to what is there.
            content = response.content
            return content[:limit], len(content) > limit
        buffer = CappedBuffer(limit)
        try:
            # all() stops pulling decoded pieces (and so stops decompressing) once the cap is hit.
            for raw in response.iter_raw():
                if self.watchdog.expired:
                    raise self._deadline(safe, "reading the body")
                if not all(buffer.add(piece) for piece in decoder.feed(raw)):
                    break
            else:
                all(buffer.add(piece) for piece in decoder.finish())
        except DecodeError as exc:
            raise ContentDecodingError(safe, self._why(str(exc))) from exc
        except (httpx.TransportError, OSError) as exc:
            raise self._transport_failure(exc, safe, "reading the body") from exc
        if self.watchdog.fired and not buffer.truncated:
            # The watchdog may have cut a close-delimited body short: it cannot be trusted as whole.
            raise self._deadline(safe, "reading the body")
        return buffer.getvalue(), buffer.truncated

    def _result(
        self,
        url: httpx.URL,
        response: httpx.Response,
        status: Literal["ok", "not_modified"],
        content: bytes,
        truncated: bool,
    ) -> FetchResult:
        headers = response.headers
        etag = headers.get("etag")
        last_modified = headers.get("last-modified")
        if status == "not_modified":  # a 304 may omit validators: the caller's still hold
            etag = etag or self.etag
            last_modified = last_modified or self.last_modified
        return FetchResult(
            url=str(url),
            status=status,
            http_status=response.status_code,
            content=content,
            content_type=headers.get("content-type"),
            etag=etag,
            last_modified=last_modified,
            truncated=truncated,
            elapsed=time.monotonic() - self.started,
        )

    def run(self, url: httpx.URL) -> FetchResult:
        while True:
            safe = redact_url(str(url))
            self._vet(url, safe)
            response = self._send(url, safe)
            try:
                status = response.status_code
                if status in _REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        reason = f"HTTP {status} redirect without a Location header"
                        raise HTTPStatusError(safe, self._why(reason), http_status=status)
                    if self.redirects >= self.policy.max_redirects:
                        reason = (
                            f"more than {self.policy.max_redirects} redirect(s); next Location was "
                            f"{redact_url(location)}"
                        )
                        raise TooManyRedirects(
                            safe, self._why(reason), max_redirects=self.policy.max_redirects
                        )
                    target = self._follow(url, location, safe)
                    self.redirects += 1
                    log.debug(
                        "redirect %d: %s -> %s", self.redirects, safe, redact_url(str(target))
                    )
                    url = target
                    continue
                if status == 304:
                    return self._result(url, response, "not_modified", b"", False)
                if not 200 <= status < 300:
                    phrase = response.reason_phrase
                    reason = f"HTTP {status}{' ' + phrase if phrase else ''}"
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    if retry_after is not None:
                        reason += f" (Retry-After: {retry_after:.0f}s)"
                    raise HTTPStatusError(
                        safe, self._why(reason), http_status=status, retry_after=retry_after
                    )
                content, truncated = self._read_body(response, safe)
                if truncated:
                    log.warning(
                        "body of %s exceeds %d bytes; truncated", safe, self.policy.max_bytes
                    )
                return self._result(url, response, "ok", content, truncated)
            finally:
                response.close()


def fetch_feed(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    policy: FetchPolicy = DEFAULT_POLICY,
    client: httpx.Client | None = None,
) -> FetchResult:
    """Fetch one feed URL under ``policy``; see the module docstring for the guarantees.

    ``etag`` / ``last_modified`` are the validators of the previous fetch. ``client`` is used as
    given (redirects are never left to it); without one a short-lived client is built that pins
    connections to the vetted addresses. Raises a :class:`~pipeline.errors.FetchError` subclass.
    """
    started = time.monotonic()
    safe = redact_url(url)
    target = _parse_url(url, safe)  # scheme and host are checked before any I/O
    watchdog = Watchdog(started + policy.total_deadline)
    pins: dict[str, tuple[str, ...]] = {}
    etag = _clean_validator("ETag", etag)
    last_modified = _clean_validator("Last-Modified", last_modified)
    watchdog.start()
    try:
        if client is None:
            with _build_client(policy, pins, watchdog) as own:
                run = _FetchRun(policy, own, watchdog, pins, etag, last_modified, started, safe)
                result = run.run(target)
        else:
            run = _FetchRun(policy, client, watchdog, pins, etag, last_modified, started, safe)
            result = run.run(target)
    finally:
        watchdog.cancel()
    log.debug(
        "fetched %s: HTTP %d %s, %d bytes%s in %.2fs",
        redact_url(result.url),
        result.http_status,
        result.status,
        len(result.content),
        " (truncated)" if result.truncated else "",
        result.elapsed,
    )
    return result
