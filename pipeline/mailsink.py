"""A local SMTP sink (aiosmtpd) that writes every message it receives as an ``.eml`` file.

The embedded default for demos and tests: ``python -m pipeline.mailsink --dir var/outbox --port 8025``.
Tests can make it refuse chosen recipients (``refuse={"a@x": "451 4.3.0 try later"}``) to exercise the
outbox's retry and permanent-failure paths against a real SMTP conversation.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

__all__ = ["MailSink", "main"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Handler:
    directory: Path
    refuse: Mapping[str, str] = field(default_factory=dict)
    received: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content
        with self.lock:
            self.received.append(content)
            index = len(self.received)
        self.directory.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(content).hexdigest()[:12]
        path = self.directory / f"{index:05d}-{digest}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.replace(path)
        log.info("mail sink stored %s for %s", path.name, ", ".join(envelope.rcpt_tos))
        return "250 Message accepted"


class MailSink:
    """A running SMTP sink on loopback; use as a context manager."""

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        refuse: Mapping[str, str] | None = None,
    ) -> None:
        self.handler = _Handler(Path(directory), dict(refuse or {}))
        if port == 0:
            import socket

            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        self.controller: Controller | None = None

    @property
    def messages(self) -> list[bytes]:
        with self.handler.lock:
            return list(self.handler.received)

    def start(self) -> MailSink:
        # A controller's event loop cannot be restarted: every start gets a new one (same port).
        self.controller = Controller(self.handler, hostname=self.host, port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> MailSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local SMTP sink writing .eml files")
    parser.add_argument("--dir", type=Path, default=Path("var/outbox"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mailsink %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with MailSink(args.dir, host=args.host, port=args.port):
        log.info("SMTP sink on %s:%d writing to %s", args.host, args.port, args.dir)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
