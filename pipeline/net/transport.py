"""A guarded HTTP transport for httpx: connects only to vetted addresses, bounded by a watchdog.

:class:`PinnedBackend` connects a host name only to the addresses the address policy
(:mod:`pipeline.net.policy`) approved for it in this call, so DNS rebinding cannot redirect the
connection; every connect, read and write timeout is clamped to the time the :class:`Watchdog` has
left. :class:`GuardedTransport` puts httpx on top, mapping httpcore's errors to httpx's. The feed
fetcher and the webhook sender both use it.

Importing this module adds log filters (once per process) so that the URLs httpx logs and the
header lists httpcore traces never carry a credential.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from pipeline.net.policy import redact_url
from pipeline.net.watchdog import Watchdog

__all__ = [
    "CLIENT_ERRORS",
    "GuardedStream",
    "GuardedTransport",
    "PinnedBackend",
    "clamp",
    "httpx_errors",
]

# Everything httpx raises, besides OSError, while it builds a request, sends it, or builds the next
# request of a 30x response (which it does even when redirects are not followed): its own errors
# (transport, decoding, status), InvalidURL and the idna codec's errors (UnicodeError, a ValueError)
# for a Location it cannot turn into a URL, CookieConflict, and misuse of a stream. Callers catch
# httpx.TransportError first (a network failure), then these (a response or URL they cannot use).
CLIENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.CookieConflict,
    httpx.StreamError,
    ValueError,
)


class RedactURLs(logging.Filter):
    """Redacts the URLs httpx logs ("HTTP Request: GET <url> ...") so no credential is logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


class RedactTraceHeaders(logging.Filter):
    """Keeps the header lists out of httpcore's DEBUG trace ("receive_response_headers.complete
    return_value=(b'HTTP/1.1', 302, b'Found', [(b'Location', b'/feed?token=...'), ...])"): a
    Location or Set-Cookie header can carry a credential. The status line is kept."""

    _HEADERS = re.compile(r"(return_value=\(b'[^']*', \d+, b'[^']*'), \[.*\]\)\s*$", re.DOTALL)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg if isinstance(record.msg, str) else ""
        if "headers" in message and "[(" in message:
            kept = self._HEADERS.sub(r"\1, [headers not logged])", message)
            record.msg = kept if kept != message else message.split(" ", 1)[0]
            record.args = ()
        return True


# httpx logs every request URL at INFO, userinfo and query string included; httpcore logs response
# headers at DEBUG. The filters are added once per process (the only module-level effect of this
# module) and only rewrite URL arguments and header lists.
_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, RedactURLs) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(RedactURLs())
for _name in ("httpcore.http11", "httpcore.http2", "httpcore.connection", "httpcore.proxy"):
    _trace_logger = logging.getLogger(_name)
    if not any(isinstance(f, RedactTraceHeaders) for f in _trace_logger.filters):
        _trace_logger.addFilter(RedactTraceHeaders())


def clamp(watchdog: Watchdog, timeout: float | None, exc: type[Exception]) -> float:
    remaining = watchdog.remaining()
    if remaining <= 0 or watchdog.fired:
        raise exc("total deadline reached")
    return remaining if timeout is None else min(timeout, remaining)


class GuardedStream(httpcore.NetworkStream):
    """A network stream whose every operation is bounded by the fetch deadline."""

    def __init__(self, inner: httpcore.NetworkStream, watchdog: Watchdog) -> None:
        self._inner = inner
        self._watchdog = watchdog
        watchdog.track(self)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, clamp(self._watchdog, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, clamp(self._watchdog, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        limit = clamp(self._watchdog, timeout, httpcore.ConnectTimeout)
        return GuardedStream(
            self._inner.start_tls(ssl_context, server_hostname, limit), self._watchdog
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects a host name only to the addresses the policy approved for it in this fetch."""

    def __init__(self, pins: dict[str, tuple[str, ...]], watchdog: Watchdog) -> None:
        self._pins = pins
        self._watchdog = watchdog
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._pins.get(host)
        if not addresses:
            # Every hop is vetted before its request is sent; refuse rather than connect unchecked.
            raise httpcore.ConnectError(
                f"refusing to connect to {host!r}: not vetted by the policy"
            )
        failure: Exception | None = None
        for address in addresses:
            limit = clamp(self._watchdog, timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(
                    address,
                    port,
                    timeout=limit,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return GuardedStream(stream, self._watchdog)
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("the feed fetcher does not connect to unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


_HTTPCORE_TO_HTTPX: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _HTTPCORE_TO_HTTPX:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if callable(close):
            with httpx_errors():
                close()


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport over an httpcore pool that uses the pinned, deadline-aware backend."""

    def __init__(self, backend: PinnedBackend) -> None:
        # ssl_context=None: httpcore builds its default verifying context (certifi) when needed.
        self._pool = httpcore.ConnectionPool(
            ssl_context=None, http1=True, http2=False, retries=0, network_backend=backend
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with httpx_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
