"""Signed one-click feedback links in alert email.

A token names exactly one alert, one label (``relevant`` or ``not_relevant``), one recipient and an
expiry, and its purpose (``label``); it is signed with HMAC-SHA256 under the review secret
(``SANCTIONS_WATCH_REVIEW_SECRET``). So a forwarded mail cannot be replayed for another alert, label or
person (the signature covers all of them), an old mail stops working after ``review.link_days``, and
(through ``label_events.token_sha256``, unique) each link records a label once. A link only *opens*
the review page with the label pre-filled; the label is recorded by the confirmation POST.

Pure functions: no clock (``now`` passed in), no I/O, nothing logged (a token is a credential).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from pipeline.config import Config
from pipeline.errors import SanctionsWatchError

__all__ = [
    "LINK_LABELS",
    "TokenClaims",
    "TokenError",
    "feedback_links",
    "make_token",
    "read_token",
    "token_digest",
]

PURPOSE = "label"
LINK_LABELS = ("relevant", "not_relevant")
MAX_TOKEN_CHARS = 1024


class TokenError(SanctionsWatchError):
    """A feedback link is malformed, forged, expired or for another purpose (the message says which,
    never echoing the token)."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    alert_id: int
    label: str
    recipient: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), b"sanctions-watch/" + payload, hashlib.sha256).digest()


def make_token(
    secret: str, *, alert_id: int, label: str, recipient: str, expires_at: datetime
) -> str:
    if label not in LINK_LABELS:
        raise TokenError(f"a link labels {' or '.join(LINK_LABELS)}, not {label!r}")
    claims = {
        "p": PURPOSE,
        "a": int(alert_id),
        "l": label,
        "r": recipient.strip().lower(),
        "e": int(expires_at.timestamp()),
    }
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return f"{_b64(payload)}.{_b64(_sign(secret, payload))}"


def read_token(secret: str, token: str, *, now: datetime) -> TokenClaims:
    """The claims of a genuine, unexpired label token; :class:`TokenError` otherwise."""
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise TokenError("the feedback link is malformed")
    body, signature = token.split(".")
    try:
        payload, given = _unb64(body), _unb64(signature)
    except ValueError as err:
        raise TokenError("the feedback link is malformed") from err
    if not hmac.compare_digest(given, _sign(secret, payload)):
        raise TokenError("the feedback link's signature is not valid")
    try:
        claims = json.loads(payload)
        result = TokenClaims(
            alert_id=int(claims["a"]),
            label=str(claims["l"]),
            recipient=str(claims["r"]),
            expires_at=datetime.fromtimestamp(int(claims["e"]), tz=now.tzinfo),
        )
        purpose = claims["p"]
    except (ValueError, KeyError, TypeError) as err:
        raise TokenError("the feedback link's content is not understood") from err
    if purpose != PURPOSE or result.label not in LINK_LABELS:
        raise TokenError("the feedback link is not a label link")
    if now >= result.expires_at:
        raise TokenError("the feedback link has expired; label the alert on the review page")
    return result


def token_digest(token: str) -> str:
    """What is stored of a spent token: its SHA-256, never the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def feedback_links(
    config: Config, *, alert_id: int, recipient: str, now: datetime
) -> tuple[tuple[str, str], ...]:
    """``(label, url)`` for *relevant* and *not relevant*, or nothing when the review page or its
    secret is not configured."""
    review = config.review
    if not review.base_url or not review.secret:
        return ()
    expires = now + timedelta(days=review.link_days)
    return tuple(
        (
            label,
            f"{review.base_url}/feedback?t="
            + quote(
                make_token(
                    review.secret,
                    alert_id=alert_id,
                    label=label,
                    recipient=recipient,
                    expires_at=expires,
                ),
                safe="",
            ),
        )
        for label in LINK_LABELS
    )
