"""The feeds file and the subscriptions file: each feed and subscription validated into its record
(ids, URLs under the address policy, full-text modes, webhook targets, filters)."""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.config.reader import Reader, check_url, read_yaml
from pipeline.config.records import (
    EMAIL_RE,
    FULL_TEXT_MODES,
    ID_RE,
    SEVERITIES,
    FeedConfig,
    Subscription,
)
from pipeline.knowledge.breaches import BREACH_KINDS
from pipeline.net.policy import AllowList, blocked_reason, is_ip_literal, normalize_host

log = logging.getLogger(__name__)


# A feed's entries are stored in one statement that binds each entry's key and hash: 10,000 entries stay
# well inside stock SQLite's 32,766 bound parameters (and PostgreSQL's 65,535).
MAX_ITEMS_PER_FEED = 10_000


def load_feeds(path: Path) -> tuple[FeedConfig, ...]:
    root = Reader(path, read_yaml(path))
    root.check_keys({"feeds", "defaults"})
    defaults = root.get("defaults", dict, {})
    items = root.get("feeds", list, required=True)
    feeds: list[FeedConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise root.fail(f"feeds[{i}]", "must be a mapping")
        r = Reader(path, {**defaults, **item}, f"feeds[{i}].")
        r.check_keys(
            {
                "id",
                "name",
                "url",
                "language",
                "tags",
                "enabled",
                "min_items",
                "max_items",
                "max_silence_hours",
                "full_text",
                "note",
            }
        )
        feed_id = r.get("id", str, required=True)
        if not ID_RE.match(feed_id):
            raise r.fail("id", f"must be a lowercase slug (a-z 0-9 _ . -), got {feed_id!r}")
        if feed_id in seen:
            raise r.fail("id", f"duplicate feed id {feed_id!r}")
        seen.add(feed_id)
        feeds.append(
            FeedConfig(
                id=feed_id,
                name=r.get("name", str, feed_id),
                url=check_url(r, "url", r.get("url", str, required=True)),
                language=r.get("language", str),
                tags=r.strings("tags"),
                enabled=r.get("enabled", bool, True),
                min_items=r.integer("min_items", 0, low=0, high=10_000),
                max_items=r.integer("max_items", 500, low=1, high=MAX_ITEMS_PER_FEED),
                max_silence_hours=r.number("max_silence_hours", 72.0, low=0.0, high=24 * 365.0),
                full_text=full_text_mode(r, feed_id),
            )
        )
    return tuple(feeds)


def full_text_mode(r: Reader, feed_id: str) -> Any:
    """A feed's ``full_text`` (from the feed or the file's ``defaults``); errors name the feed."""
    value = r.data.get("full_text")
    r.asked.add("full_text")
    if value is None:
        return "auto"
    if value not in FULL_TEXT_MODES:
        hint = " (YAML reads yes/no/on/off as booleans)" if isinstance(value, bool) else ""
        raise r.fail(
            "full_text",
            f"feed {feed_id!r}: must be one of {', '.join(FULL_TEXT_MODES)}, got {value!r}{hint}",
        )
    return value


WEBHOOK_FORMATS = ("auto", "slack", "teams", "json")
LANG_RE = re.compile(r"^[a-z]{2,3}$")


def check_webhook(reader: Reader, url: str, allow_hosts: Iterable[str]) -> str:
    """A webhook URL: https, or http for an allow-listed host; never a refused IP literal."""
    check_url(reader, "recipients", url)
    parts = urlsplit(url)
    host = normalize_host(parts.hostname or "")
    allow = AllowList.from_entries(allow_hosts)
    listed = allow.allows_host(host) or (
        is_ip_literal(host) and allow.allows_address(ipaddress.ip_address(host))
    )
    if parts.scheme != "https" and not listed:
        raise reader.fail(
            "recipients",
            f"webhook {parts.scheme}://{host}/… must use https (http only for hosts in "
            "fetch.allow_hosts)",
        )
    if parts.username or parts.password:
        raise reader.fail("recipients", f"webhook https://{host}/… must not embed credentials")
    if is_ip_literal(host) and not listed:
        reason = blocked_reason(host)
        if reason is not None:
            raise reader.fail(
                "recipients",
                f"webhook host {host} is a {reason} (allow-list it in fetch.allow_hosts)",
            )
    return url


def load_subscriptions(
    path: Path,
    *,
    feed_ids: frozenset[str] | None = None,
    regime_keys: frozenset[str] | None = None,
    allow_hosts: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> tuple[Subscription, ...]:
    """Read and validate subscriptions; unknown regimes or feed ids are refused when known.

    A webhook recipient may be written ``${SANCTIONS_WATCH_WEBHOOK_<NAME>}``: the URL (a secret: Slack and Teams
    put the token in it) is then read from that environment variable.
    """
    env = os.environ if environ is None else environ
    if not path.exists():
        return ()
    root = Reader(path, read_yaml(path))
    root.check_keys({"subscriptions"})
    subs: list[Subscription] = []
    seen: set[str] = set()
    for i, item in enumerate(root.get("subscriptions", list, [])):
        if not isinstance(item, Mapping):
            raise root.fail(f"subscriptions[{i}]", "must be a mapping")
        r = Reader(path, item, f"subscriptions[{i}].")
        r.check_keys(
            {
                "id",
                "recipients",
                "channel",
                "mode",
                "regimes",
                "min_severity",
                "min_score",
                "keywords",
                "sources",
                "languages",
                "kinds",
                "digest_hour_utc",
                "format",
                "note",
            }
        )
        sub_id = r.get("id", str, required=True)
        if not ID_RE.match(sub_id) or sub_id in seen:
            raise r.fail("id", f"must be a unique lowercase slug, got {sub_id!r}")
        seen.add(sub_id)
        channel = r.choice("channel", ("email", "webhook"), "email")
        recipients = r.strings("recipients")
        if channel == "webhook":
            recipients = tuple(from_env(r, x, env) for x in recipients)
        if not recipients:
            raise r.fail("recipients", "must list at least one recipient")
        if len({x.lower() for x in recipients}) != len(recipients):
            raise r.fail("recipients", "lists the same recipient twice")
        for rcpt in recipients:
            if channel == "email" and not EMAIL_RE.match(rcpt):
                raise r.fail("recipients", f"{rcpt!r} is not an email address")
            if channel == "webhook":
                check_webhook(r, rcpt, allow_hosts)
        fmt = r.choice("format", WEBHOOK_FORMATS, "auto")
        if channel != "webhook" and "format" in item:
            raise r.fail("format", "applies to webhook subscriptions only")
        regimes = r.strings("regimes")
        unknown = [x for x in regimes if regime_keys is not None and x not in regime_keys]
        if unknown:
            raise r.fail(
                "regimes",
                f"unknown regime {unknown[0]!r} (known: {', '.join(sorted(regime_keys or ()))})",
            )
        sources = r.strings("sources")
        unknown = [x for x in sources if feed_ids is not None and x not in feed_ids]
        if unknown:
            raise r.fail("sources", f"unknown feed id {unknown[0]!r} (not in the feeds file)")
        languages = tuple(x.lower() for x in r.strings("languages"))
        bad = [x for x in languages if not LANG_RE.match(x)]
        if bad:
            raise r.fail("languages", f"{bad[0]!r} is not an ISO 639 language code such as 'en'")
        kinds = tuple(x.lower() for x in r.strings("kinds"))
        unknown = [x for x in kinds if x not in BREACH_KINDS]
        if unknown:
            raise r.fail(
                "kinds", f"unknown breach kind {unknown[0]!r} (known: {', '.join(BREACH_KINDS)})"
            )
        subs.append(
            Subscription(
                id=sub_id,
                recipients=recipients,
                channel=channel,  # type: ignore[arg-type]
                mode=r.choice("mode", ("immediate", "digest"), "immediate"),  # type: ignore[arg-type]
                regimes=regimes,
                min_severity=r.choice("min_severity", SEVERITIES, "low"),
                min_score=r.number("min_score", 0.0, low=0.0, high=1.0),
                keywords=tuple(k.lower() for k in r.strings("keywords")),
                sources=sources,
                languages=languages,
                kinds=kinds,
                digest_hour_utc=r.integer("digest_hour_utc", 7, low=0, high=23),
                format=fmt,  # type: ignore[arg-type]
            )
        )
    return tuple(subs)


ENV_REF = re.compile(r"^\$\{(SANCTIONS_WATCH_WEBHOOK_[A-Z0-9_]+)\}$")


def from_env(reader: Reader, value: str, env: Mapping[str, str]) -> str:
    m = ENV_REF.match(value)
    if m is None:
        return value
    resolved = env.get(m.group(1), "").strip()
    if not resolved:
        raise reader.fail("recipients", f"environment variable {m.group(1)} is not set")
    return resolved


def regime_keys(path: Path) -> frozenset[str] | None:
    """The regime keys of ``regimes.yaml`` (None when the file is absent: nothing to check)."""
    if not path.exists():
        return None
    data = read_yaml(path)
    regimes = data.get("regimes")
    return frozenset(str(k) for k in regimes) if isinstance(regimes, Mapping) else None
