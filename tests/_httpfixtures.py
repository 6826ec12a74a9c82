"""Loopback HTTP servers with programmable misbehaviour and a fake resolver, for fetcher tests.

``misbehaving_server()`` is a context manager yielding a :class:`MisbehavingServer` bound to
127.0.0.1 on a free port. It speaks raw HTTP/1.1 over sockets (no http.server), so it can do what a
polite server never does. Its paths:

======================  ====================================================================
``/feed``               a small RSS feed with ETag/Last-Modified; 304 on a matching validator
``/silent``             accepts, reads the request, never answers
``/close``              reads the request and closes the connection without answering
``/trickle-headers``    sends the status line and headers one byte per ``interval`` forever
``/trickle-body``       sends headers, then the body one byte per ``interval`` (``length``)
``/redirect``           ``code`` (302) to ``to`` (query parameter, used verbatim)
``/chain``              ``n`` relative redirects (``chain?n=N-1`` ...) ending at the feed
``/loop``               redirects to itself
``/huge``               ``size`` bytes (default 64 MiB), Content-Length or close-delimited
``/gzip-bomb``          gzip body that inflates to ``size`` zero bytes (default 128 MiB)
``/status``             status ``code`` with ``retry_after`` as the Retry-After header
``/wrong-type``         200 with an HTML page and ``text/html``
======================  ====================================================================

``server.requests`` records every request (method, target, lower-cased headers);
``server.route(path, fn)`` adds a behaviour: ``fn(exchange)`` with the :class:`Exchange` helpers.

``FakeDNS`` replaces ``socket.getaddrinfo`` (install with ``install_fake_dns(monkeypatch, {...})``):
names in its table resolve to the given addresses (a callable is called on every lookup, to
simulate DNS rebinding), IP literals go to the real resolver, and every other name fails, so tests
never touch the network.
"""

from __future__ import annotations

import contextlib
import itertools
import select
import socket
import socketserver
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

FEED_XML = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<rss version="2.0"><channel><title>Fixture feed</title><link>https://example.org/</link>'
    b"<description>test</description><item><title>Tanker switches off AIS near Nampo</title>"
    b"<link>https://example.org/a/1</link><guid>a-1</guid></item></channel></rss>\n"
)
FEED_ETAG = '"fixture-v1"'
FEED_LAST_MODIFIED = "Wed, 01 May 2024 10:00:00 GMT"

_PHRASES = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def gzip_bomb(size: int, *, chunk: int = 1 << 20) -> bytes:
    """A gzip stream that inflates to ``size`` zero bytes (about 1000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(chunk)
    parts = []
    for _ in range(size // chunk):
        parts.append(compressor.compress(zeros))
    parts.append(compressor.compress(bytes(size % chunk)))
    parts.append(compressor.flush())
    return b"".join(parts)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    target: str
    path: str
    headers: dict[str, str]


class Exchange:
    """One request on the misbehaving server, with helpers to answer (or not)."""

    def __init__(
        self, server: MisbehavingServer, sock: socket.socket, request: RecordedRequest
    ) -> None:
        self.server = server
        self.sock = sock
        self.request = request
        self.query = {k: v[-1] for k, v in parse_qs(urlsplit(request.target).query).items()}

    @property
    def stopping(self) -> threading.Event:
        return self.server.stopping

    def send_raw(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def respond(
        self,
        status: int,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        *,
        content_length: bool = True,
    ) -> None:
        lines = [f"HTTP/1.1 {status} {_PHRASES.get(status, 'Status')}"]
        all_headers = dict(headers or {})
        if content_length and status != 304:
            all_headers.setdefault("Content-Length", str(len(body)))
        all_headers["Connection"] = "close"
        lines += [f"{k}: {v}" for k, v in all_headers.items()]
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def hold(self) -> None:
        """Never answer: wait until the client goes away or the server stops."""
        while not self.stopping.is_set():
            readable, _, _ = select.select([self.sock], [], [], 0.05)
            if readable:
                try:
                    if not self.sock.recv(4096):
                        return
                except OSError:
                    return

    def trickle(self, data: Iterable[int], interval: float) -> None:
        """Send ``data`` a byte every ``interval`` s until done, the client leaves or we stop."""
        for byte in data:
            if self.stopping.wait(interval):
                return
            if not self.send_raw(bytes([byte])):
                return

    def stream(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            if self.stopping.is_set() or not self.send_raw(chunk):
                return


Behaviour = Callable[[Exchange], None]


def _read_head(sock: socket.socket, limit: int = 65536) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > limit:
            return None
        try:
            chunk = sock.recv(4096)
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        head = _read_head(sock)
        if head is None:
            return
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _version = [*request_line.split(" "), "", ""][:3]
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        request = RecordedRequest(method, target, urlsplit(target).path, headers)
        owner = self.server.owner
        owner.record(request)
        behaviour = owner.routes.get(request.path, _not_found)
        sock.settimeout(None)
        behaviour(Exchange(owner, sock, request))


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: MisbehavingServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-answer is the point of these tests


def _not_found(ex: Exchange) -> None:
    ex.respond(404, {"Content-Type": "text/plain"}, b"not found\n")


def _feed(ex: Exchange) -> None:
    headers = ex.request.headers
    validators = {"ETag": FEED_ETAG, "Last-Modified": FEED_LAST_MODIFIED}
    if headers.get("if-none-match") == FEED_ETAG or (
        "if-none-match" not in headers and headers.get("if-modified-since") == FEED_LAST_MODIFIED
    ):
        ex.respond(304, validators)
        return
    ex.respond(200, {"Content-Type": "application/rss+xml", **validators}, FEED_XML)


def _silent(ex: Exchange) -> None:
    ex.hold()


def _close(ex: Exchange) -> None:
    return


def _trickle_headers(ex: Exchange) -> None:
    interval = float(ex.query.get("interval", "0.2"))
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nX-Slow: "
    ex.trickle(itertools.chain(head, itertools.repeat(ord("a"))), interval)


def _trickle_body(ex: Exchange) -> None:
    interval = float(ex.query.get("interval", "0.2"))
    length = int(ex.query.get("length", "1000000"))
    ex.send_raw(
        f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {length}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    ex.trickle(itertools.islice(itertools.cycle(FEED_XML), length), interval)


def _redirect(ex: Exchange) -> None:
    code = int(ex.query.get("code", "302"))
    ex.respond(code, {"Location": ex.query.get("to", "/feed")})


def _chain(ex: Exchange) -> None:
    n = int(ex.query.get("n", "0"))
    if n <= 0:
        _feed(ex)
    else:
        ex.respond(301, {"Location": f"chain?n={n - 1}"})


def _loop(ex: Exchange) -> None:
    ex.respond(302, {"Location": "/loop"})


def _huge(ex: Exchange) -> None:
    size = int(ex.query.get("size", str(64 << 20)))
    with_length = ex.query.get("length", "1") == "1"
    headers = {"Content-Type": "application/rss+xml"}
    if with_length:
        headers["Content-Length"] = str(size)
    ex.respond(200, headers, content_length=False)
    block = b"x" * 65536
    full, rest = divmod(size, len(block))
    ex.stream(itertools.chain(itertools.repeat(block, full), [block[:rest]]))


def _gzip_bomb(ex: Exchange) -> None:
    body = ex.server.bomb(int(ex.query.get("size", str(128 << 20))))
    ex.respond(
        200,
        {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
        content_length=False,
    )
    ex.stream(body[i : i + 16384] for i in range(0, len(body), 16384))


def _status(ex: Exchange) -> None:
    headers = {"Content-Type": "text/plain"}
    if "retry_after" in ex.query:
        headers["Retry-After"] = ex.query["retry_after"]
    ex.respond(int(ex.query.get("code", "500")), headers, b"error page\n")


def _wrong_type(ex: Exchange) -> None:
    ex.respond(
        200, {"Content-Type": "text/html; charset=utf-8"}, b"<html><body>not a feed</body></html>"
    )


class MisbehavingServer:
    """See the module docstring. Use :func:`misbehaving_server` to start and stop one."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.stopping = threading.Event()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._bombs: dict[int, bytes] = {}
        self.routes: dict[str, Behaviour] = {
            "/feed": _feed,
            "/silent": _silent,
            "/close": _close,
            "/trickle-headers": _trickle_headers,
            "/trickle-body": _trickle_body,
            "/redirect": _redirect,
            "/chain": _chain,
            "/loop": _loop,
            "/huge": _huge,
            "/gzip-bomb": _gzip_bomb,
            "/status": _status,
            "/wrong-type": _wrong_type,
        }
        self._tcp = _TCPServer((host, 0), _Handler)
        self._tcp.owner = self
        address = self._tcp.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])
        self._thread = threading.Thread(
            target=self._tcp.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def route(self, path: str, behaviour: Behaviour) -> None:
        self.routes[path] = behaviour

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def bomb(self, size: int) -> bytes:
        with self._lock:
            if size not in self._bombs:
                self._bombs[size] = gzip_bomb(size)
            return self._bombs[size]

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stopping.set()
        self._tcp.shutdown()
        self._tcp.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def misbehaving_server(host: str = "127.0.0.1") -> Iterator[MisbehavingServer]:
    server = MisbehavingServer(host)
    server.start()
    try:
        yield server
    finally:
        server.close()


# ----------------------------------------------------------------------------------------- fake DNS

_REAL_GETADDRINFO = socket.getaddrinfo


class FakeDNS:
    """A stand-in for ``socket.getaddrinfo`` (see the module docstring); ``calls`` lists lookups."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = {k.lower(): v for k, v in table.items()}
        self.calls: list[str] = []

    def getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        name = host.decode("ascii") if isinstance(host, bytes) else str(host)
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in name else socket.AF_INET, name)
        except OSError:
            pass
        else:
            return _REAL_GETADDRINFO(host, port, family, type, proto, flags)
        self.calls.append(name)
        entry = self.table.get(name.lower())
        if entry is None:
            raise socket.gaierror(
                socket.EAI_NONAME, f"Name or service not known (fake DNS): {name}"
            )
        addresses = entry() if callable(entry) else entry
        port_number = int(port or 0)
        out: list[tuple[Any, ...]] = []
        for address in addresses:
            if ":" in address:
                out.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port_number, 0, 0))
                )
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port_number)))
        return out


def install_fake_dns(monkeypatch: pytest.MonkeyPatch, table: dict[str, Any]) -> FakeDNS:
    fake = FakeDNS(table)
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake
