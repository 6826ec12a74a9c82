"""The configuration records: frozen dataclasses every stage reads, with their defaults and the
constants of the settings (prefix, User-Agent, modes). One definition of each setting lives here."""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.errors import ConfigError
from pipeline.net.policy import AllowList

log = logging.getLogger(__name__)


ENV_PREFIX = "SANCTIONS_WATCH_"
REPO_ROOT = Path(__file__).resolve().parents[2]
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"']+$")
SEVERITIES = ("low", "medium", "high", "critical")
FULL_TEXT_MODES = ("never", "auto", "always")
# The one User-Agent of every outbound request (feeds, articles, webhooks); `fetch.user_agent`
# in settings.yaml overrides it.
USER_AGENT = "sanctions-watch/0.1 (+https://github.com/sanctions-watch/sanctions-watch)"
HEADER_VALUE = re.compile(r"[\x20-\x7e\t]{1,1024}")
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
    # Article pages for summary-only items (pipeline/ingest/article.py, docs/fulltext.md): never,
    # auto (only where the page can change the decision) or always (before the first score).
    full_text: Literal["never", "auto", "always"] = "auto"


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """The ``fetch:`` section of ``settings.yaml``: limits and identity of every outbound HTTP
        request (the feed fetcher uses all of it; the webhook sender its allow-list and user agent).

        This is the one definition of these settings and their defaults: :func:`load_config` reads the
        section into it, and :func:`pipeline.ingest.fetch.fetch_feed` takes it as its policy. Invalid
        values raise :class:`ConfigError` at construction. ``allow_hosts`` accepts host names, IP
        addresses and CIDR networks (any iterable of strings is stored as a frozenset). ``workers`` is
        how many feeds one ingest run fetches at once; ``parse_processes`` how many worker processes parse
    the fetched feeds (0: the CPU count; fewer when a run has few feeds; 1: parse in the fetch threads).

        The ``max_*`` limits after ``workers`` bound what a fetched document may hold before feedparser
        parses it (:mod:`pipeline.ingest.prescan`: attributes per element or HTML tag and in all,
        namespace prefixes, nesting depth, elements, tags, bytes of one tag outside quoted values; a
        document over one is that feed's error, naming the setting), and ``parse_budget_bytes`` how many bytes of
        documents one ingest run parses at once across its workers (``pipeline.ingest.parse.ParseBudget``;
        a larger document is parsed alone). SECURITY.md gives the measured costs.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_deadline: float = 30.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    user_agent: str = USER_AGENT
    allow_hosts: frozenset[str] = frozenset()
    workers: int = 8
    parse_processes: int = 0  # 0: the CPU count (pipeline.ingest.parsepool); 1: in the threads
    parse_budget_bytes: int = 16 * 1024 * 1024
    max_attributes: int = 128
    max_namespaces: int = 64
    max_depth: int = 256
    max_elements: int = 50_000
    max_tags: int = 200_000
    max_tag_bytes: int = 8192
    max_total_attributes: int = 200_000

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "total_deadline"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigError(
                    f"FetchPolicy.{name}: expected a positive number of seconds, got {value!r}"
                )
        for name, minimum in (
            ("max_bytes", 1),
            ("max_redirects", 0),
            ("workers", 1),
            ("parse_processes", 0),
            ("parse_budget_bytes", 1),
            ("max_attributes", 1),
            ("max_namespaces", 1),
            ("max_depth", 1),
            ("max_elements", 1),
            ("max_tags", 1),
            ("max_tag_bytes", 256),
            ("max_total_attributes", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(
                    f"FetchPolicy.{name}: expected an integer >= {minimum}, got {value!r}"
                )
        ua = self.user_agent
        if not isinstance(ua, str) or not ua.strip() or HEADER_VALUE.fullmatch(ua) is None:
            raise ConfigError(
                f"FetchPolicy.user_agent: expected printable ASCII without line breaks, got {ua!r}"
            )
        AllowList.from_entries(self.allow_hosts)  # validates; raises ConfigError
        object.__setattr__(self, "allow_hosts", frozenset(self.allow_hosts))


@dataclass(frozen=True, slots=True)
class FullTextSettings:
    """The ``full_text:`` section of ``settings.yaml``: the article-page cascade of ``auto`` feeds
    and the politeness of the page fetcher (docs/fulltext.md). Pages go through the ``fetch:``
    policy (address policy, timeouts, deadline, redirects, user agent) with their own byte cap.

    ``band_low`` is the lower end of the uncertainty band as a fraction of the model's threshold: an
    ``auto`` item is fetched when ``band_low * threshold <= score < threshold``. With
    ``regime_heads`` an ``auto`` item whose title or summary names an active UN sanctions regime is
    fetched at any score below the threshold. An ``auto`` item whose feed already gave a body of at
    least ``full_body_words`` words is never fetched. ``max_pages`` is the page budget of one
    classify run (0: no pages) and ``max_seconds`` its time budget (no request starts after it),
    ``min_delay`` the seconds between two requests to one host (a larger robots.txt Crawl-delay
    wins), ``workers`` how many hosts are fetched at once.
    """

    band_low: float = 0.5
    regime_heads: bool = True
    full_body_words: int = 150
    max_pages: int = 200
    max_seconds: float = 120.0
    min_delay: float = 2.0
    workers: int = 4
    max_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ClassifySettings:
    """The ``classify:`` section of ``settings.yaml``. ``batch_size`` is how many articles one
    classify call reads from the database and scores at a time (keyset pages by article id, so a
    backlog of any size is never one query); ``max_text_chars`` bounds the text of one article the
    model is given (title, then summary, then body, cut to this many characters in all), so one
    long article costs a bounded time to score. ``processes`` is how many worker processes score a
    backlog of more than a page per process (0: the CPU count; 1: score in the task's own process;
    :mod:`pipeline.classify.pool`)."""

    batch_size: int = 500
    max_text_chars: int = 6000
    processes: int = 0


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """The ``health:`` section of ``settings.yaml`` (pipeline/health/). A feed that failed
    ``failures_to_notify`` fetches in a row, went silent past its ``max_silence_hours`` or returned
    fewer than its ``min_items`` raises one operator notice; the next only when it recovers, or
    after ``reminder_hours`` (0: never remind). ``feed_batch_size`` is how many feeds one Airflow
    ingest task instance fetches (docs/operations.md says why 25)."""

    failures_to_notify: int = 3
    reminder_hours: float = 24.0
    feed_batch_size: int = 25


@dataclass(frozen=True, slots=True)
class ModelLocations:
    """Where classifier versions live (``model_store`` and ``model_dir`` settings; see
    :mod:`pipeline.classify.modelstore`). ``store`` is the writable model store, a folder or an fsspec
    URL (``s3://bucket/models``): ``train`` writes new versions there and the registry (active
    version, promotion history) lives there. ``shipped`` is the read-only folder of the model shipped
    with the code (``models/``), served while the store has no active version. ``cache`` holds local
    copies of versions read from a URL store."""

    store: str
    shipped: Path
    cache: Path

    def __truediv__(self, name: str) -> Path:
        """A folder beside the shipped models (the breach-kind tagger's ``kinds/``)."""
        return self.shipped / name


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    """The ``review:`` section (pipeline/review/): ``base_url`` of the analysts' review page (alert
    mail carries signed *relevant* / *not relevant* links to it only when set), how long a link stays
    valid, and the HMAC key of those links, read only from ``SANCTIONS_WATCH_REVIEW_SECRET``."""

    base_url: str | None = None
    link_days: float = 14.0
    secret: str | None = field(default=None, repr=False)
    # Analysts' accounts of the review page (`sanctions-watch review-user NAME` writes it).
    users_file: Path | None = None
    # Send the session cookie only over HTTPS (off only for a loopback demo or test).
    secure_cookies: bool = True


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """The ``retention:`` section (the ``housekeeping`` DAG; pipeline/store/retention.py): days to
    keep fetch-log rows, sent deliveries and articles nothing durable points at (0: for ever)."""

    fetch_log_days: float = 90.0
    sent_deliveries_days: float = 180.0
    articles_days: float = 365.0


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """The ``metrics:`` section (pipeline/metrics.py): the pipeline's own counters and timings sent
    as StatsD over UDP to ``host:port`` (a statsd-exporter, the Datadog agent, statsd itself), each
    name under ``prefix``; ``tags`` adds DogStatsD tags (``|#model_version:...``), which
    statsd-exporter and Datadog read and plain StatsD does not. Off unless ``enabled``."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8125
    prefix: str = "sanctions_watch"
    tags: bool = False


@dataclass(frozen=True, slots=True)
class LogSettings:
    """The ``logging:`` section (pipeline/logs.py): ``format`` of the command line's log lines,
    ``text`` (one line, with ``[feed=... article=... model=...]`` when known) or ``json`` (one
    object a line). Airflow's task logs keep Airflow's own format; the context fields and the
    masking of secrets in URLs apply to both."""

    format: Literal["text", "json"] = "text"


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 8025
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = DEFAULT_SENDER
    timeout: float = 20.0
    # Where replies to alert mail go (the analysts); no Reply-To header when unset.
    reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class AlertSettings:
    max_attempts: int = 8
    backoff_base_seconds: float = 60.0
    backoff_max_seconds: float = 6 * 3600.0
    lease_seconds: float = 300.0
    pending_alarm_hours: float = 6.0
    feedback_address: str | None = None
    batch_size: int = 200  # outbox rows claimed (leased) at a time by one sender
    # A deliver run claims batch after batch until nothing is due or this many seconds have passed
    # (~90 mails/s to a loopback sink in bench/cycles.py; docs/performance.md). The budget is at
    # most half of lease_seconds, so no claimed batch outlives its lease.
    send_seconds: float = 300.0
    # Stories (pipeline/alerts/stories.py; measured in docs/alerts.md with bench/story_threshold.py).
    story_threshold: float = 0.40
    story_window_hours: float = 72.0
    # Webhook POSTs: connect/read timeout and the total deadline of one attempt, in seconds.
    webhook_timeout: float = 10.0
    # Freshness: a story whose lead was published more than late_after_days before we first saw it
    # is stored and scored, then alerted as LATE (late_items: mark) or not at all (drop); 0: off.
    late_after_days: float = 7.0
    late_items: Literal["mark", "drop"] = "mark"


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
    # Breach kinds (pipeline/knowledge/breaches.py); an alert passes when it alleges any of them.
    kinds: tuple[str, ...] = ()
    digest_hour_utc: int = 7
    # Webhook payload: auto (by the URL's host: Slack or Microsoft Teams, else Slack-compatible),
    # slack, teams (an Adaptive Card, as Teams Workflows webhooks expect) or json (our own fields).
    format: Literal["auto", "slack", "teams", "json"] = "auto"


@dataclass(frozen=True, slots=True)
class Config:
    config_dir: Path
    base_dir: Path
    database_url: str
    model_dir: ModelLocations  # the model store, then the shipped models
    outbox_dir: Path
    designations_path: Path | None
    threshold: float | None
    feeds: tuple[FeedConfig, ...]
    subscriptions: tuple[Subscription, ...]
    fetch: FetchPolicy
    smtp: SmtpSettings
    alerts: AlertSettings
    operators: tuple[str, ...] = ()
    embed_workers: int = 1
    full_text: FullTextSettings = field(default_factory=FullTextSettings)
    classify: ClassifySettings = field(default_factory=ClassifySettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LogSettings = field(default_factory=LogSettings)

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
