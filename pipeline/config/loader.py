"""``load_config``: the settings file section by section, then feeds and subscriptions, into one
:class:`~pipeline.config.records.Config`; and the executor check at the Airflow edge."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from pipeline.config.reader import Reader, apply_env, read_yaml
from pipeline.config.records import (
    DEFAULT_SENDER,
    EMAIL_RE,
    ENV_PREFIX,
    AlertSettings,
    ClassifySettings,
    Config,
    FetchPolicy,
    FullTextSettings,
    HealthSettings,
    LogSettings,
    MetricsSettings,
    ModelLocations,
    RetentionSettings,
    ReviewSettings,
    SmtpSettings,
    default_config_dir,
)
from pipeline.config.sources import load_feeds, load_subscriptions, regime_keys
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)


# What settings.yaml may set each fetch limit to (the defaults are FetchPolicy's).
_FETCH_RANGES: dict[str, tuple[float, float]] = {
    "connect_timeout": (0.1, 120.0),
    "read_timeout": (0.1, 300.0),
    "total_deadline": (0.5, 600.0),
    "max_bytes": (1024, 200 * 1024 * 1024),
    "max_redirects": (0, 20),
    "workers": (1, 64),
    "parse_processes": (0, 64),
    "parse_budget_bytes": (1024 * 1024, 4 * 1024 * 1024 * 1024),
    "max_attributes": (8, 100_000),
    "max_namespaces": (4, 100_000),
    "max_depth": (16, 100_000),
    "max_elements": (1000, 10_000_000),
    "max_tags": (1000, 10_000_000),
    "max_tag_bytes": (256, 10 * 1024 * 1024),
    "max_total_attributes": (1000, 100_000_000),
}


def _read_fetch(f: Reader) -> FetchPolicy:
    """The ``fetch:`` section: every key a field of :class:`FetchPolicy`, defaults from it."""
    names = {x.name: x for x in fields(FetchPolicy)}
    values: dict[str, Any] = {}
    for name, (low, high) in _FETCH_RANGES.items():
        default = names[name].default
        if isinstance(default, int):
            values[name] = f.integer(name, default, low=int(low), high=int(high))
        else:
            values[name] = f.number(name, float(default), low=low, high=high)  # type: ignore[arg-type]
    values["user_agent"] = f.get("user_agent", str, names["user_agent"].default)
    values["allow_hosts"] = f.strings("allow_hosts")
    f.check_read()
    try:
        return FetchPolicy(**values)
    except ConfigError as err:
        raise ConfigError(f"{f.path.name}: fetch: {err}") from err


def _read_full_text(f: Reader) -> FullTextSettings:
    """The ``full_text:`` section (defaults from :class:`FullTextSettings`)."""
    d = FullTextSettings()
    settings = FullTextSettings(
        band_low=f.number("band_low", d.band_low, low=0.0, high=1.0),
        regime_heads=f.get("regime_heads", bool, d.regime_heads),
        full_body_words=f.integer("full_body_words", d.full_body_words, low=0, high=100_000),
        max_pages=f.integer("max_pages", d.max_pages, low=0, high=100_000),
        max_seconds=f.number("max_seconds", d.max_seconds, low=1.0, high=3600.0),
        min_delay=f.number("min_delay", d.min_delay, low=0.0, high=3600.0),
        workers=f.integer("workers", d.workers, low=1, high=64),
        max_bytes=f.integer("max_bytes", d.max_bytes, low=1024, high=200 * 1024 * 1024),
    )
    f.check_read()
    return settings


def _read_classify(c: Reader) -> ClassifySettings:
    """The ``classify:`` section (defaults from :class:`ClassifySettings`)."""
    d = ClassifySettings()
    settings = ClassifySettings(
        batch_size=c.integer("batch_size", d.batch_size, low=1, high=100_000),
        max_text_chars=c.integer("max_text_chars", d.max_text_chars, low=200, high=1_000_000),
        processes=c.integer("processes", d.processes, low=0, high=64),
    )
    c.check_read()
    return settings


def _read_health(h: Reader) -> HealthSettings:
    """The ``health:`` section (defaults from :class:`HealthSettings`)."""
    d = HealthSettings()
    settings = HealthSettings(
        failures_to_notify=h.integer("failures_to_notify", d.failures_to_notify, low=1, high=1000),
        reminder_hours=h.number("reminder_hours", d.reminder_hours, low=0.0, high=24 * 365.0),
        feed_batch_size=h.integer("feed_batch_size", d.feed_batch_size, low=1, high=10_000),
    )
    h.check_read()
    return settings


def _read_review(v: Reader, env: Mapping[str, str], base: Path) -> ReviewSettings:
    """The ``review:`` section; the secret only from ``SANCTIONS_WATCH_REVIEW_SECRET`` (at least 32
    characters), never a settings key."""
    d = ReviewSettings()
    base_url = v.get("base_url", str)
    if base_url is not None and not re.match(r"^https?://[^\s/]+", base_url):
        raise v.fail("base_url", f"{base_url!r} is not an http(s) URL")
    secret = env.get(ENV_PREFIX + "REVIEW_SECRET") or None
    if secret is not None and len(secret) < 32:
        raise v.fail("base_url", f"{ENV_PREFIX}REVIEW_SECRET must be at least 32 characters")
    settings = ReviewSettings(
        base_url=base_url.rstrip("/") if base_url else None,
        link_days=v.number("link_days", d.link_days, low=0.01, high=90.0),
        secret=secret,
        users_file=base / v.get("users_file", str, "var/review-users.json"),
        secure_cookies=v.get("secure_cookies", bool, True),
    )
    v.check_read()
    return settings


# Airflow executors that run tasks on other machines (or pods): every task must reach one shared
# database, and a SQLite file is local to one machine and allows one writer at a time.
DISTRIBUTED_EXECUTORS = (
    "CeleryExecutor",
    "KubernetesExecutor",
    "CeleryKubernetesExecutor",
    "EdgeExecutor",
)


def check_executor(config: Config, executor: str | None) -> None:
    """Refuse a SQLite ``database_url`` under a distributed Airflow executor (``executor`` is the
    value of ``AIRFLOW__CORE__EXECUTOR``, read by the caller at the edge; None or a local executor
    passes)."""
    name = (executor or "").strip()
    names = {part.strip().rsplit(".", 1)[-1] for part in name.split(",")}
    if names & set(DISTRIBUTED_EXECUTORS) and config.database_url.startswith("sqlite"):
        raise ConfigError(
            f"{config.config_dir / 'settings.yaml'}: database_url: SQLite cannot serve the "
            f"{name}: its tasks run on several machines, and a SQLite file lives on one and allows "
            "one writer at a time; use postgresql://... (docs/operations.md)"
        )


def _read_retention(r: Reader) -> RetentionSettings:
    """The ``retention:`` section (defaults from :class:`RetentionSettings`)."""
    d = RetentionSettings()
    days = 100 * 365.0
    settings = RetentionSettings(
        fetch_log_days=r.number("fetch_log_days", d.fetch_log_days, low=0.0, high=days),
        sent_deliveries_days=r.number(
            "sent_deliveries_days", d.sent_deliveries_days, low=0.0, high=days
        ),
        articles_days=r.number("articles_days", d.articles_days, low=0.0, high=days),
    )
    r.check_read()
    return settings


def _read_metrics(m: Reader) -> MetricsSettings:
    """The ``metrics:`` section (defaults from :class:`MetricsSettings`): a host name or address,
    a UDP port, a prefix of dot-separated words."""
    d = MetricsSettings()
    host = m.get("host", str, d.host).strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,253}", host):
        raise m.fail("host", f"{host!r} is not a host name or IP address")
    prefix = m.get("prefix", str, d.prefix)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", prefix):
        raise m.fail("prefix", f"{prefix!r} must be dot-separated words of letters, digits and _")
    settings = MetricsSettings(
        enabled=m.get("enabled", bool, d.enabled),
        host=host,
        port=m.integer("port", d.port, low=1, high=65535),
        prefix=prefix,
        tags=m.get("tags", bool, d.tags),
    )
    m.check_read()
    return settings


def _read_logging(g: Reader) -> LogSettings:
    """The ``logging:`` section (defaults from :class:`LogSettings`)."""
    settings = LogSettings(format=g.choice("format", ("text", "json"), "text"))  # type: ignore[arg-type]
    g.check_read()
    return settings


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
    data = apply_env(dict(read_yaml(settings_path)), env)
    r = Reader(settings_path, data)
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

    fetch = _read_fetch(r.sub("fetch"))

    s = r.sub("smtp")
    smtp = SmtpSettings(
        host=s.get("host", str, "127.0.0.1"),
        port=s.integer("port", 8025, low=1, high=65535),
        security=s.choice("security", ("none", "starttls", "ssl"), "none"),  # type: ignore[arg-type]
        username=s.get("username", str),
        password=env.get(ENV_PREFIX + "SMTP_PASSWORD") or None,
        sender=s.get("sender", str, DEFAULT_SENDER),
        timeout=s.number("timeout", 20.0, low=1.0, high=300.0),
        reply_to=s.get("reply_to", str),
    )
    if smtp.reply_to is not None and not EMAIL_RE.match(smtp.reply_to):
        raise s.fail("reply_to", f"{smtp.reply_to!r} is not an email address")
    s.check_read()  # the password is never a settings key: SANCTIONS_WATCH_SMTP_PASSWORD only

    a = r.sub("alerts")
    alerts = AlertSettings(
        max_attempts=a.integer("max_attempts", 8, low=1, high=100),
        backoff_base_seconds=a.number("backoff_base_seconds", 60.0, low=0.0, high=86400.0),
        backoff_max_seconds=a.number("backoff_max_seconds", 21600.0, low=0.0, high=7 * 86400.0),
        lease_seconds=a.number("lease_seconds", 300.0, low=5.0, high=86400.0),
        pending_alarm_hours=a.number("pending_alarm_hours", 6.0, low=0.0, high=24 * 30.0),
        feedback_address=a.get("feedback_address", str),
        batch_size=a.integer("batch_size", 200, low=1, high=100_000),
        send_seconds=a.number("send_seconds", 300.0, low=1.0, high=86400.0),
        story_threshold=a.number("story_threshold", 0.40, low=0.05, high=1.0),
        story_window_hours=a.number("story_window_hours", 72.0, low=1.0, high=24 * 30.0),
        webhook_timeout=a.number("webhook_timeout", 10.0, low=1.0, high=120.0),
        late_after_days=a.number("late_after_days", 7.0, low=0.0, high=3650.0),
        late_items=a.choice("late_items", ("mark", "drop"), "mark"),  # type: ignore[arg-type]
    )
    a.check_read()

    operators = r.strings("operators")
    for op in operators:
        if not EMAIL_RE.match(op):
            raise r.fail("operators", f"{op!r} is not an email address")

    shipped_models = path_of("model_dir", "models") or base / "models"
    raw_store = r.get("model_store", str, "var/models")
    model_dir = ModelLocations(
        store=raw_store if "://" in raw_store else str(path_of("model_store", "var/models")),
        shipped=shipped_models,
        cache=base / "var" / "model-cache",
    )
    outbox_dir = path_of("outbox_dir", "var/outbox") or base / "var/outbox"
    designations_path = path_of("designations_path", None)
    embed_workers = r.integer("embed_workers", 1, low=1, high=8)
    full_text = _read_full_text(r.sub("full_text"))
    classify = _read_classify(r.sub("classify"))
    health = _read_health(r.sub("health"))
    retention = _read_retention(r.sub("retention"))
    review = _read_review(r.sub("review"), env, base)
    metrics = _read_metrics(r.sub("metrics"))
    logging_ = _read_logging(r.sub("logging"))
    feeds_file = r.get("feeds_file", str, "feeds.yaml")
    r.check_read()  # a top-level key is allowed exactly when it is read above

    feeds = load_feeds(cdir / feeds_file)
    subscriptions = load_subscriptions(
        cdir / "subscriptions.yaml",
        feed_ids=frozenset(f.id for f in feeds),
        regime_keys=regime_keys(cdir / "regimes.yaml"),
        allow_hosts=fetch.allow_hosts,
        environ=env,
    )
    config = Config(
        config_dir=cdir,
        base_dir=base,
        database_url=database_url,
        model_dir=model_dir,
        outbox_dir=outbox_dir,
        designations_path=designations_path,
        threshold=threshold,
        feeds=feeds,
        subscriptions=subscriptions,
        fetch=fetch,
        smtp=smtp,
        alerts=alerts,
        operators=operators,
        embed_workers=embed_workers,
        full_text=full_text,
        classify=classify,
        health=health,
        retention=retention,
        review=review,
        metrics=metrics,
        logging=logging_,
    )
    log.debug("config loaded from %s: %d feeds", cdir, len(config.feeds))
    return config
