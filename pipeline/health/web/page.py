"""The operator page as text: the :class:`~pipeline.health.overview.Overview` rendered to HTML (Jinja2,
autoescaped: feed ids, error texts from servers and regime keys reach the page as text only) and to
plain JSON types (the page's ``api/overview`` variant).

Pure functions of the overview: no database, no clock, no Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from pipeline.health.overview import Overview

__all__ = ["overview_json", "render_overview"]

# Outbox statuses in the order the page shows them (others, if any, after these).
STATUSES = ("pending", "sending", "sent", "failed")


def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "never"


def _hours(value: float | None) -> str:
    return "–" if value is None else f"{value:g} h"


def overview_json(view: Overview) -> dict[str, Any]:
    """The overview as plain JSON types (datetimes as ISO 8601 strings)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    lat = view.latency
    return {
        "generated_at": iso(view.generated_at),
        "days": view.days,
        "model_version": view.model_version,
        "feeds": [
            {
                "feed_id": f.feed_id,
                "last_ok_at": iso(f.last_ok_at),
                "last_new_at": iso(f.last_new_at),
                "consecutive_failures": f.consecutive_failures,
                "last_entries": f.last_entries,
                "alarm": f.alarm,
                "alarm_since": iso(f.alarm_since),
                "last_error": f.last_error,
            }
            for f in view.feeds
        ],
        "alerts_by_day_regime": view.alerts_by_day_regime,
        "outbox": view.outbox,
        "failed": [
            {"delivery_id": i, "channel": channel, "error": error}
            for i, channel, error in view.failed
        ],
        "latency": {
            "sent": lat.sent,
            "from_published_median_h": lat.from_published_median_h,
            "from_published_p90_h": lat.from_published_p90_h,
            "from_first_seen_median_h": lat.from_first_seen_median_h,
            "from_first_seen_p90_h": lat.from_first_seen_p90_h,
        },
    }


def render_overview(
    view: Overview,
    *,
    feed_names: Mapping[str, str] | None = None,
    user: str | None = None,
    json_href: str = "api/overview",
) -> str:
    """The operator page's HTML for ``view``. ``feed_names`` maps feed ids to the feeds file's names;
    ``user`` is who is looking (shown in the header); ``json_href`` links the JSON variant."""
    regimes = sorted({r for day in view.alerts_by_day_regime.values() for r in day})
    statuses = [s for s in STATUSES if s in view.outbox] + sorted(
        s for s in view.outbox if s not in STATUSES
    )
    return (
        _env()
        .get_template("overview.html.j2")
        .render(
            view=view,
            names=feed_names or {},
            regimes=regimes,
            statuses=statuses,
            in_alarm=sum(f.alarm is not None for f in view.feeds),
            alerts_total=sum(sum(d.values()) for d in view.alerts_by_day_regime.values()),
            user=user,
            json_href=json_href,
            when=_when,
            hours=_hours,
        )
    )
