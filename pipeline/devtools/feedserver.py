"""A small threaded HTTP server that serves a directory of feed files, for the demo and for tests.

Each file is served with a Content-Type chosen from its suffix (``.rss``, ``.atom``, ``.rdf``,
``.json``; a ``.xml`` file is sniffed for ``<rss``, ``<feed`` or ``<rdf:RDF``), a strong ``ETag``
(a hash of the bytes) and ``Last-Modified`` (the file's mtime), and ``304 Not Modified`` when the
request's ``If-None-Match`` (or, without it, ``If-Modified-Since``) matches. Only GET and HEAD;
only regular, non-hidden files inside the directory (no traversal, no symlink escape); ``/`` lists
the files as plain text. It binds to loopback unless told otherwise.

    with serve_directory("data/sample_feeds") as server:
        policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}))
        fetch_feed(server.url_for("world.xml"), policy=policy)

    python -m pipeline.devtools.feedserver --dir data/sample_feeds --port 8765
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import ipaddress
import logging
import re
import signal
import socket
import threading
from collections.abc import Sequence
from datetime import UTC
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import FrameType, TracebackType
from urllib.parse import unquote, urlsplit

from pipeline.errors import ConfigError
from pipeline.net.policy import redact_url

__all__ = ["FeedServer", "content_type_for", "main", "serve_directory"]

log = logging.getLogger(__name__)

_BY_SUFFIX = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".json": "application/feed+json",
    ".txt": "text/plain; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
}
_SNIFF = re.compile(rb"<(rss|feed|rdf:RDF)\b")
_SNIFFED = {
    b"rss": "application/rss+xml",
    b"feed": "application/atom+xml",
    b"rdf:RDF": "application/rdf+xml",
}


def content_type_for(path: Path, head: bytes) -> str:
    """The Content-Type for a file, from its suffix or (for ``.xml``) its root element."""
    suffix = path.suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    if suffix == ".xml":
        match = _SNIFF.search(head[:4096])
        return _SNIFFED[match.group(1)] if match else "application/xml"
    return "application/octet-stream"


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison: ``W/"x"`` matches ``"x"``."""
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def _not_modified_since(header: str, mtime: int) -> bool:
    try:
        since = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return mtime <= since.timestamp()


class _FeedHandler(BaseHTTPRequestHandler):
    server_version = "sanctions-watch-feedserver/0.1"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 15  # an idle keep-alive connection is dropped after this many seconds
    root: Path  # set on the per-server subclass

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, redact_url(self.path), code)

    # -----------------------------------------------------------------------------------------

    def _resolve(self) -> Path | None:
        raw = unquote(urlsplit(self.path).path)
        if "\x00" in raw or "\\" in raw:
            return None
        parts = [p for p in PurePosixPath(raw).parts if p != "/"]
        if any(p.startswith(".") for p in parts):
            return None  # hidden files, "." and ".."
        candidate = self.root.joinpath(*parts).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def _send_text(self, status: HTTPStatus, text: str, *, with_body: bool) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def _index(self, with_body: bool) -> None:
        names = sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(self.root).parts)
        )
        self._send_text(HTTPStatus.OK, "".join(f"{n}\n" for n in names), with_body=with_body)

    def _serve(self, *, with_body: bool) -> None:
        if urlsplit(self.path).path in ("", "/"):
            self._index(with_body)
            return
        path = self._resolve()
        if path is None:
            self._send_text(HTTPStatus.NOT_FOUND, "not found\n", with_body=with_body)
            return
        try:
            data = path.read_bytes()
            mtime = int(path.stat().st_mtime)
        except OSError:
            self._send_text(HTTPStatus.NOT_FOUND, "not found\n", with_body=with_body)
            return
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        last_modified = email.utils.formatdate(mtime, usegmt=True)
        if_none_match = self.headers.get("If-None-Match")
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_none_match is not None:
            not_modified = _etag_matches(if_none_match, etag)
        else:
            not_modified = if_modified_since is not None and _not_modified_since(
                if_modified_since, mtime
            )
        if not_modified:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type_for(path, data))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", last_modified)
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if with_body:
            self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class FeedServer:
    """A running feed server; ``url`` ends with ``/``. Close it (or use it as a context manager)."""

    def __init__(self, httpd: _Server, root: Path) -> None:
        self._httpd = httpd
        self.root = root
        host, port = httpd.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{self.port}/"
        self._closed = False
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="feedserver",
            daemon=True,
        )
        self._thread.start()

    def url_for(self, name: str) -> str:
        return self.url + name.lstrip("/")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FeedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve_directory(directory: str | Path, host: str = "127.0.0.1", port: int = 0) -> FeedServer:
    """Serve ``directory`` on ``host:port`` (port 0 picks a free one) from a background thread."""
    root = Path(directory).resolve()
    if not root.is_dir():
        raise ConfigError(
            f"feed server: directory {str(directory)!r} does not exist or is not a directory"
        )
    handler = type("FeedHandler", (_FeedHandler,), {"root": root})
    try:
        family6 = ipaddress.ip_address(host.strip("[]")).version == 6
    except ValueError:
        family6 = False
    server_cls = _Server6 if family6 else _Server
    httpd = server_cls((host.strip("[]"), port), handler)
    server = FeedServer(httpd, root)
    try:
        is_loopback = ipaddress.ip_address(server.host).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        log.warning("feed server listens on %s, which is not a loopback address", server.host)
    return server


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline.devtools.feedserver --dir data/sample_feeds --port 8765``: serve until killed."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.devtools.feedserver",
        description="Serve a directory of feed files over HTTP.",
    )
    parser.add_argument("--dir", default="data/sample_feeds", help="directory of feed files")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: loopback)"
    )
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        server = serve_directory(args.dir, host=args.host, port=args.port)
    except (ConfigError, OSError) as exc:
        log.error("cannot start the feed server: %s", exc)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("serving %s at %s (Ctrl-C to stop)", server.root, server.url)
    with server:
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
