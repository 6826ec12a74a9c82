"""Deterministic message identities: one scheme for alert, digest and notice Message-IDs.

A re-send of the same message to the same person carries the same id, so mail clients collapse a copy
and a retried task is recognisable. Every caller derives ids here; nothing re-derives the scheme.
"""

from __future__ import annotations

import hashlib
from email.utils import parseaddr

__all__ = ["message_id_for"]


def message_id_for(alert_id: int | str, recipient: str, sender: str) -> str:
    """Deterministic Message-ID: a re-send of the same alert to the same person carries the same id."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "sanctions-watch.invalid"
    token = hashlib.sha256(f"{alert_id}\x00{recipient.lower()}".encode()).hexdigest()[:20]
    return f"<sw.{alert_id}.{token}@{domain}>"
