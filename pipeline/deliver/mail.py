"""Email: building multipart messages and sending them over SMTP (or to a folder) behind one protocol.

Errors are classified for the outbox: connection failures, timeouts and 4xx replies are transient
(:class:`DeliveryError` with ``permanent=False``, retried with back-off); 5xx replies are permanent.
Credentials are never logged: errors name the server and the reply code, never the user name, the
password or the AUTH exchange (smtplib's debug output stays off).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol

from pipeline.config import SmtpSettings
from pipeline.deliver.render import RenderedMessage, one_line
from pipeline.errors import DeliveryError

__all__ = ["FileSender", "MailSender", "SmtpSender", "build_message"]

log = logging.getLogger(__name__)


def build_message(
    rendered: RenderedMessage, *, sender: str, recipient: str, message_id: str, date: object
) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = one_line(rendered.subject, 200)
    msg["From"] = sender
    name, addr = parseaddr(recipient)
    msg["To"] = Address(display_name=one_line(name, 80), addr_spec=addr) if name else addr
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(date)  # type: ignore[arg-type]
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(rendered.text, subtype="plain", charset="utf-8")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return msg


class MailSender(Protocol):
    def send(self, message: EmailMessage, recipient: str) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class FileSender:
    """Writes each message as an ``.eml`` file (for dry runs and demos without any SMTP server)."""

    directory: Path

    def send(self, message: EmailMessage, recipient: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        token = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:16]
        tmp = self.directory / f".{token}.tmp"
        tmp.write_bytes(message.as_bytes())
        tmp.replace(self.directory / f"{token}.eml")

    def close(self) -> None:
        return None


class SmtpSender:
    """One SMTP connection reused for a batch; STARTTLS or implicit TLS, AUTH when a user is set.

    * every phase (connecting with TLS and AUTH; one message's transaction) is bounded by
      ``settings.timeout``: the socket timeout, plus a watchdog that shuts the socket down when the
      phase runs longer (a server that trickles its replies), so a silent server is given up on;
    * once connecting has failed, the rest of the batch fails fast with the same (transient) error
      instead of waiting out the timeout per recipient; :meth:`close` resets that;
    * a reused connection the server dropped while idle is reconnected once; a 421 reply (the server
      is closing the connection) drops it, so the next recipient gets a fresh one;
    * ``context`` is the TLS context (default: system trust store, host name checked).
    """

    def __init__(self, settings: SmtpSettings, *, context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.context = context
        self._conn: smtplib.SMTP | None = None
        self._down: DeliveryError | None = None

    def _where(self) -> str:
        return f"SMTP {self.settings.host}:{self.settings.port}"

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = self.context or ssl.create_default_context()
        conn: smtplib.SMTP | None = None
        try:
            # Connecting and the greeting are bounded by the socket timeout; TLS and AUTH below
            # also by the phase watchdog.
            if s.security == "ssl":
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            with _Deadline(conn, s.timeout) as deadline:
                try:
                    if s.security == "starttls":
                        conn.starttls(context=context)
                    if s.username:
                        conn.login(s.username, s.password or "")
                except (OSError, smtplib.SMTPServerDisconnected):
                    if deadline.fired:
                        raise TimeoutError(f"no answer within {s.timeout:g}s") from None
                    raise
        except smtplib.SMTPAuthenticationError as err:
            _abandon(conn)
            raise DeliveryError(
                f"{self._where()}: authentication refused ({err.smtp_code})"
            ) from None
        except smtplib.SMTPResponseException as err:
            _abandon(conn)
            raise DeliveryError(
                f"{self._where()}: refused the session: {err.smtp_code} {_text(err.smtp_error)}"
            ) from None
        except (OSError, smtplib.SMTPException) as err:
            _abandon(conn)
            raise DeliveryError(
                f"{self._where()} unreachable: {type(err).__name__}: {err}"
            ) from None
        return conn

    def send(self, message: EmailMessage, recipient: str) -> None:
        if self._down is not None:
            raise DeliveryError(f"{self._down} (not retried in this batch)")
        try:
            self._send(message, recipient)
        except _Broken as err:  # the server, not this recipient: spare the rest of the batch
            self._down = DeliveryError(str(err))
            raise self._down from None

    def _send(self, message: EmailMessage, recipient: str) -> None:
        fresh = self._conn is None
        if self._conn is None:
            try:
                self._conn = self._connect()
            except DeliveryError as err:
                raise _Broken(str(err)) from None
        try:
            self._transact(message, recipient)
        except smtplib.SMTPServerDisconnected:
            self._drop()
            if fresh:
                raise _Broken(f"{self._where()}: connection lost sending to {recipient}") from None
            try:  # an idle connection the server dropped: once more on a new one
                self._conn = self._connect()
                self._transact(message, recipient)
            except DeliveryError as err:
                raise _Broken(str(err)) from None
            except smtplib.SMTPServerDisconnected:
                self._drop()
                raise _Broken(f"{self._where()}: connection lost sending to {recipient}") from None

    def _transact(self, message: EmailMessage, recipient: str) -> None:
        conn = self._conn
        assert conn is not None
        with _Deadline(conn, self.settings.timeout) as deadline:
            try:
                refused = conn.send_message(
                    message, from_addr=parseaddr(self.settings.sender)[1], to_addrs=[recipient]
                )
            except smtplib.SMTPRecipientsRefused as err:
                code, reply = next(iter(err.recipients.values()), (0, b""))
                if code == 421:  # smtplib has closed the socket already
                    self._drop()
                raise DeliveryError(
                    f"SMTP refused recipient {recipient}: {code} {_text(reply)}",
                    permanent=500 <= code < 600,
                ) from None
            except smtplib.SMTPServerDisconnected as err:
                if deadline.fired or "timed out" in str(err):
                    self._drop()
                    raise _Broken(
                        f"{self._where()}: no answer within {self.settings.timeout:g}s "
                        f"sending to {recipient}"
                    ) from None
                raise
            except smtplib.SMTPResponseException as err:
                if (
                    err.smtp_code == 421
                ):  # the server is closing the connection: reconnect next time
                    self._drop()
                raise DeliveryError(
                    f"SMTP error for {recipient}: {err.smtp_code} {_text(err.smtp_error)}",
                    permanent=500 <= err.smtp_code < 600,
                ) from None
            except (smtplib.SMTPException, OSError) as err:
                self._drop()
                reason = (
                    f"no answer within {self.settings.timeout:g}s"
                    if deadline.fired
                    else f"{type(err).__name__}: {err}"
                )
                raise _Broken(
                    f"{self._where()}: connection lost sending to {recipient}: {reason}"
                ) from None
        if refused:
            raise DeliveryError(f"SMTP refused recipient {recipient}: {refused}", permanent=True)

    def _drop(self) -> None:
        if self._conn is not None:
            _abandon(self._conn)
            self._conn = None

    def close(self) -> None:
        self._down = None
        if self._conn is not None:
            try:
                with _Deadline(self._conn, self.settings.timeout):
                    self._conn.quit()
            except (smtplib.SMTPException, OSError):
                _abandon(self._conn)
            self._conn = None


class _Broken(Exception):
    """The connection or the server failed (not a reply about one recipient)."""


def _abandon(conn: smtplib.SMTP | None) -> None:
    """Close without a QUIT exchange (the connection is broken or unwanted)."""
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()


class _Deadline:
    """Shuts down ``conn``'s socket if the block runs longer than ``seconds`` (wakes a blocked read)."""

    def __init__(self, conn: smtplib.SMTP, seconds: float) -> None:
        self._conn = conn
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._fired = threading.Event()

    @property
    def fired(self) -> bool:
        return self._fired.is_set()

    def _fire(self) -> None:
        self._fired.set()
        sock = getattr(self._conn, "sock", None)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _text(reply: bytes | str) -> str:
    raw = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return one_line(raw, 200)
