"""Alert rendering: subject, plain text and HTML from an :class:`AlertView` (pure; Jinja2 templates).

Feed text is hostile input. Every value is autoescaped in HTML; links are kept only when they are
absolute http(s) URLs; the subject is one line with control characters removed. The HTML uses inline
CSS only: no remote images, scripts, forms or web fonts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from pipeline.normalise import clean_text, safe_http_url

__all__ = ["AlertView", "RegimeView", "RenderedMessage", "SourceView", "one_line", "render_alert"]

SEVERITY_COLOURS = {"critical": "#8b0000", "high": "#c0392b", "medium": "#d68910", "low": "#5d6d7e"}


@dataclass(frozen=True, slots=True)
class SourceView:
    name: str
    url: str | None
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class RegimeView:
    key: str
    name: str
    committee: str
    url: str
    resolutions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class AlertView:
    alert_id: int
    title: str
    summary: str
    url: str | None
    lang: str
    first_seen_at: datetime
    published_at: datetime | None
    score: float
    threshold: float
    model_version: str
    severity: str
    severity_reason: str
    sources: tuple[SourceView, ...] = ()
    evidence_sentences: tuple[str, ...] = ()
    evidence_terms: tuple[str, ...] = ()
    regimes: tuple[RegimeView, ...] = ()
    designated: tuple[str, ...] = ()
    feedback: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


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


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("pipeline", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["safe_url"] = safe_http_url
    env.filters["time"] = _fmt_time
    env.filters["one_line"] = one_line
    return env


def render_alert(view: AlertView) -> RenderedMessage:
    regime = view.regimes[0].key.upper().replace("_", " ") if view.regimes else "UN SANCTIONS"
    subject = one_line(f"[sanctions-watch] {view.severity.upper()} · {regime} · {view.title}", 200)
    context = {"a": view, "colour": SEVERITY_COLOURS.get(view.severity, "#5d6d7e")}
    text = _env().get_template("alert.txt.j2").render(**context)
    html = _env().get_template("alert.html.j2").render(**context)
    return RenderedMessage(subject=subject, text=text, html=html)
