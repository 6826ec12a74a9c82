"""The pipeline's own metrics: counts and timings of every stage, sent as StatsD over UDP.

Exported the way Airflow exports its own (``[metrics] statsd_on``): plain StatsD lines
(``name:value|c``, ``|g``, ``|ms``), optionally with DogStatsD tags (``|#model_version:v3``), to
``metrics.host:metrics.port``, every name under ``metrics.prefix`` (``sanctions_watch.``). A
statsd-exporter turns both Airflow's and these into Prometheus metrics (docs/operations.md,
"Metrics and logs", lists every name).

Guarantees:

* **Never raises, never waits.** Sending is one non-blocking ``sendto`` per datagram on an
  unconnected UDP socket; an error (no route, buffer full, a name that does not resolve) is
  swallowed and counted in :attr:`StatsdClient.errors`, and reported as ``metrics.send_errors`` with
  the next datagram that does go out. The host name is resolved once per process (again at most
  once a minute while it fails), never per metric.
* **One call per job.** :func:`emit_report` turns a stage's report into metrics by its fields: every
  whole-number field a counter ``<prefix>.<stage>.<field>``, the ``pending`` fields gauges (levels,
  not events), plus ``<prefix>.<stage>.duration`` (a timer, ms) when the job's start is given. A new
  report field becomes a metric with no edit here. For the ``deliver`` stage the alerts sent in
  this run add one ``deliver.latency.published`` and one ``deliver.latency.first_seen`` timing each
  (ms from the lead article's publication / first sight to ``sent_at``).
* **Off by default** (``metrics.enabled: false``): then nothing is resolved, opened or queried.

Durations are measured with the monotonic clock: a measurement of the job, not an input to its
logic (which takes ``now`` from the caller).
"""

from __future__ import annotations

import atexit
import logging
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from pipeline.config.records import MetricsSettings
from pipeline.reports import (
    AlertsReport,
    ClassifyReport,
    DeliveryReport,
    DigestReport,
    HealthReport,
    IngestReport,
    MigrateReport,
    Report,
)
from pipeline.store.schema import Alert, Article, Delivery

__all__ = [
    "Metric",
    "StatsdClient",
    "client_for",
    "emit_report",
    "report_metrics",
    "start",
]

log = logging.getLogger(__name__)

# One datagram stays under a typical path MTU (1500 - IP/UDP headers), as statsd clients do.
MAX_DATAGRAM = 1432
RESOLVE_RETRY_SECONDS = 60.0
_NAME_PART = re.compile(r"[^A-Za-z0-9_.-]+")
_TAG_TEXT = re.compile(r"[^A-Za-z0-9_.:/-]+")

STAGES: dict[type[Report], str] = {
    IngestReport: "ingest",
    ClassifyReport: "classify",
    AlertsReport: "alerts",
    DeliveryReport: "deliver",
    DigestReport: "digest",
    HealthReport: "health",
    MigrateReport: "migrate",
}
# Levels, not events: sent as gauges.
GAUGES = frozenset({"pending", "deliveries_pending"})
# Fields kept in a report for its older readers and always 0: not sent.
RETIRED = frozenset({"alerts.digests_new"})


@dataclass(frozen=True, slots=True)
class Metric:
    """One StatsD line before the prefix: ``name:value|kind`` (kind ``c``, ``g`` or ``ms``)."""

    name: str
    value: float
    kind: str = "c"
    tags: Mapping[str, str] | None = None

    def line(self, prefix: str, *, tags: bool) -> str:
        name = _NAME_PART.sub("_", f"{prefix}.{self.name}" if prefix else self.name)
        if isinstance(self.value, int) or float(self.value).is_integer():
            value = str(int(self.value))
        else:
            value = f"{self.value:.3f}".rstrip("0").rstrip(".")
        text = f"{name}:{value}|{self.kind}"
        if tags and self.tags:
            pairs = ",".join(
                f"{_TAG_TEXT.sub('_', k)}:{_TAG_TEXT.sub('_', v)}" for k, v in self.tags.items()
            )
            text += f"|#{pairs}"
        return text


class StatsdClient:
    """A tiny non-blocking StatsD-over-UDP client (see the module's guarantees)."""

    def __init__(self, host: str, port: int, prefix: str = "") -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.errors = 0  # sends and resolutions that failed
        self.sent = 0  # datagrams handed to the kernel
        self._reported_errors = 0
        self._address: tuple[Any, ...] | None = None
        self._sock: socket.socket | None = None
        self._next_resolve = 0.0
        self._lock = threading.Lock()

    def _ready(self) -> socket.socket | None:
        if self._sock is not None:
            return self._sock
        now = time.monotonic()
        if now < self._next_resolve:
            return None
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_DGRAM
            )[0]
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
        except OSError as err:
            self.errors += 1
            self._next_resolve = now + RESOLVE_RETRY_SECONDS
            log.debug("metrics: cannot reach %s:%s: %s", self.host, self.port, err)
            return None
        self._sock, self._address = sock, address
        return sock

    def send(self, lines: Sequence[str]) -> None:
        """Send ``lines`` in as few datagrams as fit; never raises (errors are counted)."""
        with self._lock:
            sock = self._ready()
            if sock is None or self._address is None:
                return
            unreported = self.errors - self._reported_errors
            if unreported:
                lines = [
                    *lines,
                    Metric("metrics.send_errors", unreported).line(self.prefix, tags=False),
                ]
                self._reported_errors = self.errors
            for datagram in _pack(lines):
                try:
                    sock.sendto(datagram, self._address)
                    self.sent += 1
                except OSError as err:  # EAGAIN (buffer full), ENETUNREACH, EMSGSIZE ...
                    self.errors += 1
                    log.debug("metrics: datagram not sent: %s", err)

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
            self._sock, self._address = None, None


def _pack(lines: Sequence[str]) -> list[bytes]:
    """Lines joined by newlines into datagrams of at most MAX_DATAGRAM bytes (a longer line alone)."""
    out: list[bytes] = []
    current = b""
    for line in lines:
        data = line.encode("utf-8")
        if current and len(current) + 1 + len(data) > MAX_DATAGRAM:
            out.append(current)
            current = b""
        current = current + b"\n" + data if current else data
    if current:
        out.append(current)
    return out


_clients: dict[tuple[str, int, str], StatsdClient] = {}
_clients_lock = threading.Lock()


def close_all() -> None:
    """Close every client's socket (registered with :mod:`atexit`: no socket is left to the
    interpreter's shutdown)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


atexit.register(close_all)


def client_for(settings: MetricsSettings) -> StatsdClient:
    """The process's client for ``settings.host:port`` and prefix (one socket each)."""
    key = (settings.host, settings.port, settings.prefix)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = StatsdClient(*key)
        return client


def start() -> float:
    """The start of a job, for :func:`emit_report`'s duration (monotonic seconds)."""
    return time.monotonic()


def report_metrics(
    report: Report | Mapping[str, Any], *, stage: str | None = None, started: float | None = None
) -> list[Metric]:
    """The metrics of one stage's report (see the module docstring); ``stage`` names a plain
    mapping's stage (``housekeeping``)."""
    if isinstance(report, Report):
        name = stage or STAGES.get(type(report), type(report).__name__.lower())
        values = {f.name: getattr(report, f.name) for f in fields(report)}
    else:
        name = stage or "job"
        values = dict(report)
    tags = {"model_version": str(values["model_version"])} if "model_version" in values else None
    out = [
        Metric(f"{name}.{key}", value, "g" if key in GAUGES else "c", tags)
        for key, value in values.items()
        if isinstance(value, int) and not isinstance(value, bool) and f"{name}.{key}" not in RETIRED
    ]
    if started is not None:
        out.append(Metric(f"{name}.duration", (time.monotonic() - started) * 1000.0, "ms", tags))
    return out


def sent_latencies(sessions: sessionmaker[Session], now: datetime) -> list[Metric]:
    """One ``deliver.latency.published`` (when the feed gave a date) and ``first_seen`` timing,
    in ms, per alert delivery sent at ``now`` (this run's sends)."""
    query = (
        select(Delivery.channel, Article.published_at, Article.first_seen_at)
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(Article, Article.id == Alert.article_id)
        .where(Delivery.status == "sent", Delivery.sent_at == now)
    )
    out: list[Metric] = []
    with sessions() as session:
        rows = session.execute(query).all()
    for channel, published, first_seen in rows:
        tags = {"channel": str(channel)}
        if published is not None:
            ms = (now - published).total_seconds() * 1000.0
            out.append(Metric("deliver.latency.published", ms, "ms", tags))
        ms = (now - first_seen).total_seconds() * 1000.0
        out.append(Metric("deliver.latency.first_seen", ms, "ms", tags))
    return out


def emit_report(
    settings: MetricsSettings,
    report: Report | Mapping[str, Any],
    *,
    started: float | None = None,
    stage: str | None = None,
    sessions: sessionmaker[Session] | None = None,
    now: datetime | None = None,
    extra: Iterable[Metric] = (),
) -> None:
    """Send the metrics of ``report`` (and ``extra``); for a :class:`DeliveryReport` with
    ``sessions`` and ``now``, the latency of each alert sent at ``now`` too. Does nothing when
    metrics are off; never raises for a send."""
    if not settings.enabled:
        return
    metrics = [*report_metrics(report, stage=stage, started=started), *extra]
    if isinstance(report, DeliveryReport) and sessions is not None and now is not None:
        try:
            metrics += sent_latencies(sessions, now)
        except SQLAlchemyError as err:  # the sends are done and committed: only metrics lost
            log.warning("metrics: delivery latencies not read: %s", err)
    lines = [m.line(settings.prefix, tags=settings.tags) for m in metrics]
    client_for(settings).send(lines)
