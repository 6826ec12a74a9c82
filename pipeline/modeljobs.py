"""The model DAGs' jobs (``retrain``, ``rescore``; dags/sanctions_watch_models.py): orchestration only.

* :func:`retrain_job` reads the analysts' labels and their conflicts (pipeline/review/), hands them
  to :func:`pipeline.training.retrain.retrain` and emails the analysts (``alerts.feedback_address``)
  the side-by-side comparison through the mail path (:mod:`pipeline.deliver.mail`, one
  deterministic Message-ID per challenger and recipient, so a re-sent mail can be collapsed). A mail
  that cannot be sent is logged and counted; it never undoes a promotion. A dry run mails nothing.
* :func:`rescore_job` re-scores the window with the active model
  (:func:`pipeline.classify.rescore.rescore_articles`), then runs the normal alert stages
  (:func:`pipeline.jobs.record_alerts`, :func:`pipeline.jobs.deliver`): only stories that became
  flagged are alerted, each once.

Like :mod:`pipeline.jobs` (which another team owns), each takes ``now`` from the caller and returns
counts and ids, never texts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.deliver.mail import MailSender

__all__ = ["data_paths", "rescore_job", "rescore_window", "retrain_job"]

log = logging.getLogger(__name__)


def data_paths(
    config: Config,
    corpus: Sequence[str] | None = None,
    test: str | None = None,
    baseline: str | None = None,
) -> tuple[list[Path], Path, Path]:
    """The corpus files or folders, the frozen split and the gate's baseline: given, else under
    ``base_dir`` (``data/corpus``, ``data/test``, ``data/test/baseline.json``)."""
    base = config.base_dir

    def resolve(raw: str) -> Path:
        p = Path(raw).expanduser()
        return p if p.is_absolute() else base / p

    corpus_paths = [resolve(c) for c in corpus] if corpus else [base / "data" / "corpus"]
    test_path = resolve(test) if test else base / "data" / "test"
    baseline_path = resolve(baseline) if baseline else base / "data" / "test" / "baseline.json"
    return corpus_paths, test_path, baseline_path


def retrain_job(
    config: Config,
    *,
    now: datetime,
    settings: Any,
    corpus: Sequence[str] | None = None,
    test: str | None = None,
    baseline: str | None = None,
    sender: MailSender | None = None,
) -> dict[str, Any]:
    """One retraining run (see the module docstring); returns the report's XCom form plus
    ``mailed``, the number of analysts' mails sent."""
    from pipeline.jobs import Runtime
    from pipeline.review.labels import export_labels
    from pipeline.review.quality import label_quality
    from pipeline.training.retrain import retrain

    corpus_paths, test_path, baseline_path = data_paths(config, corpus, test, baseline)
    with Runtime.open(config, migrate=False) as rt, rt.sessions() as session:
        labels = export_labels(session)
        conflicts = label_quality(session).conflicts
    report = retrain(
        config.model_dir,
        corpus_paths=corpus_paths,
        test_path=test_path,
        baseline_path=baseline_path,
        labels=labels,
        conflicts=conflicts,
        now=now,
        settings=settings,
        repo_root=config.base_dir,
    )
    mailed = 0 if report.dry_run else _mail_analysts(config, report, now=now, sender=sender)
    return {**report.as_xcom(), "mailed": mailed}


def _mail_analysts(config: Config, report: Any, *, now: datetime, sender: MailSender | None) -> int:
    from pipeline.alerts.ids import message_id_for
    from pipeline.deliver.mail import SmtpSender, build_message
    from pipeline.deliver.render import RenderedMessage
    from pipeline.errors import DeliveryError
    from pipeline.training.retrain import comparison_message

    to = config.alerts.feedback_address
    if not to:
        log.warning("retrain: no alerts.feedback_address, so the analysts are not emailed")
        return 0
    subject, text, html = comparison_message(report)
    message = build_message(
        RenderedMessage(subject, text, html),
        sender=config.smtp.sender,
        recipient=to,
        message_id=message_id_for(f"retrain.{report.challenger}", to, config.smtp.sender),
        date=now,
        reply_to=config.smtp.reply_to,
    )
    mail = sender or SmtpSender(config.smtp)
    try:
        mail.send(message, to)
    except DeliveryError as err:
        log.error("retrain: the comparison mail to %s was not sent: %s", to, err)
        return 0
    finally:
        mail.close()
    return 1


def rescore_window(
    now: datetime,
    *,
    days: float | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[datetime, datetime]:
    """``[since, until)``: the given dates, else the last ``days`` (7 when nothing is given)."""
    end = until or now
    start = since or end - timedelta(days=days if days is not None else 7.0)
    if start >= end:
        raise ValueError(f"rescore window is empty: since {start} is not before until {end}")
    return start, end


def rescore_job(
    config: Config,
    *,
    now: datetime,
    days: float | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sender: MailSender | None = None,
) -> dict[str, Any]:
    """Re-score the window with the active model, then record and deliver the alerts of stories
    that became flagged. Returns counts (and the ids of stories that dropped out)."""
    from pipeline.classify.rescore import rescore_articles
    from pipeline.jobs import Runtime, deliver, record_alerts

    start, end = rescore_window(now, days=days, since=since, until=until)
    with Runtime.open(config, migrate=False) as rt:
        report = rescore_articles(
            rt.sessions,
            rt.model,
            rt.regimes,
            since=start,
            until=end,
            now=now,
            max_text_chars=config.classify.max_text_chars,
            batch=config.classify.batch_size,
        )
        alerts = record_alerts(rt, now=now)
        sent = deliver(rt, now=now, sender=sender)
    return {
        **report.as_dict(),
        "alerts_new": alerts.alerts_new,
        "alert_ids": list(alerts.alert_ids),
        "delivered": sent.as_dict(),
    }
