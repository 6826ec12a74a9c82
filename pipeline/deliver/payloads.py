"""The webhook channel's payloads: the JSON bodies for Slack, Microsoft Teams or our own format.

**Formats** (``format:`` of a webhook subscription; ``auto`` picks by the URL's host):

* ``slack`` — ``{"text": ..., "blocks": [...]}`` for Slack incoming webhooks (and the many chat tools
  that accept Slack's format). ``auto`` for ``hooks.slack.com`` and any host not listed below. Feed
  text is escaped for Slack's mrkdwn (``&``, ``<``, ``>``), so it cannot form links or mentions; links
  are ``<url|text>`` built only from absolute http(s) URLs, with ``|``, ``<``, ``>`` percent-encoded.
* ``teams`` — ``{"type": "message", "attachments": [Adaptive Card 1.4]}``, what Teams Workflows
  ("Post to a channel when a webhook request is received") and the older connector URLs accept.
  ``auto`` for ``*.webhook.office.com``, ``*.logic.azure.com``, ``*.powerplatform.com`` and
  ``*.powerautomate.com``. Feed text goes only into ``RichTextBlock`` text runs, which Adaptive Cards
  render literally (no markdown), and links only into ``Action.OpenUrl`` with http(s) URLs.
* ``json`` — the alert's fields as data (``"type": "sanctions-watch.alert"`` or ``...digest``) for a
  receiver of your own; text is raw: the receiver must escape it.

**Content**: every format carries, for each alert and each digest entry, the English facts line
(kind, regime, who with direction, where, date: :func:`pipeline.deliver.render.facts_line`) and the
breach kinds (``json``: ``facts`` and ``allegation`` with the kind keys and labels), and the latency
from publication and from first sight to sending (``json``: ``latency``), computed at the sending time
the outbox passes in (the same that it records on the delivery).

Sending them is :mod:`pipeline.deliver.webhook`, which re-exports this module's public names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pipeline.alerts.views import AlertView, DigestView
from pipeline.deliver.render import (
    SUBJECT_PREFIX,
    Latency,
    facts_line,
    kind_phrase,
    language_name,
    latency_for,
    one_line,
    regime_label,
    subject_for,
)
from pipeline.ingest.normalise import safe_http_url
from pipeline.knowledge.breaches import kind_label

__all__ = [
    "SLACK_HOSTS",
    "TEAMS_HOST_SUFFIXES",
    "choose_format",
    "digest_payload",
    "payload_for",
]

TEAMS_HOST_SUFFIXES = (
    ".webhook.office.com",
    ".logic.azure.com",
    ".powerplatform.com",
    ".powerautomate.com",
)
SLACK_HOSTS = ("hooks.slack.com",)


def choose_format(url: str, configured: str = "auto") -> str:
    if configured != "auto":
        return configured
    host = (urlsplit(url).hostname or "").lower()
    if host.endswith(TEAMS_HOST_SUFFIXES):
        return "teams"
    return "slack"


def _mrkdwn(text: str) -> str:
    """Slack mrkdwn escaping: the three characters Slack requires; nothing else is interpreted."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str | None, label: str) -> str:
    safe = safe_http_url(url)
    if safe is None:
        return _mrkdwn(label)
    href = safe.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{href}|{_mrkdwn(label)}>"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def _slack_alert(view: AlertView, latency: Latency | None) -> dict[str, Any]:
    regime = regime_label(view.regime_keys or tuple(r.key for r in view.regimes))
    header = f"{view.severity.upper()} · {regime}"
    if view.kind == "update":
        was = f" (was {view.previous_severity.upper()})" if view.previous_severity else ""
        header = f"UPDATE {view.severity.upper()}{was} · {regime}"
    evidence = "\n".join(f"> {_mrkdwn(one_line(s, 400))}" for s in view.evidence_sentences[:3])
    facts = (
        f"*Score* {view.score:.2f} (threshold {view.threshold:.2f}) · *model* {_mrkdwn(view.model_version)}"
        f" · {view.independent_sources} independent source(s)\n"
        f"*Severity {view.severity.upper()}:* {_mrkdwn(view.severity_reason)}"
    )
    if latency is not None:
        facts += f"\n{_mrkdwn(latency.text())}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(header, 150)}},
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(f"*What is alleged:* {_mrkdwn(facts_line(view))}", 3000),
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(
                    f"{_original(view)}*{_slack_link(view.url, one_line(view.title, 300))}*\n{facts}",
                    3000,
                ),
            },
        },
    ]
    if evidence:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _cut(evidence, 3000)}})
    if view.designated:
        names = "; ".join(_mrkdwn(n) for n in view.designated)
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut(f"*UN-designated:* {names}", 3000)},
            }
        )
    if view.regimes:
        lines = [
            f"{_slack_link(r.url, r.committee)} (resolutions {', '.join(map(str, r.resolutions))})"
            for r in view.regimes
        ]
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut("\n".join(lines), 3000)}}
        )
    sources = [
        f"• {_slack_link(s.url, one_line(s.name, 100))} · {_time(s.published_at)}"
        for s in view.sources[:20]
    ]
    if sources:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut("*Sources*\n" + "\n".join(sources), 3000)},
            }
        )
    feedback = view.feedback or f'reply with "useful" or "not relevant" and alert {view.alert_id}'
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _cut(
                        f"Alert {view.alert_id} · story {view.story_id} · feedback: {_mrkdwn(feedback)}"
                        " · a flag is a lead for review, not a finding of a violation",
                        3000,
                    ),
                }
            ],
        }
    )
    return {"text": _mrkdwn(subject_for(view)), "blocks": blocks}


def _foreign(view: AlertView) -> bool:
    return (view.lang or "en").split("-")[0].lower() != "en"


def _original(view: AlertView) -> str:
    """``Original headline (Korean): `` before a headline in another language (Slack)."""
    return f"_Original headline ({language_name(view.lang)}):_ " if _foreign(view) else ""


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def _rich(*runs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **extra}


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "msteams": {"width": "Full"},
                    "body": body,
                    "actions": actions[:5],
                },
            }
        ],
    }


def _open(title: str, url: str | None) -> list[dict[str, Any]]:
    safe = safe_http_url(url)
    return [{"type": "Action.OpenUrl", "title": title, "url": safe}] if safe else []


_TEAMS_COLOURS = {
    "critical": "Attention",
    "high": "Attention",
    "medium": "Warning",
    "low": "Default",
}


def _teams_alert(view: AlertView, latency: Latency | None) -> dict[str, Any]:
    regime = regime_label(view.regime_keys or tuple(r.key for r in view.regimes))
    banner = f"{view.severity.upper()} · {regime}"
    if view.kind == "update":
        was = f" (was {view.previous_severity.upper()})" if view.previous_severity else ""
        banner = f"UPDATE {view.severity.upper()}{was} · {regime}"
    colour = _TEAMS_COLOURS.get(view.severity, "Default")
    body: list[dict[str, Any]] = [
        _rich(_run(banner, weight="Bolder", color=colour)),
        _rich(_run("What is alleged: ", weight="Bolder"), _run(facts_line(view))),
    ]
    if _foreign(view):
        body.append(_rich(_run(f"Original headline ({language_name(view.lang)}):", isSubtle=True)))
    body += [
        _rich(_run(one_line(view.title, 300), size="Medium", weight="Bolder")),
        _rich(
            _run(
                f"Score {view.score:.2f} (threshold {view.threshold:.2f}) · model "
                f"{view.model_version} · {view.independent_sources} independent source(s)",
                isSubtle=True,
            )
        ),
        _rich(
            _run(f"Severity {view.severity.upper()}: ", weight="Bolder"), _run(view.severity_reason)
        ),
    ]
    if latency is not None:
        body.append(_rich(_run(latency.text(), isSubtle=True)))
    for sentence in view.evidence_sentences[:3]:
        body.append(_rich(_run("» "), _run(one_line(sentence, 400), italic=True)))
    if view.designated:
        body.append(
            _rich(_run("UN-designated: ", weight="Bolder"), _run("; ".join(view.designated)))
        )
    for r in view.regimes:
        body.append(_rich(_run(f"{r.name} — resolutions {', '.join(map(str, r.resolutions))}")))
    for s in view.sources[:20]:
        body.append(
            _rich(_run(f"• {one_line(s.name, 100)} · {_time(s.published_at)}", isSubtle=True))
        )
    feedback = view.feedback or f'reply with "useful" or "not relevant" and alert {view.alert_id}'
    body.append(
        _rich(
            _run(
                f"Alert {view.alert_id} · story {view.story_id} · feedback: {feedback}. "
                "A flag is a lead for review, not a finding of a violation.",
                isSubtle=True,
                size="Small",
            )
        )
    )
    actions = _open("Open the article", view.url)
    for r in view.regimes[:2]:
        actions += _open(f"{r.key.upper()} committee", r.url)
    return _card(body, actions)


def _allegation_dict(view: AlertView) -> dict[str, Any] | None:
    a = view.allegation
    if a is None:
        return None
    data = a.as_dict()
    data["kind_labels"] = [kind_label(k) for k in a.kinds] if a.kinds is not None else None
    return data


def _latency_dict(latency: Latency | None) -> dict[str, Any] | None:
    if latency is None:
        return None
    return {
        "sent_at": latency.sent_at.isoformat(),
        "from_published_seconds": latency.published_seconds,
        "from_first_seen_seconds": latency.first_seen_seconds,
        "text": latency.text(),
    }


def _alert_dict(view: AlertView, latency: Latency | None) -> dict[str, Any]:
    return {
        "alert_id": view.alert_id,
        "story_id": view.story_id,
        "kind": view.kind,
        "severity": view.severity,
        "previous_severity": view.previous_severity,
        "severity_reason": view.severity_reason,
        "rule": view.rule,
        "title": view.title,
        "url": safe_http_url(view.url),
        "summary": view.summary,
        "language": view.lang,
        "facts": facts_line(view),
        "breach_kinds": kind_phrase(view.allegation),
        "allegation": _allegation_dict(view),
        "first_seen_at": view.first_seen_at.isoformat(),
        "published_at": view.published_at.isoformat() if view.published_at else None,
        "latency": _latency_dict(latency),
        "score": round(view.score, 4),
        "threshold": round(view.threshold, 4),
        "model_version": view.model_version,
        "independent_sources": view.independent_sources,
        "evidence": {
            "sentences": list(view.evidence_sentences),
            "terms": list(view.evidence_terms),
        },
        "designated": list(view.designated),
        "regimes": [
            {
                "key": r.key,
                "name": r.name,
                "resolutions": list(r.resolutions),
                "committee": r.committee,
                "url": safe_http_url(r.url),
            }
            for r in view.regimes
        ],
        "sources": [
            {
                "name": s.name,
                "url": safe_http_url(s.url),
                "title": s.title,
                "language": s.lang,
                "published_at": s.published_at.isoformat() if s.published_at else None,
                "seen_at": s.seen_at.isoformat() if s.seen_at else None,
            }
            for s in view.sources
        ],
        "feedback": view.feedback,
    }


def payload_for(view: AlertView, fmt: str, *, sent_at: datetime | None = None) -> dict[str, Any]:
    """The JSON body for one alert in ``fmt`` (slack, teams or json); with ``sent_at`` (the outbox
    always gives it) it carries the latency from publication and first sight to sending."""
    latency = latency_for(view, sent_at)
    if fmt == "teams":
        return _teams_alert(view, latency)
    if fmt == "json":
        return {"type": "sanctions-watch.alert", "version": 1, **_alert_dict(view, latency)}
    return _slack_alert(view, latency)


def _digest_latency(alert: AlertView, digest: DigestView) -> str:
    latency = latency_for(alert, digest.generated_at)
    return latency.text("this digest") if latency is not None else ""


def digest_payload(view: DigestView, fmt: str) -> dict[str, Any]:
    """The JSON body for one daily digest in ``fmt``."""
    n = view.count
    title = f"Daily digest {view.day} · {n} stor{'y' if n == 1 else 'ies'} · highest {view.highest.upper()}"
    if fmt == "json":
        return {
            "type": "sanctions-watch.digest",
            "version": 1,
            "day": view.day,
            "count": n,
            "highest": view.highest,
            "groups": [
                {
                    "regime": g.regime.key if g.regime else None,
                    "label": g.label,
                    "alerts": [_alert_dict(a, latency_for(a, view.generated_at)) for a in g.alerts],
                }
                for g in view.groups
            ],
            "feedback": view.feedback,
        }
    if fmt == "teams":
        body: list[dict[str, Any]] = [_rich(_run(title, weight="Bolder", size="Medium"))]
        for g in view.groups:
            body.append(_rich(_run(g.label, weight="Bolder"), separator=True))
            for a in g.alerts:
                body.append(
                    _rich(
                        _run(f"{a.severity.upper()} ", weight="Bolder"),
                        _run(
                            f"{one_line(a.title, 200)} · score {a.score:.2f} · alert {a.alert_id}"
                        ),
                    )
                )
                body.append(_rich(_run("What is alleged: ", weight="Bolder"), _run(facts_line(a))))
                body.append(_rich(_run(_digest_latency(a, view), isSubtle=True)))
        return _card(body, [])
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, 150)}}
    ]
    for g in view.groups:
        lines = [
            f"• *{a.severity.upper()}* {_original(a)}{_slack_link(a.url, one_line(a.title, 200))}"
            f" · score {a.score:.2f} · alert {a.alert_id}\n"
            f"    _What is alleged:_ {_mrkdwn(facts_line(a))}\n"
            f"    {_mrkdwn(_digest_latency(a, view))}"
            for a in g.alerts
        ]
        # Slack caps a section at 3,000 characters: a long group continues in further sections,
        # each entry whole (only an entry longer than a section on its own is cut).
        text = f"*{_mrkdwn(g.label)}*"
        for line in lines:
            if len(text) + 1 + len(line) > 3000:
                blocks.append(_section(text))
                text = ""
            text = f"{text}\n{line}" if text else line
        blocks.append(_section(text))
    return {"text": _mrkdwn(f"{SUBJECT_PREFIX} {title}"), "blocks": blocks[:50]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, 3000)}}
