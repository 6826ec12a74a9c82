"""What each pipeline stage reports: frozen records of ids and counts, never article bodies.

Every stage in :mod:`pipeline.jobs` returns one of these; :meth:`Report.as_dict` gives the plain
JSON-serialisable form that goes into XCom and ``sanctions-watch run-once --json`` (tuples become
lists, mappings dicts); reports also pickle, to cross process boundaries. A report reads like
the mapping it replaces (``report["sent"]``), so code written against the earlier dict reports
keeps working; new code uses attributes.

:class:`RunSummary` is the one place that says how the stage reports add up to a run's summary (the
keys of ``run-once --json``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "AlertsReport",
    "ClassifyReport",
    "DeliveryReport",
    "DigestReport",
    "FeedOutcome",
    "HealthReport",
    "IngestReport",
    "MigrateReport",
    "Report",
    "RunSummary",
]


def _plain(value: Any) -> Any:
    if isinstance(value, Report):
        return value.as_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Report:
    """Base of the stage reports: ``as_dict`` for JSON and XCom, read access by key."""

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON types, keys in field order."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)


@dataclass(frozen=True, slots=True)
class MigrateReport(Report):
    """The schema revision the database is at after ``migrate``."""

    revision: str


@dataclass(frozen=True, slots=True)
class FeedOutcome(Report):
    """What storing one feed's fetch added up to (counted only once its transaction committed)."""

    feed_id: str
    outcome: str  # "ok", "not_modified" or "error"
    entries_seen: int = 0
    articles_new: int = 0
    articles_updated: int = 0
    duplicates: int = 0
    skipped: int = 0
    error: str | None = None
    same_body: bool = False  # not modified: the same bytes as last time (not a 304)


@dataclass(frozen=True, slots=True)
class IngestReport(Report):
    run_id: str
    feeds_ok: int = 0
    feeds_not_modified: int = 0
    feeds_failed: int = 0
    feeds_deferred: int = 0
    entries_seen: int = 0
    articles_new: int = 0
    articles_updated: int = 0
    duplicates: int = 0
    skipped: int = 0
    errors: Mapping[str, str] = field(default_factory=dict)  # feed id -> reason

    @classmethod
    def of(cls, run_id: str, outcomes: Iterable[FeedOutcome], *, deferred: int) -> IngestReport:
        """The sum of the feeds' outcomes; ``deferred`` feeds were not fetched at all."""
        items = list(outcomes)

        def total(name: str) -> int:
            return sum(int(getattr(o, name)) for o in items)

        return cls(
            run_id=run_id,
            feeds_ok=sum(o.outcome == "ok" for o in items),
            feeds_not_modified=sum(o.outcome == "not_modified" for o in items),
            feeds_failed=sum(o.outcome == "error" for o in items),
            feeds_deferred=deferred,
            entries_seen=total("entries_seen"),
            articles_new=total("articles_new"),
            articles_updated=total("articles_updated"),
            duplicates=total("duplicates"),
            skipped=total("skipped"),
            errors={o.feed_id: o.error for o in items if o.error is not None},
        )

    def as_xcom(self) -> dict[str, Any]:
        """The report without error texts (they go to the task log): the run id and counts. No
        article ids: classify finds its work in the database (a big first cycle's ids overflowed
        the database's bind parameters and XCom)."""
        out = self.as_dict()
        del out["errors"]
        out["failed_feeds"] = sorted(self.errors)
        return out


@dataclass(frozen=True, slots=True)
class ClassifyReport(Report):
    model_version: str
    classified: int = 0
    flagged: int = 0


@dataclass(frozen=True, slots=True)
class AlertsReport(Report):
    alerts_new: int = 0
    alert_ids: tuple[int, ...] = ()
    deliveries_pending: int = 0
    stories_new: int = 0
    stories_joined: int = 0
    updates_new: int = 0
    digest_items_queued: int = 0
    # Digests are composed by ``compose_digests`` (DigestReport) since the digest DAG: always 0 and
    # () here, kept so readers of the earlier report keep working.
    digests_new: int = 0
    digest_ids: tuple[int, ...] = ()

    def as_xcom(self) -> dict[str, Any]:
        """Counts only: a big first cycle records as many alerts as it flags, and XCom carries
        counts and ids of runs, never lists that grow with the input."""
        out = self.as_dict()
        del out["alert_ids"], out["digest_ids"]
        return out


@dataclass(frozen=True, slots=True)
class DigestReport(Report):
    """What ``compose_digests`` (the ``digest`` DAG) did: the digests composed at ``now`` (one per
    recipient and channel whose hour had come and who had queued items), how many items they
    took, and the outbox rows still waiting to be sent. Bounded by the recipients, not the input."""

    digests_new: int = 0
    digest_ids: tuple[int, ...] = ()
    items: int = 0
    deliveries_pending: int = 0


@dataclass(frozen=True, slots=True)
class DeliveryReport(Report):
    sent: int = 0
    retried: int = 0
    failed: int = 0
    pending: int = 0
    webhook_sent: int = 0


@dataclass(frozen=True, slots=True)
class HealthReport(Report):
    notices_new: int = 0
    notices: tuple[str, ...] = ()
    notices_emailed: int = 0


@dataclass(frozen=True, slots=True)
class RunSummary(Report):
    """One full cycle (``run-once``): the keys of ``sanctions-watch run-once --json``."""

    run_id: str
    feeds_ok: int  # fetched, changed or not (304)
    feeds_failed: int
    feeds_deferred: int
    entries_seen: int
    articles_new: int
    articles_updated: int
    duplicates: int
    classified: int
    flagged: int
    model_version: str
    alerts_new: int
    alerts_sent: int
    alerts_retried: int
    alerts_failed: int
    alerts_pending: int
    notices_new: int
    errors: Mapping[str, str]
    stories_new: int
    alerts_updates: int
    digests_new: int
    webhooks_sent: int
    notices_emailed: int

    @classmethod
    def of(
        cls,
        ingest: IngestReport,
        classify: ClassifyReport,
        alerts: AlertsReport,
        delivery: DeliveryReport,
        health: HealthReport,
        digests: DigestReport | None = None,
    ) -> RunSummary:
        return cls(
            run_id=ingest.run_id,
            feeds_ok=ingest.feeds_ok + ingest.feeds_not_modified,
            feeds_failed=ingest.feeds_failed,
            feeds_deferred=ingest.feeds_deferred,
            entries_seen=ingest.entries_seen,
            articles_new=ingest.articles_new,
            articles_updated=ingest.articles_updated,
            duplicates=ingest.duplicates,
            classified=classify.classified,
            flagged=classify.flagged,
            model_version=classify.model_version,
            alerts_new=alerts.alerts_new,
            alerts_sent=delivery.sent,
            alerts_retried=delivery.retried,
            alerts_failed=delivery.failed,
            alerts_pending=delivery.pending,
            notices_new=health.notices_new,
            errors=ingest.errors,
            stories_new=alerts.stories_new,
            alerts_updates=alerts.updates_new,
            digests_new=digests.digests_new if digests is not None else alerts.digests_new,
            webhooks_sent=delivery.webhook_sent,
            notices_emailed=health.notices_emailed,
        )
