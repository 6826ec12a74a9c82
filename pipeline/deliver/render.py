"""Message rendering: subject, plain text and HTML from an :class:`AlertView`, a :class:`DigestView`
or a list of operator notices (pure; Jinja2 templates in ``pipeline/deliver/templates``).

Feed text is hostile input. Every value is autoescaped in HTML; links are kept only when they are
absolute http(s) URLs; the subject is one line with control characters removed. The HTML uses inline
CSS only: no remote images, scripts, forms or web fonts, and a single fluid column that reads on a
phone. Nothing here reads the clock: times come in with the views, and the sending time
(``sent_at``) is passed in by the outbox, which renders each message when it sends it: the latency an
alert shows ("Published 3 h 10 min before this alert was sent; first seen by us 4 min before") is the
one the outbox records on the delivery (:func:`latency_for`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from pipeline.alerts.allegation import Allegation
from pipeline.alerts.views import AlertView, DigestView
from pipeline.ingest.normalise import clean_text, safe_http_url
from pipeline.knowledge.breaches import kind_label

__all__ = [
    "Latency",
    "NoticeItem",
    "RenderedMessage",
    "duration_text",
    "facts_line",
    "kind_phrase",
    "language_name",
    "latency_for",
    "one_line",
    "regime_label",
    "render_alert",
    "render_digest",
    "render_notices",
    "subject_for",
]

SEVERITY_COLOURS = {"critical": "#8b0000", "high": "#c0392b", "medium": "#b9770e", "low": "#5d6d7e"}
SUBJECT_PREFIX = "[sanctions-watch]"


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class NoticeItem:
    """One operator notice as the operator email shows it."""

    kind: str
    created_at: datetime
    message: str


@dataclass(frozen=True, slots=True)
class Latency:
    """How long after publication and after our first sight a message about a story was sent.

    ``sent_at`` is the delivery run's time, the one stamped in the message's ``Date`` header and in
    ``deliveries.sent_at`` (the SMTP or HTTP exchange itself follows within seconds).
    ``from_published`` is ``None`` when the feed gave no publication time; it is negative when the
    feed's publication time is after the sending (a feed clock or time zone that is off)."""

    sent_at: datetime
    from_published: timedelta | None
    from_first_seen: timedelta

    @property
    def published_seconds(self) -> int | None:
        return None if self.from_published is None else int(self.from_published.total_seconds())

    @property
    def first_seen_seconds(self) -> int:
        return int(self.from_first_seen.total_seconds())

    def text(self, what: str = "this alert") -> str:
        """``Published 3 h 10 min before this alert was sent; first seen by us 4 min before.``"""
        seen = f"first seen by us {duration_text(self.from_first_seen)} before"
        if self.from_published is None:
            return f"Publication time not given by the feed; {seen} {what} was sent."
        if self.from_published < timedelta(0):
            return (
                f"Published (by the feed's clock) {duration_text(-self.from_published)} after "
                f"{what} was sent; {seen}."
            )
        return f"Published {duration_text(self.from_published)} before {what} was sent; {seen}."


def duration_text(delta: timedelta) -> str:
    """``under 1 min``, ``4 min``, ``3 h 10 min``, ``2 d 5 h``, ``1215 d`` (rounded down)."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "under 1 min"
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days >= 30:
        return f"{days} d"
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def latency_for(view: AlertView, sent_at: datetime | None) -> Latency | None:
    """The latency of a message about ``view`` sent at ``sent_at`` (``None`` when not sending)."""
    if sent_at is None:
        return None
    published = sent_at - view.published_at if view.published_at is not None else None
    return Latency(sent_at, published, sent_at - view.first_seen_at)


def one_line(text: str, limit: int = 180) -> str:
    """A single header-safe line: no CR/LF or other control characters, bounded length."""
    return clean_text(" ".join(clean_text(text).split()), max_chars=limit)


def _fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def regime_label(keys: Sequence[str]) -> str:
    """``DPRK``, ``SOUTH SUDAN``, ``LIBYA + YEMEN``; ``UN SANCTIONS`` when no regime is known."""
    names = [k.upper().replace("_", " ") for k in keys[:2]]
    label = " + ".join(names) or "UN SANCTIONS"
    return label + (f" +{len(keys) - 2}" if len(keys) > 2 else "")


def _highlight(sentence: str, terms: Sequence[str]) -> Markup:
    """The sentence escaped, with the evidence terms it contains in bold (escaping first)."""
    wanted = sorted({t for t in terms if t and len(t) >= 3}, key=len, reverse=True)
    if not wanted:
        return escape(sentence)
    pattern = re.compile("|".join(re.escape(t) for t in wanted), re.IGNORECASE)
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(sentence):
        out.append(str(escape(sentence[pos : m.start()])))
        out.append(f"<b>{escape(m.group())}</b>")
        pos = m.end()
    out.append(str(escape(sentence[pos:])))
    return Markup("".join(out))  # noqa: S704 - built only from escaped pieces and literal <b> tags


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("pipeline.deliver", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_http_url
    env.filters["time"] = _fmt_time
    env.filters["one_line"] = one_line
    env.filters["highlight"] = _highlight
    env.globals["colours"] = SEVERITY_COLOURS
    env.globals["facts_line"] = facts_line
    env.globals["language_name"] = language_name
    env.globals["latency_for"] = latency_for
    return env


LANGUAGE_NAMES = {
    "en": "English",
    "fr": "French",
    "es": "Spanish",
    "ru": "Russian",
    "ar": "Arabic",
    "ko": "Korean",
    "zh": "Chinese",
    "de": "German",
    "pt": "Portuguese",
    "it": "Italian",
    "ja": "Japanese",
    "uk": "Ukrainian",
    "fa": "Persian",
}


def language_name(code: str | None) -> str:
    return LANGUAGE_NAMES.get((code or "").split("-")[0].lower(), code or "unknown language")


def _is_english(view: AlertView) -> bool:
    return (view.lang or "").split("-")[0].lower() == "en"


def kind_phrase(allegation: Allegation | None, limit: int = 3) -> str:
    """The alleged kinds in English: "arms transfer, panel or monitoring-team finding"; "not
    tagged" when no tagger was servable, "unclear" when it found none."""
    if allegation is None or allegation.kinds is None:
        return "not tagged"
    if not allegation.kinds:
        return "unclear"
    names = [kind_label(k) for k in allegation.kinds]
    return ", ".join(names[:limit]) + (f" +{len(names) - limit}" if len(names) > limit else "")


def _who(allegation: Allegation, limit: int = 5) -> str:
    listed = {a["name"] for a in allegation.actors if a.get("listed")}

    def name(n: str) -> str:
        return f"{n} (UN-listed)" if n in listed else n

    flows = [f"{name(a)} → {name(b)}" for a, b in allegation.flows][:limit]
    in_flows = {n for pair in allegation.flows for n in pair}
    others = [name(a["name"]) for a in allegation.actors if a["name"] not in in_flows]
    others = others[: max(0, limit - len(flows))]
    if flows and others:
        return "; ".join(flows) + "; also named: " + ", ".join(others)
    return "; ".join(flows) or ", ".join(others)


def _where(allegation: Allegation, limit: int = 4) -> str:
    routes = [f"{a} → {b}" for a, b in allegation.routes]
    in_routes = {n for pair in allegation.routes for n in pair}
    return ", ".join((routes + [p for p in allegation.places if p not in in_routes])[:limit])


def _date(view: AlertView) -> str:
    if view.allegation is not None and view.allegation.date:
        return view.allegation.date
    when = view.published_at or view.first_seen_at
    return when.date().isoformat() if when else "unknown"


def facts_line(view: AlertView) -> str:
    """One line in English, whatever the language of the story, built from what the pipeline
    extracted (never translated): kind(s), regime, who (with direction), where, date."""
    a = view.allegation
    regime = regime_label(view.regime_keys or tuple(r.key for r in view.regimes))
    parts = [f"Kind: {kind_phrase(a)}", f"Regime: {regime}"]
    if a is not None and (who := _who(a)):
        parts.append(f"Who: {who}")
    if a is not None and (where := _where(a)):
        parts.append(f"Where: {where}")
    parts.append(f"Date: {_date(view)}")
    return one_line(" · ".join(parts), 600)


def _gist(view: AlertView) -> str:
    """An English stand-in for a headline in another language: who, then where."""
    a = view.allegation
    if a is None:
        return ""
    who = "; ".join(f"{x} → {y}" for x, y in a.flows[:2]) or ", ".join(
        x["name"] for x in a.actors[:2]
    )
    return " · ".join(b for b in (who, _where(a, limit=1)) if b)


def subject_for(view: AlertView) -> str:
    """``[sanctions-watch] HIGH · DPRK · Arms transfer · <headline>``. The kind is left out when it
    was not tagged; a headline in another language is replaced by who and where, in English, and the
    language (the original headline is in the message)."""
    regime = regime_label(view.regime_keys or tuple(r.key for r in view.regimes))
    if view.kind == "update":
        was = f" (was {view.previous_severity.upper()})" if view.previous_severity else ""
        head = f"{SUBJECT_PREFIX} UPDATE {view.severity.upper()}{was}"
    else:
        head = f"{SUBJECT_PREFIX} {view.severity.upper()}"
    if view.late_days is not None:
        head = f"{head} LATE ({view.late_days:.0f} days old)"
    a = view.allegation
    kind = ""
    if a is not None and a.kinds:
        kind = " + ".join(kind_label(k) for k in a.kinds[:2])
        kind = f" · {kind[:1].upper()}{kind[1:]}"
    tail = view.title
    if not _is_english(view):
        gist = _gist(view)
        tail = (
            f"{gist} [{language_name(view.lang)}]"
            if gist
            else f"[{language_name(view.lang)}] {view.title}"
        )
    return one_line(f"{head} · {regime}{kind} · {tail}", 200)


def render_alert(view: AlertView, *, sent_at: datetime | None = None) -> RenderedMessage:
    """Subject, text and HTML of one alert; with ``sent_at`` (the outbox always gives it) the message
    says how long after publication and after first sight it was sent."""
    context = {
        "a": view,
        "colour": SEVERITY_COLOURS.get(view.severity, "#5d6d7e"),
        "latency": latency_for(view, sent_at),
    }
    text = _env().get_template("alert.txt.j2").render(**context)
    html = _env().get_template("alert.html.j2").render(**context)
    return RenderedMessage(subject=subject_for(view), text=text, html=html)


def render_digest(view: DigestView) -> RenderedMessage:
    n = view.count
    subject = one_line(
        f"{SUBJECT_PREFIX} Daily digest {view.day} · {n} stor{'y' if n == 1 else 'ies'} · "
        f"highest {view.highest.upper()}",
        200,
    )
    context = {"d": view}
    text = _env().get_template("digest.txt.j2").render(**context)
    html = _env().get_template("digest.html.j2").render(**context)
    return RenderedMessage(subject=subject, text=text, html=html)


def render_notices(notices: Sequence[NoticeItem]) -> RenderedMessage:
    """One operator email listing every notice (autoescaped like alerts: notice texts quote
    servers' replies)."""
    n = len(notices)
    subject = f"{SUBJECT_PREFIX} operator notice: {n} problem{'s' if n != 1 else ''} need attention"
    context = {"notices": notices, "n": n}
    text = _env().get_template("notice.txt.j2").render(**context)
    html = _env().get_template("notice.html.j2").render(**context)
    return RenderedMessage(subject=subject, text=text, html=html)
