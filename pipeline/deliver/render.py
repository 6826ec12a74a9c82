"""Alert rendering: subject, plain text and HTML from an :class:`AlertView` or a :class:`DigestView`
(pure; Jinja2 templates in ``pipeline/deliver/templates``).

Feed text is hostile input. Every value is autoescaped in HTML; links are kept only when they are
absolute http(s) URLs; the subject is one line with control characters removed. The HTML uses inline
CSS only: no remote images, scripts, forms or web fonts, and a single fluid column that reads on a
phone. Nothing here reads the clock: times come in with the views.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from pipeline.alerts.views import AlertView, DigestView
from pipeline.ingest.normalise import clean_text, safe_http_url

__all__ = [
    "RenderedMessage",
    "one_line",
    "regime_label",
    "render_alert",
    "render_digest",
    "subject_for",
]

SEVERITY_COLOURS = {"critical": "#8b0000", "high": "#c0392b", "medium": "#b9770e", "low": "#5d6d7e"}
SUBJECT_PREFIX = "[sanctions-watch]"


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    text: str
    html: str


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
    return env


def subject_for(view: AlertView) -> str:
    regime = regime_label(view.regime_keys or tuple(r.key for r in view.regimes))
    if view.kind == "update":
        was = f" (was {view.previous_severity.upper()})" if view.previous_severity else ""
        head = f"{SUBJECT_PREFIX} UPDATE {view.severity.upper()}{was}"
    else:
        head = f"{SUBJECT_PREFIX} {view.severity.upper()}"
    return one_line(f"{head} · {regime} · {view.title}", 200)


def render_alert(view: AlertView) -> RenderedMessage:
    context = {"a": view, "colour": SEVERITY_COLOURS.get(view.severity, "#5d6d7e")}
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
