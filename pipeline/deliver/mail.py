"""Email: building multipart messages and sending them over SMTP, behind one protocol.

Errors are classified for the outbox: connection failures, timeouts and 4xx replies are transient
(:class:`DeliveryError` with ``permanent=False``, retried with back-off); 5xx replies are permanent.
Credentials are never logged: errors name the server and the reply code, never the user name, the
password or the AUTH exchange (smtplib's debug output stays off).

**Header values are one line on the wire, whatever the interpreter.** Feed text reaches the Subject
(the title) and operator text the To display name. :func:`header_text` makes such text one line
(no CR/LF or other control characters, bounded) and breaks every ``=?`` into ``= ?``, so that it can
never open an RFC 2047 encoded-word: the email library decodes encoded-words it finds in a value
(inside words and quoted strings too) and, on interpreters without the CVE-2024-6923 fix (CPython
3.11.7 among them), writes their decoded CR/LF out when it folds the header, which starts a new
header line (``Bcc:``). :func:`build_message` then folds every header of the message as the SMTP
generator will and refuses any folded value with a line break not followed by folding white space
(the check later CPython releases make with ``verify_generated_headers``): the Subject and display
name fall back to plain ASCII words, and a message that still fails is refused with a permanent
:class:`DeliveryError` naming the header. Nothing here relies on the interpreter's own fix, so no
interpreter is refused at start-up.
"""

from __future__ import annotations

import contextlib
import email.errors
import logging
import re
import smtplib
import socket
import ssl
import threading
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from typing import Protocol

from pipeline.config import SmtpSettings
from pipeline.deliver.render import RenderedMessage, one_line
from pipeline.errors import DeliveryError

__all__ = ["MailSender", "SmtpSender", "build_message", "header_text"]

log = logging.getLogger(__name__)

SUBJECT_CHARS = 200
DISPLAY_NAME_CHARS = 80
# A line break in a folded header that is not followed by folding white space starts a new header
# line (the pattern CPython's own verify_generated_headers uses).
_NEW_HEADER_LINE = re.compile(r"\r\n[^ \t]|\r[^ \n\t]|\n[^ \t]")
# The fallback when a folded header fails that check anyway: plain ASCII words only.
_NOT_PLAIN = re.compile(r"[^A-Za-z0-9 .,:;!'()/+\-]+")
# What the email library raises on values it cannot parse or fold.
_EMAIL_ERRORS = (ValueError, TypeError, IndexError, LookupError, email.errors.MessageError)


def header_text(text: str, limit: int) -> str:
    """Untrusted text as a header value: one line without control characters, at most ``limit``
    characters, and no ``=?`` (each becomes ``= ?``), so it can never open an encoded-word."""
    line = one_line(text, limit).replace("=?", "= ?")  # one pass: no new "=?" can form
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def _plain(text: str) -> str:
    return " ".join(_NOT_PLAIN.sub(" ", text).split())


def _unsafe_headers(msg: EmailMessage) -> list[str]:
    """The headers of ``msg`` (its parts' too) whose folded form is not exactly one header line,
    folded as the generators do (``fold`` for as_string, ``fold_binary`` for as_bytes and SMTP)."""
    unsafe: list[str] = []
    for part in msg.walk():
        policy = part.policy
        linesep = policy.linesep
        for name, value in part.raw_items():
            try:
                folds = [policy.fold(name, value)]
                folds.append(policy.fold_binary(name, value).decode("ascii", "surrogateescape"))
            except _EMAIL_ERRORS:
                unsafe.append(name)
                continue
            for folded in folds:
                body = folded[: -len(linesep)] if folded.endswith(linesep) else folded
                if _NEW_HEADER_LINE.search(body) or body.endswith(("\r", "\n")):
                    unsafe.append(name)
                    break
    return unsafe


def _assemble(
    rendered: RenderedMessage,
    *,
    subject: str,
    sender: str,
    display: str,
    addr: str,
    message_id: str,
    date: object,
    reply_to: str | None = None,
) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject
    msg["From"] = sender
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["To"] = Address(display_name=display, addr_spec=addr) if display else addr
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(date)  # type: ignore[arg-type]
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(rendered.text, subtype="plain", charset="utf-8")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return msg


def build_message(
    rendered: RenderedMessage,
    *,
    sender: str,
    recipient: str,
    message_id: str,
    date: object,
    reply_to: str | None = None,
) -> EmailMessage:
    """The multipart (text + HTML) message, its headers checked to be one line each on the wire.

    Raises :class:`DeliveryError` (permanent) when a header cannot be made safe (see the module
    docstring); the Subject and the To display name are made safe, never refused.
    """
    name, addr = parseaddr(recipient)
    values = {
        "subject": header_text(rendered.subject, SUBJECT_CHARS),
        "display": header_text(name, DISPLAY_NAME_CHARS),
    }
    for attempt in ("as rendered", "as plain ASCII"):
        try:
            msg = _assemble(
                rendered,
                sender=sender,
                addr=addr,
                message_id=message_id,
                date=date,
                reply_to=reply_to,
                **values,
            )
        except _EMAIL_ERRORS as err:
            unsafe = [f"{type(err).__name__}: {err}"]
        else:
            unsafe = _unsafe_headers(msg)
            if not unsafe:
                return msg
        log.warning(
            "message %s to %s: header(s) %s %s would not be one line; retrying as plain ASCII",
            message_id,
            addr,
            ", ".join(unsafe),
            attempt,
        )
        values = {key: _plain(value) for key, value in values.items()}
    raise DeliveryError(
        f"message {message_id} to {addr}: header {unsafe[0]} would not be one line on the "
        "wire; refused",
        permanent=True,
    )


class MailSender(Protocol):
    def send(self, message: EmailMessage, recipient: str) -> None: ...

    def close(self) -> None: ...


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
