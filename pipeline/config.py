"""Configuration: YAML files in a config folder, read once into frozen, validated objects.

The folder is ``--config DIR``, else ``$SANCTIONS_WATCH_CONFIG``, else ``config/`` of the checkout. It
holds ``settings.yaml``, ``feeds.yaml`` (or another feeds file named by ``feeds_file``),
``subscriptions.yaml`` and ``regimes.yaml``. Environment variables override settings under one prefix:
``SANCTIONS_WATCH_DATABASE_URL``, ``SANCTIONS_WATCH_SMTP__HOST`` (a double underscore enters a section).
Secrets never live in a committed file: the SMTP password comes from ``SANCTIONS_WATCH_SMTP_PASSWORD``
(or, inside Airflow, from the ``smtp_default`` connection).

Every problem is raised as :class:`ConfigError` naming the file, the key and the reason.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from pipeline.errors import ConfigError
from pipeline.net.policy import AllowList, blocked_reason, is_ip_literal, normalize_host

__all__ = [
    "AlertSettings",
    "Config",
    "FeedConfig",
    "FetchSettings",
    "SmtpSettings",
    "Subscription",
    "default_config_dir",
    "load_config",
]

log = logging.getLogger(__name__)

ENV_PREFIX = "SANCTIONS_WATCH_"
REPO_ROOT = Path(__file__).resolve().parent.parent
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
SEVERITIES = ("low", "medium", "high", "critical")
DEFAULT_USER_AGENT = "sanctions-watch/0.1 (+https://github.com/sanctions-watch/sanctions-watch)"
DEFAULT_SENDER = "sanctions-watch <alerts@sanctions-watch.invalid>"


@dataclass(frozen=True, slots=True)
class FeedConfig:
    id: str
    name: str
    url: str
    language: str | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True
    min_items: int = 0
    max_items: int = 500
    max_silence_hours: float = 72.0


@dataclass(frozen=True, slots=True)
class FetchSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_deadline: float = 30.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    allow_hosts: tuple[str, ...] = ()
    workers: int = 8


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 8025
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = DEFAULT_SENDER
    timeout: float = 20.0


@dataclass(frozen=True, slots=True)
class AlertSettings:
    max_attempts: int = 8
    backoff_base_seconds: float = 60.0
    backoff_max_seconds: float = 6 * 3600.0
    lease_seconds: float = 300.0
    pending_alarm_hours: float = 6.0
    feedback_address: str | None = None
    batch_size: int = 200
    # Stories (pipeline/alerts/stories.py; measured in docs/alerts.md with bench/story_threshold.py).
    story_threshold: float = 0.40
    story_window_hours: float = 72.0
    # Webhook POSTs: connect/read timeout and the total deadline of one attempt, in seconds.
    webhook_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    recipients: tuple[str, ...]
    channel: Literal["email", "webhook"] = "email"
    mode: Literal["immediate", "digest"] = "immediate"
    regimes: tuple[str, ...] = ()
    min_severity: str = "low"
    min_score: float = 0.0
    keywords: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    digest_hour_utc: int = 7
    # Webhook payload: auto (by the URL's host: Slack or Microsoft Teams, else Slack-compatible),
    # slack, teams (an Adaptive Card, as Teams Workflows webhooks expect) or json (our own fields).
    format: Literal["auto", "slack", "teams", "json"] = "auto"


@dataclass(frozen=True, slots=True)
class Config:
    config_dir: Path
    base_dir: Path
    database_url: str
    model_dir: Path
    outbox_dir: Path
    designations_path: Path | None
    threshold: float | None
    feeds: tuple[FeedConfig, ...]
    subscriptions: tuple[Subscription, ...]
    fetch: FetchSettings
    smtp: SmtpSettings
    alerts: AlertSettings
    operators: tuple[str, ...] = ()
    embed_workers: int = 1

    @property
    def enabled_feeds(self) -> tuple[FeedConfig, ...]:
        return tuple(f for f in self.feeds if f.enabled)

    def feed(self, feed_id: str) -> FeedConfig:
        for f in self.feeds:
            if f.id == feed_id:
                return f
        raise ConfigError(f"no feed with id {feed_id!r} in the feeds file")


def default_config_dir() -> Path:
    env = os.environ.get(ENV_PREFIX + "CONFIG")
    return Path(env) if env else REPO_ROOT / "config"


class _Reader:
    """Reads typed values out of one YAML mapping, naming file and key in every error."""

    def __init__(self, path: Path, data: Mapping[str, Any], prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(f"{self.path.name}: {self.prefix}{key}: {reason}")

    def sub(self, key: str) -> _Reader:
        value = self.data.get(key) or {}
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a mapping, got {type(value).__name__}")
        return _Reader(self.path, value, f"{self.prefix}{key}.")

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.data) - allowed)
        if unknown:
            raise self.fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def get(self, key: str, kind: type, default: Any = None, *, required: bool = False) -> Any:
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            raise self.fail(key, f"must be {kind.__name__}, got {type(value).__name__} {value!r}")
        return value

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        value = self.get(key, float, default)
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}, got {value}")
        return value

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value = self.get(key, int, default)
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}, got {value}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list, [])
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(key, "must be a list of non-empty strings")
        return tuple(v.strip() for v in value)

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in options:
            raise self.fail(key, f"must be one of {', '.join(options)}, got {value!r}")
        return value


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: file not found") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read: {err}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path.name}: not valid YAML: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path.name}: the top level must be a mapping")
    return data


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``SANCTIONS_WATCH_KEY`` / ``SANCTIONS_WATCH_SECTION__KEY`` onto the settings mapping."""
    # Not settings: the config folder, the secret, test switches and the crash point (faults.py).
    skip = {"CONFIG", "SMTP_PASSWORD", "REQUIRE_POSTGRES", "TEST_POSTGRES_URL", "CRASH_AT"}
    merged: dict[str, Any] = {
        k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()
    }
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name[len(ENV_PREFIX) :] in skip:
            continue
        if name[len(ENV_PREFIX) :].startswith("WEBHOOK_"):
            continue  # webhook URLs referenced from subscriptions.yaml, not settings
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        value: Any = yaml.safe_load(raw) if raw.strip() else None
        if len(parts) == 1:
            merged[parts[0]] = value
        elif len(parts) == 2:
            section = merged.setdefault(parts[0], {})
            if isinstance(section, dict):
                section[parts[1]] = value
    return merged


def _check_url(reader: _Reader, key: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise reader.fail(key, f"must be an http(s) URL with a host, got {url!r}")
    return url


def _load_feeds(path: Path) -> tuple[FeedConfig, ...]:
    root = _Reader(path, _read_yaml(path))
    root.check_keys({"feeds", "defaults"})
    defaults = root.get("defaults", dict, {})
    items = root.get("feeds", list, required=True)
    feeds: list[FeedConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise root.fail(f"feeds[{i}]", "must be a mapping")
        r = _Reader(path, {**defaults, **item}, f"feeds[{i}].")
        r.check_keys(
            {
                "id",
                "name",
                "url",
                "language",
                "tags",
                "enabled",
                "min_items",
                "max_items",
                "max_silence_hours",
                "note",
            }
        )
        feed_id = r.get("id", str, required=True)
        if not _ID_RE.match(feed_id):
            raise r.fail("id", f"must be a lowercase slug (a-z 0-9 _ . -), got {feed_id!r}")
        if feed_id in seen:
            raise r.fail("id", f"duplicate feed id {feed_id!r}")
        seen.add(feed_id)
        feeds.append(
            FeedConfig(
                id=feed_id,
                name=r.get("name", str, feed_id),
                url=_check_url(r, "url", r.get("url", str, required=True)),
                language=r.get("language", str),
                tags=r.strings("tags"),
                enabled=r.get("enabled", bool, True),
                min_items=r.integer("min_items", 0, low=0, high=10_000),
                max_items=r.integer("max_items", 500, low=1, high=100_000),
                max_silence_hours=r.number("max_silence_hours", 72.0, low=0.0, high=24 * 365.0),
            )
        )
    return tuple(feeds)


WEBHOOK_FORMATS = ("auto", "slack", "teams", "json")
_LANG_RE = re.compile(r"^[a-z]{2,3}$")


def _check_webhook(reader: _Reader, url: str, allow_hosts: tuple[str, ...]) -> str:
    """A webhook URL: https, or http for an allow-listed host; never a refused IP literal."""
    _check_url(reader, "recipients", url)
    parts = urlsplit(url)
    host = normalize_host(parts.hostname or "")
    allow = AllowList.from_entries(allow_hosts)
    listed = allow.allows_host(host) or (
        is_ip_literal(host) and allow.allows_address(ipaddress.ip_address(host))
    )
    if parts.scheme != "https" and not listed:
        raise reader.fail(
            "recipients",
            f"webhook {parts.scheme}://{host}/… must use https (http only for hosts in "
            "fetch.allow_hosts)",
        )
    if parts.username or parts.password:
        raise reader.fail("recipients", f"webhook https://{host}/… must not embed credentials")
    if is_ip_literal(host) and not listed:
        reason = blocked_reason(host)
        if reason is not None:
            raise reader.fail(
                "recipients",
                f"webhook host {host} is a {reason} (allow-list it in fetch.allow_hosts)",
            )
    return url


def _load_subscriptions(
    path: Path,
    *,
    feed_ids: frozenset[str] | None = None,
    regime_keys: frozenset[str] | None = None,
    allow_hosts: tuple[str, ...] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[Subscription, ...]:
    """Read and validate subscriptions; unknown regimes or feed ids are refused when known.

    A webhook recipient may be written ``${SANCTIONS_WATCH_WEBHOOK_<NAME>}``: the URL (a secret: Slack and Teams
    put the token in it) is then read from that environment variable.
    """
    env = os.environ if environ is None else environ
    if not path.exists():
        return ()
    root = _Reader(path, _read_yaml(path))
    root.check_keys({"subscriptions"})
    subs: list[Subscription] = []
    seen: set[str] = set()
    for i, item in enumerate(root.get("subscriptions", list, [])):
        if not isinstance(item, Mapping):
            raise root.fail(f"subscriptions[{i}]", "must be a mapping")
        r = _Reader(path, item, f"subscriptions[{i}].")
        r.check_keys(
            {
                "id",
                "recipients",
                "channel",
                "mode",
                "regimes",
                "min_severity",
                "min_score",
                "keywords",
                "sources",
                "languages",
                "digest_hour_utc",
                "format",
                "note",
            }
        )
        sub_id = r.get("id", str, required=True)
        if not _ID_RE.match(sub_id) or sub_id in seen:
            raise r.fail("id", f"must be a unique lowercase slug, got {sub_id!r}")
        seen.add(sub_id)
        channel = r.choice("channel", ("email", "webhook"), "email")
        recipients = r.strings("recipients")
        if channel == "webhook":
            recipients = tuple(_from_env(r, x, env) for x in recipients)
        if not recipients:
            raise r.fail("recipients", "must list at least one recipient")
        if len({x.lower() for x in recipients}) != len(recipients):
            raise r.fail("recipients", "lists the same recipient twice")
        for rcpt in recipients:
            if channel == "email" and not _EMAIL_RE.match(rcpt):
                raise r.fail("recipients", f"{rcpt!r} is not an email address")
            if channel == "webhook":
                _check_webhook(r, rcpt, allow_hosts)
        fmt = r.choice("format", WEBHOOK_FORMATS, "auto")
        if channel != "webhook" and "format" in item:
            raise r.fail("format", "applies to webhook subscriptions only")
        regimes = r.strings("regimes")
        unknown = [x for x in regimes if regime_keys is not None and x not in regime_keys]
        if unknown:
            raise r.fail(
                "regimes",
                f"unknown regime {unknown[0]!r} (known: {', '.join(sorted(regime_keys or ()))})",
            )
        sources = r.strings("sources")
        unknown = [x for x in sources if feed_ids is not None and x not in feed_ids]
        if unknown:
            raise r.fail("sources", f"unknown feed id {unknown[0]!r} (not in the feeds file)")
        languages = tuple(x.lower() for x in r.strings("languages"))
        bad = [x for x in languages if not _LANG_RE.match(x)]
        if bad:
            raise r.fail("languages", f"{bad[0]!r} is not an ISO 639 language code such as 'en'")
        subs.append(
            Subscription(
                id=sub_id,
                recipients=recipients,
                channel=channel,  # type: ignore[arg-type]
                mode=r.choice("mode", ("immediate", "digest"), "immediate"),  # type: ignore[arg-type]
                regimes=regimes,
                min_severity=r.choice("min_severity", SEVERITIES, "low"),
                min_score=r.number("min_score", 0.0, low=0.0, high=1.0),
                keywords=tuple(k.lower() for k in r.strings("keywords")),
                sources=sources,
                languages=languages,
                digest_hour_utc=r.integer("digest_hour_utc", 7, low=0, high=23),
                format=fmt,  # type: ignore[arg-type]
            )
        )
    return tuple(subs)


_ENV_REF = re.compile(r"^\$\{(SANCTIONS_WATCH_WEBHOOK_[A-Z0-9_]+)\}$")


def _from_env(reader: _Reader, value: str, env: Mapping[str, str]) -> str:
    m = _ENV_REF.match(value)
    if m is None:
        return value
    resolved = env.get(m.group(1), "").strip()
    if not resolved:
        raise reader.fail("recipients", f"environment variable {m.group(1)} is not set")
    return resolved


def _regime_keys(path: Path) -> frozenset[str] | None:
    """The regime keys of ``regimes.yaml`` (None when the file is absent: nothing to check)."""
    if not path.exists():
        return None
    data = _read_yaml(path)
    regimes = data.get("regimes")
    return frozenset(str(k) for k in regimes) if isinstance(regimes, Mapping) else None


def load_config(
    config_dir: str | Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Config:
    """Read and validate the whole configuration folder."""
    env = os.environ if environ is None else environ
    cdir = Path(config_dir) if config_dir else default_config_dir()
    if not cdir.is_dir():
        raise ConfigError(f"config folder {cdir} does not exist")
    cdir = cdir.resolve()
    settings_path = cdir / "settings.yaml"
    data = _apply_env(dict(_read_yaml(settings_path)), env)
    r = _Reader(settings_path, data)
    r.check_keys(
        {
            "database_url",
            "base_dir",
            "feeds_file",
            "model_dir",
            "outbox_dir",
            "designations_path",
            "threshold",
            "fetch",
            "smtp",
            "alerts",
            "operators",
        }
    )
    base = Path(r.get("base_dir", str, str(cdir.parent)))
    base = base if base.is_absolute() else (cdir / base).resolve()

    def path_of(key: str, default: str | None) -> Path | None:
        raw = r.get(key, str, default)
        if raw is None:
            return None
        p = Path(raw).expanduser()
        return p if p.is_absolute() else base / p

    database_url = r.get("database_url", str, "sqlite:///var/sanctions-watch.db")
    if database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:////"):
        rel = database_url[len("sqlite:///") :]
        if rel and rel != ":memory:":
            database_url = f"sqlite:///{base / rel}"
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", database_url):
        raise r.fail("database_url", "must be a sqlite:// or postgresql:// URL")

    threshold = r.get("threshold", float)
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise r.fail("threshold", f"must be between 0 and 1 (exclusive), got {threshold}")

    f = r.sub("fetch")
    f.check_keys(set(FetchSettings.__slots__))
    fetch = FetchSettings(
        connect_timeout=f.number("connect_timeout", 5.0, low=0.1, high=120.0),
        read_timeout=f.number("read_timeout", 15.0, low=0.1, high=300.0),
        total_deadline=f.number("total_deadline", 30.0, low=0.5, high=600.0),
        max_bytes=f.integer("max_bytes", 5 * 1024 * 1024, low=1024, high=200 * 1024 * 1024),
        max_redirects=f.integer("max_redirects", 5, low=0, high=20),
        user_agent=f.get("user_agent", str, DEFAULT_USER_AGENT),
        allow_hosts=f.strings("allow_hosts"),
        workers=f.integer("workers", 8, low=1, high=64),
    )

    s = r.sub("smtp")
    s.check_keys({"host", "port", "security", "username", "sender", "timeout"})
    smtp = SmtpSettings(
        host=s.get("host", str, "127.0.0.1"),
        port=s.integer("port", 8025, low=1, high=65535),
        security=s.choice("security", ("none", "starttls", "ssl"), "none"),  # type: ignore[arg-type]
        username=s.get("username", str),
        password=env.get(ENV_PREFIX + "SMTP_PASSWORD") or None,
        sender=s.get("sender", str, DEFAULT_SENDER),
        timeout=s.number("timeout", 20.0, low=1.0, high=300.0),
    )

    a = r.sub("alerts")
    a.check_keys(set(AlertSettings.__slots__))
    alerts = AlertSettings(
        max_attempts=a.integer("max_attempts", 8, low=1, high=100),
        backoff_base_seconds=a.number("backoff_base_seconds", 60.0, low=0.0, high=86400.0),
        backoff_max_seconds=a.number("backoff_max_seconds", 21600.0, low=0.0, high=7 * 86400.0),
        lease_seconds=a.number("lease_seconds", 300.0, low=5.0, high=86400.0),
        pending_alarm_hours=a.number("pending_alarm_hours", 6.0, low=0.0, high=24 * 30.0),
        feedback_address=a.get("feedback_address", str),
        batch_size=a.integer("batch_size", 200, low=1, high=100_000),
        story_threshold=a.number("story_threshold", 0.40, low=0.05, high=1.0),
        story_window_hours=a.number("story_window_hours", 72.0, low=1.0, high=24 * 30.0),
        webhook_timeout=a.number("webhook_timeout", 10.0, low=1.0, high=120.0),
    )

    operators = r.strings("operators")
    for op in operators:
        if not _EMAIL_RE.match(op):
            raise r.fail("operators", f"{op!r} is not an email address")

    feeds_file = r.get("feeds_file", str, "feeds.yaml")
    feeds = _load_feeds(cdir / feeds_file)
    subscriptions = _load_subscriptions(
        cdir / "subscriptions.yaml",
        feed_ids=frozenset(f.id for f in feeds),
        regime_keys=_regime_keys(cdir / "regimes.yaml"),
        allow_hosts=fetch.allow_hosts,
        environ=env,
    )
    config = Config(
        config_dir=cdir,
        base_dir=base,
        database_url=database_url,
        model_dir=path_of("model_dir", "models") or base / "models",
        outbox_dir=path_of("outbox_dir", "var/outbox") or base / "var/outbox",
        designations_path=path_of("designations_path", None),
        threshold=threshold,
        feeds=feeds,
        subscriptions=subscriptions,
        fetch=fetch,
        smtp=smtp,
        alerts=alerts,
        operators=operators,
        embed_workers=r.integer("embed_workers", 1, low=1, high=8),
    )
    log.debug("config loaded from %s: %d feeds", cdir, len(config.feeds))
    return config
