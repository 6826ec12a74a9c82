"""Analysts' accounts and sessions for the review page.

* Accounts live in a JSON file (``review.users_file``), one scrypt hash per analyst (``n=2**14``, a
  random 16-byte salt); passwords are never stored or logged. :func:`check_password` takes the same
  time for an unknown name as for a wrong password.
* A session is a cookie signed with HMAC-SHA256 under the review secret: analyst, expiry and the
  session's CSRF token. A cookie that is forged, altered or expired is no session. Every POST must
  carry the CSRF token of its session (:func:`csrf_ok`, constant-time).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pipeline.errors import ConfigError, InputError

__all__ = [
    "Session",
    "add_user",
    "check_password",
    "csrf_ok",
    "load_users",
    "make_session",
    "read_session",
]

SESSION_HOURS = 12
_DUMMY = "scrypt$" + "00" * 16 + "$" + "00" * 32


@dataclass(frozen=True, slots=True)
class Session:
    analyst: str
    csrf: str
    expires_at: datetime


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1, dklen=32)


def load_users(path: Path | None) -> dict[str, str]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: unreadable analysts file: {err}") from err
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"{path}: the analysts file maps names to password hashes")
    return data


def add_user(path: Path, name: str, password: str) -> None:
    """Add or replace one analyst (the file written with mode 0600)."""
    name = name.strip()
    if not name or len(name) > 100 or any(c.isspace() for c in name):
        raise InputError("an analyst name is 1-100 characters without spaces")
    if len(password) < 12:
        raise InputError("a password needs at least 12 characters")
    users = load_users(path)
    salt = os.urandom(16)
    users[name] = f"scrypt${salt.hex()}${_hash(password, salt).hex()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(users, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


def check_password(users: dict[str, str], name: str, password: str) -> bool:
    stored = users.get(name, _DUMMY)
    try:
        _, salt, digest = stored.split("$")
        ok = hmac.compare_digest(_hash(password, bytes.fromhex(salt)), bytes.fromhex(digest))
    except ValueError:
        return False
    return ok and name in users


def _sign(secret: str, payload: bytes) -> bytes:
    return hmac.new(
        secret.encode("utf-8"), b"sanctions-watch-session/" + payload, hashlib.sha256
    ).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_session(secret: str, analyst: str, *, now: datetime) -> tuple[str, Session]:
    session = Session(analyst, secrets.token_urlsafe(24), now + timedelta(hours=SESSION_HOURS))
    payload = json.dumps(
        {"u": analyst, "c": session.csrf, "e": int(session.expires_at.timestamp())},
        separators=(",", ":"),
    ).encode("utf-8")
    return f"{_b64(payload)}.{_b64(_sign(secret, payload))}", session


def read_session(secret: str, cookie: str | None, *, now: datetime) -> Session | None:
    """The session a cookie carries, or ``None`` (absent, forged, altered, expired)."""
    if not cookie or len(cookie) > 2048 or cookie.count(".") != 1:
        return None
    body, signature = cookie.split(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except ValueError:
        return None
    if not hmac.compare_digest(given, _sign(secret, payload)):
        return None
    try:
        data = json.loads(payload)
        session = Session(
            str(data["u"]), str(data["c"]), datetime.fromtimestamp(int(data["e"]), tz=now.tzinfo)
        )
    except (ValueError, KeyError, TypeError):
        return None
    return session if now < session.expires_at else None


def csrf_ok(session: Session | None, token: str | None) -> bool:
    return bool(session and token and hmac.compare_digest(session.csrf, token))
