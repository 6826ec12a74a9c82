"""Email: building multipart messages and sending them over SMTP (or to a folder) behind one protocol.

Errors are classified for the outbox: connection failures, timeouts and 4xx replies are transient
(:class:`DeliveryError` with ``permanent=False``, retried with back-off); 5xx replies are permanent.
Credentials are never logged, and SMTP errors are reported without the AUTH exchange.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol

from pipeline.config import SmtpSettings
from pipeline.errors import DeliveryError
from pipeline.render import RenderedMessage, one_line

__all__ = ["FileSender", "MailSender", "SmtpSender", "build_message", "message_id_for"]

log = logging.getLogger(__name__)


def message_id_for(alert_id: int | str, recipient: str, sender: str) -> str:
    """Deterministic Message-ID: a re-send of the same alert to the same person carries the same id."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "sanctions-watch.invalid"
    token = hashlib.sha256(f"{alert_id}\x00{recipient.lower()}".encode()).hexdigest()[:20]
    return f"<sw.{alert_id}.{token}@{domain}>"


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
    """One SMTP connection reused for a batch; reconnects when the server drops it."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if s.username:
                conn.login(s.username, s.password or "")
        except smtplib.SMTPAuthenticationError as err:
            raise DeliveryError(
                f"SMTP {s.host}:{s.port}: authentication refused for user {s.username!r} ({err.smtp_code})",
                permanent=False,
            ) from None
        except smtplib.SMTPResponseException as err:
            raise DeliveryError(
                f"SMTP {s.host}:{s.port}: refused the session: {err.smtp_code}", permanent=False
            ) from None
        except (OSError, smtplib.SMTPException) as err:
            raise DeliveryError(
                f"SMTP {s.host}:{s.port} unreachable: {type(err).__name__}: {err}", permanent=False
            ) from None
        return conn

    def send(self, message: EmailMessage, recipient: str) -> None:
        if self._conn is None:
            self._conn = self._connect()
        try:
            refused = self._conn.send_message(
                message, from_addr=parseaddr(self.settings.sender)[1], to_addrs=[recipient]
            )
        except smtplib.SMTPRecipientsRefused as err:
            code, reply = next(iter(err.recipients.values()), (0, b""))
            raise DeliveryError(
                f"SMTP refused recipient {recipient}: {code} {_text(reply)}",
                permanent=500 <= code < 600,
            ) from None
        except smtplib.SMTPResponseException as err:
            if err.smtp_code == 421:  # the server is closing the connection: reconnect next time
                self.close()
            raise DeliveryError(
                f"SMTP error for {recipient}: {err.smtp_code} {_text(err.smtp_error)}",
                permanent=500 <= err.smtp_code < 600,
            ) from None
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as err:
            self.close()
            raise DeliveryError(f"SMTP connection lost sending to {recipient}: {err}") from None
        if refused:
            raise DeliveryError(f"SMTP refused recipient {recipient}: {refused}", permanent=True)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None


def _text(reply: bytes | str) -> str:
    raw = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return one_line(raw, 200)
