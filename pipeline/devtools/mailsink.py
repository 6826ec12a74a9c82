"""A local SMTP sink (aiosmtpd) that writes every message it receives as an ``.eml`` file.

The embedded default for demos and tests: ``python -m pipeline.devtools.mailsink --dir var/outbox --port 8025``.
Tests can make it refuse chosen recipients (``refuse={"a@x": "451 4.3.0 try later"}``) to exercise the
outbox's retry and permanent-failure paths against a real SMTP conversation, offer STARTTLS
(``tls_context``) or speak implicit TLS (``ssl_context``), and require AUTH (``auth={"user": "pw"}``,
``auth_mechanisms={"LOGIN"}`` to offer only some mechanisms).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import signal
import ssl
import threading
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = ["MailSink", "main"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Handler:
    directory: Path
    refuse: Mapping[str, str] = field(default_factory=dict)
    received: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    auth: Mapping[str, str] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)  # (mechanism, user) accepted

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        ok = self.auth.get(user) == auth_data.password.decode("utf-8", "replace")
        if ok:
            with self.lock:
                self.logins.append((mechanism, user))
        return AuthResult(success=ok, handled=False)

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


class _Controller(Controller):
    """With implicit TLS the whole session is encrypted, but aiosmtpd only counts STARTTLS as TLS and
    warns that AUTH is required without it; that warning is a false alarm here."""

    def factory(self) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            return super().factory()  # type: ignore[no-untyped-call]  # unannotated in aiosmtpd


class MailSink:
    """A running SMTP sink on loopback; use as a context manager."""

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        refuse: Mapping[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        ssl_context: ssl.SSLContext | None = None,
        auth: Mapping[str, str] | None = None,
        auth_mechanisms: Iterable[str] | None = None,
    ) -> None:
        self.handler = _Handler(Path(directory), dict(refuse or {}), auth=dict(auth or {}))
        if port == 0:
            import socket

            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        self.controller: Controller | None = None
        self._options: dict[str, Any] = {}
        if ssl_context is not None:
            self._options["ssl_context"] = ssl_context
        if tls_context is not None:
            self._options["tls_context"] = tls_context
            self._options["require_starttls"] = True
        if auth:
            self._options["authenticator"] = self.handler.authenticate
            self._options["auth_required"] = True
            # Implicit TLS is TLS too: aiosmtpd only knows about STARTTLS when it checks.
            self._options["auth_require_tls"] = tls_context is not None
            if auth_mechanisms is not None:
                keep = {m.upper() for m in auth_mechanisms}
                self._options["auth_exclude_mechanism"] = [
                    m for m in ("LOGIN", "PLAIN") if m not in keep
                ]

    @property
    def logins(self) -> list[tuple[str, str]]:
        with self.handler.lock:
            return list(self.handler.logins)

    @property
    def messages(self) -> list[bytes]:
        with self.handler.lock:
            return list(self.handler.received)

    def start(self) -> MailSink:
        # A controller's event loop cannot be restarted: every start gets a new one (same port).
        self.controller = _Controller(
            self.handler, hostname=self.host, port=self.port, **self._options
        )
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
