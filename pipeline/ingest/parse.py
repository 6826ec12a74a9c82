"""Feed bytes to normalised entries: a guarded call into feedparser, then pure normalisation.

Strict where it matters (zavod's rule): bytes that declare XML entities are refused before feedparser
sees them (its loose parser expands internal entities: a 61 KiB feed became a 191 MiB summary in a
probe); a body with no entries is a feed error; one bad entry is skipped *and counted*.

Before feedparser parses anything, :func:`_prepare` turns the bytes into the UTF-8 text feedparser
would parse (its own ``convert_to_utf8``, honouring BOM, declaration and Content-Type) and works on
that, so nothing below can be walked around by the document's encoding:

* **entities** — the whole converted document is searched for ``<!ENTITY``: in UTF-16, UTF-32 or
  EBCDIC the declaration is not the ASCII byte string, and it can sit after any amount of leading
  padding. A feed that quotes ``<!ENTITY`` literally inside a CDATA section is refused too: a false
  alarm we accept for a check that cannot be walked around;
* **characters XML forbids** — raw C0 controls (NUL included) are dropped, and numeric character
  references to them, to lone surrogates (``&#xD800;``), to ``U+FFFE``/``U+FFFF`` or beyond
  ``U+10FFFF`` (``&#99999999999999999999;``) become U+FFFD. Left in, one such reference made
  feedparser raise (a lone surrogate cannot be encoded; a huge number overflows ``chr``) and lost
  the whole feed, or sent the document to the loose parser. Both in time and memory linear in the
  document (``bytes.translate``, one output buffer: ``re.sub`` kept a list entry per match, 452 MiB
  for 5 MiB of NUL bytes);
* **parser complexity** — a document whose unterminated HTML comments would make feedparser's
  sanitizer rescan it quadratically (:func:`_comment_scan_cost`) is refused;
* **the DOCTYPE** is dropped, so nothing can ask for an external DTD;
* **shapes that make feedparser slow** — :func:`~pipeline.ingest.prescan.prescan` walks the markup
  once and refuses more attributes on one element, namespace prefixes, nesting depth or elements
  than :class:`~pipeline.ingest.prescan.ParseLimits` allow (feedparser is quadratic in the first
  two); and a document with more than ``max_items`` entries is cut before the first one over and
  closed, so feedparser never builds entries that would be thrown away.

**Memory across feeds.** feedparser holds up to about 30 times the size of a document the pre-scan
let through while it parses it (one list item per character reference, for one; SECURITY.md). An
ingest run shares one :class:`ParseBudget` between its workers: a document is parsed only while the
documents being parsed at once add up to no more than the budget (one larger than the whole budget
is parsed alone), which bounds the run's parse memory whatever the number of workers.

feedparser then parses the converted UTF-8 (told so by the Content-Type charset); what the first
conversion noticed (a wrong declared encoding, a non-XML media type) is kept as a problem.

**Only new entries are normalised.** Each raw entry gets a print (:func:`entry_print`: a 64-bit hash of
its title, texts, links and id exactly as feedparser gave them, and of the document's base URL). The
prints of the entries a feed's last stored document held are kept with the feed (``known``); an entry
whose print is among them is the same raw entry as last time, hence a known article whose content
has not changed: it is counted in ``unchanged`` and not normalised or returned (storing it would only
have counted it as a duplicate). Any change to the entry (an edit of one character, a new link)
changes its print, so edits are normalised and stored as before. ``ParsedFeed.prints`` lists the
prints of this document's entries that were normalised or unchanged, for the next parse.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import logging
import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import feedparser
from feedparser.encodings import convert_to_utf8

from pipeline.errors import ConfigError, FeedParseError
from pipeline.ingest.normalise import (
    article_key,
    canonical_url,
    clean_text,
    content_hash,
    detect_language,
    html_to_text,
)
from pipeline.ingest.prescan import DEFAULT_LIMITS, ParseLimits, cut, prescan

__all__ = [
    "Entry",
    "ParseBudget",
    "ParsedFeed",
    "entry_print",
    "format_prints",
    "known_prints",
    "parse_feed",
]

log = logging.getLogger(__name__)

MAX_TITLE = 500
MAX_SUMMARY = 20_000
MAX_BODY = 100_000
# Characters the HTML sanitizer may scan looking for comment ends (see _comment_scan_cost).
MAX_COMMENT_SCAN = 50_000_000

# A DOCTYPE with an internal subset ("[ ... ]"), and an ENTITY declaration anywhere.
_DOCTYPE_RE = re.compile(rb"<!DOCTYPE[^>\[]*(\[.*?\])?\s*>", re.IGNORECASE | re.DOTALL)
_ENTITY_RE = re.compile(rb"<!ENTITY", re.IGNORECASE)
# C0 controls XML 1.0 forbids (all but tab, LF, CR), as raw bytes of UTF-8 text: deleted with
# bytes.translate (re.sub kept a list entry per match: 1 MiB of NUL bytes took 90 MiB).
_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D))
# HTML comment openers and closers, raw or as XML references (what feedparser's HTML sanitizer
# sees once the XML is parsed). See _comment_scan_cost.
_COMMENT_OPEN_RE = re.compile(rb"(?:<|&lt;|&#0*60;|&#[xX]0*3[cC];)!--")
_COMMENT_CLOSE_RE = re.compile(rb"--(?:>|&gt;|&#0*62;|&#[xX]0*3[eE];)")
# Numeric character references (decimal or hex); _char_ref decides which are allowed.
_CHAR_REF_RE = re.compile(rb"&#([xX][0-9a-fA-F]+|[0-9]+);")


@dataclass(frozen=True, slots=True)
class Entry:
    """One normalised feed entry, ready to store."""

    feed_id: str
    key: str
    guid: str | None
    url: str | None
    title: str
    summary: str
    body: str
    lang: str
    published_at: datetime | None
    content_hash: str


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    feed_id: str
    title: str
    entries: tuple[Entry, ...]
    entries_seen: int
    skipped: int
    duplicates_in_feed: int
    problems: tuple[str, ...]
    unchanged: int = 0  # entries whose print was known: not normalised (see the module docstring)
    prints: tuple[str, ...] = ()  # of the entries normalised or unchanged, for the next parse


# The scheme of entry prints: change it when what a print covers changes; stored prints of another
# scheme are ignored (the feed's next parse normalises every entry once).
PRINT_SCHEME = "p1"


def entry_print(raw: Any, base: str | None) -> str:
    """A 64-bit hash (16 hex digits) of one raw feedparser entry: its title, summary (or
    description), content values, link, links and id (or guid) as given, and the document's
    ``base`` URL (relative links resolve against it). Each part is length-prefixed, so no two different entries
    share their input."""
    # feedparser answers "description" with "summary" and "guid" with "id": one read of each.
    parts: list[object] = [
        base,
        raw.get("title"),
        raw.get("summary"),
        raw.get("link"),
        raw.get("id"),
    ]
    for part in raw.get("content") or []:
        parts.append(part.get("value") if isinstance(part, dict) else part)
    for link in raw.get("links") or []:
        parts.append(f"{link.get('rel')} {link.get('href')}" if isinstance(link, dict) else link)
    digest = hashlib.blake2b(digest_size=8)
    for part in parts:
        data = ("" if part is None else str(part)).encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def known_prints(stored: str | None) -> frozenset[str]:
    """The prints in a feed's stored ``entry_prints`` (empty when none, or of another scheme)."""
    if not stored:
        return frozenset()
    scheme, _, rest = stored.partition(" ")
    return frozenset(rest.split()) if scheme == PRINT_SCHEME else frozenset()


def format_prints(prints: tuple[str, ...] | list[str]) -> str | None:
    """``prints`` as a feed's stored ``entry_prints`` (None when there are none)."""
    return f"{PRINT_SCHEME} " + " ".join(dict.fromkeys(prints)) if prints else None


def _allowed_char_ref(match: re.Match[bytes]) -> bool:
    """Is this numeric character reference one XML 1.0 allows?"""
    ref = match.group(1)
    hexadecimal = ref[:1] in (b"x", b"X")
    digits = ref[1:] if hexadecimal else ref
    if len(digits.lstrip(b"0")) > 8:  # far beyond U+10FFFF (and beyond what chr() takes)
        return False
    code = int(digits, 16 if hexadecimal else 10)
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _replace_bad_char_refs(data: bytes) -> tuple[bytes, int]:
    """``data`` with every numeric character reference XML does not allow replaced by U+FFFD, and
    how many there were. Built in one buffer (re.sub with a callback kept a list entry per
    reference, 150 MiB for 5 MiB of ``&#0;``); ``data`` itself when there is none."""
    out = bytearray()
    pos = bad = 0
    for match in _CHAR_REF_RE.finditer(data):
        if _allowed_char_ref(match):
            continue
        out += data[pos : match.start()]
        out += b"&#xFFFD;"
        pos = match.end()
        bad += 1
    if not bad:
        return data, 0
    out += data[pos:]
    return bytes(out), bad


def _comment_scan_cost(data: bytes) -> int:
    """How many characters an HTML parser reads looking for the ends of the document's comments.

    feedparser's sanitizer (like :mod:`html.parser`) searches for ``-->`` from every ``<!--`` to
    the end of the text when there is none: 400 KB of ``<!--`` took 40 s, 2 MB would take many
    minutes, while the fetch deadline has long passed. The sum of the distances from each opener
    to the next closer (the end when none) is that work, computed here in one pass.
    """
    closers = (m.start() for m in _COMMENT_CLOSE_RE.finditer(data))
    closer = next(closers, len(data))
    cost = 0
    for opener in _COMMENT_OPEN_RE.finditer(data):
        start = opener.end()
        while closer < start:
            closer = next(closers, len(data))
        cost += closer - start
    return cost


def _prepare(content: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str], list[str]]:
    """The document as the UTF-8 feedparser would parse, made safe (see the module docstring), the
    headers to parse it with, and what the conversion noticed."""
    result: dict[str, Any] = {}
    try:
        data = convert_to_utf8(dict(headers), content, result)
    except (ValueError, LookupError) as err:  # an undecodable encoding name in the declaration
        raise FeedParseError(f"cannot decode the feed: {type(err).__name__}: {err}") from err
    size = len(data)
    data = data.translate(None, _CONTROL_BYTES)  # first: "<!EN\0TITY" must not pass below
    controls = size - len(data)
    if _ENTITY_RE.search(data):
        raise FeedParseError("the feed declares XML entities; refused (entity-expansion risk)")
    cost = _comment_scan_cost(data)
    if cost > max(MAX_COMMENT_SCAN, 10 * len(data)):
        raise FeedParseError(
            f"the feed's unterminated HTML comments would take {cost:,} characters of scanning "
            "to parse; refused (parser complexity risk)"
        )
    problems = []
    if result.get("bozo"):
        exc = result.get("bozo_exception")
        problems.append(f"{type(exc).__name__}: {clean_text(str(exc), max_chars=200)}")
    data, bad_refs = _replace_bad_char_refs(data)
    if controls or bad_refs:
        problems.append(
            f"{controls + bad_refs} character(s) XML does not allow removed or replaced by U+FFFD"
        )
    data = _DOCTYPE_RE.sub(b"", data, count=1)
    parse_headers = dict(headers)
    if result.get("encoding") and "content-type" in headers:
        media_type = headers["content-type"].split(";", 1)[0].strip() or "application/xml"
        parse_headers["content-type"] = f"{media_type}; charset=utf-8"
    return data, parse_headers, problems


def _link_base(url: str | None) -> str | None:
    """The base for relative links: the feed URL without credentials, query or fragment.

    Relative references such as ``#top`` resolve to the base URL itself; a feed URL that carries a
    token (``?token=...``) or userinfo must not leak into stored article links and alert emails.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))


def _to_datetime(value: Any, now: datetime) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None
    # A date far in the future is a broken feed clock: keep the entry, not the date.
    if dt > now + timedelta(days=1) or dt.year < 1990:
        return None
    return dt


def _entry_text(raw: Any) -> tuple[str, str]:
    summary_html = raw.get("summary") or raw.get("description") or ""
    body_html = ""
    for part in raw.get("content") or []:
        value = part.get("value") if isinstance(part, dict) else None
        if value and len(value) > len(body_html):
            body_html = value
    summary = html_to_text(summary_html, max_chars=MAX_SUMMARY)
    body = html_to_text(body_html, max_chars=MAX_BODY)
    if body and not summary:
        summary = clean_text(body, max_chars=1000)
    if body == summary:
        body = ""
    return summary, body


def _entry_link(raw: Any) -> str | None:
    link = raw.get("link")
    if not link:
        for candidate in raw.get("links") or []:
            if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
                link = candidate["href"]
                break
    return canonical_url(link)


class ParseBudget:
    """A weighted semaphore over the bytes of the documents feedparser parses at once (see the
    module docstring), first come first served; share one between the threads of an ingest run."""

    def __init__(self, limit_bytes: int) -> None:
        if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, int) or limit_bytes < 1:
            raise ConfigError(f"ParseBudget: expected a number of bytes >= 1, got {limit_bytes!r}")
        self.limit = limit_bytes
        self.peak = 0  # the most bytes ever parsed at once (for tests and logs)
        self._used = 0
        self._queue: deque[object] = deque()
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Wait until ``nbytes`` (at most the whole budget) fit in the budget, and hold them."""
        weight = max(1, min(nbytes, self.limit))
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            self._cond.wait_for(
                lambda: self._queue[0] is ticket and self._used + weight <= self.limit
            )
            self._queue.popleft()
            self._used += weight
            self.peak = max(self.peak, self._used)
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._used -= weight
                self._cond.notify_all()


def parse_feed(
    content: bytes,
    *,
    feed_id: str,
    now: datetime,
    language: str | None = None,
    content_type: str | None = None,
    base_url: str | None = None,
    max_items: int = 500,
    limits: ParseLimits = DEFAULT_LIMITS,
    budget: ParseBudget | None = None,
    known: str | None = None,
) -> ParsedFeed:
    """Parse feed bytes into normalised entries (at most ``max_items``).

    Raises :class:`FeedParseError` when the bytes are refused (``limits``, entities, ...) or hold no
    entries at all; a feed with some entries and some problems returns the entries and lists the
    problems. With a ``budget``, feedparser runs only while the budget has room for the document.
    ``known`` is the feed's stored ``entry_prints``: entries among them are counted as unchanged,
    not normalised (see the module docstring).
    """
    if not content or not content.strip():
        raise FeedParseError("empty response body")
    headers = {"content-type": content_type} if content_type else {}
    base = _link_base(base_url)
    if base:
        headers["content-location"] = base
    data, parse_headers, noticed = _prepare(content, headers)
    shape = prescan(data, limits, max_items=max_items)
    data = cut(data, shape)
    try:
        with budget.hold(len(data)) if budget is not None else contextlib.nullcontext():
            parsed = feedparser.parse(
                data, response_headers=parse_headers, sanitize_html=True, resolve_relative_uris=True
            )
    except (ValueError, TypeError, LookupError, RecursionError, OverflowError) as err:
        raise FeedParseError(f"feedparser failed: {type(err).__name__}: {err}") from err
    del data
    problems = [f"ill-formed feed: {n}" for n in noticed]
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        # The message can quote the document (a declared encoding name): clean it like feed text.
        problem = f"ill-formed feed: {type(exc).__name__}: {clean_text(str(exc), max_chars=200)}"
        if problem not in problems:
            problems.append(problem)
    raw_entries = parsed.get("entries") or []
    if not raw_entries:
        version = parsed.get("version") or "unknown format"
        reason = problems[0] if problems else f"no entries ({version})"
        raise FeedParseError(f"no entries could be read: {reason}")
    feed_lang = language or parsed.get("feed", {}).get("language")
    entries: list[Entry] = []
    seen: set[str] = set()
    skipped = duplicates = unchanged = 0
    previous, prints = known_prints(known), []
    for index, raw in enumerate(raw_entries[:max_items]):
        try:
            mark: str | None = entry_print(raw, base)
        except (AttributeError, TypeError, ValueError):
            mark = None  # not printable: normalised (and checked) as every entry used to be
        if mark is not None and mark in previous:
            unchanged += 1
            prints.append(mark)
            continue
        try:
            title = html_to_text(raw.get("title"), max_chars=MAX_TITLE)
            summary, body = _entry_text(raw)
            if not title and not summary:
                skipped += 1
                problems.append(f"entry {index}: no title and no text; skipped")
                continue
            url = _entry_link(raw)
            guid = clean_text(raw.get("id") or raw.get("guid"), max_chars=1000) or None
            chash = content_hash(title, summary or body)
            key = article_key(feed_id, url=url, guid=guid, chash=chash)
            if mark is not None:
                prints.append(mark)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            # "in" first: reading a missing updated_parsed makes feedparser warn and fall back.
            updated = raw.get("updated_parsed") if "updated_parsed" in raw else None
            published = _to_datetime(raw.get("published_parsed") or updated, now)
            lang = detect_language(f"{title}. {summary} {body[:1000]}", hint=feed_lang)
            entries.append(
                Entry(
                    feed_id=feed_id,
                    key=key,
                    guid=guid,
                    url=url,
                    title=title or clean_text(summary, max_chars=120),
                    summary=summary,
                    body=body,
                    lang=lang,
                    published_at=published,
                    content_hash=chash,
                )
            )
        except (AttributeError, TypeError, ValueError) as err:
            skipped += 1
            problems.append(f"entry {index}: {type(err).__name__}: {err}; skipped")
    # The document was cut before the entries over max_items (the pre-scan counted them).
    seen_total = max(len(raw_entries), shape.entries if shape.cut_at is not None else 0)
    if seen_total > max_items:
        problems.append(f"{seen_total - max_items} entries over max_items={max_items} ignored")
    for problem in problems:
        log.warning("feed %s: %s", feed_id, problem)
    return ParsedFeed(
        feed_id=feed_id,
        title=clean_text(parsed.get("feed", {}).get("title"), max_chars=300),
        entries=tuple(entries),
        entries_seen=seen_total,
        skipped=skipped,
        duplicates_in_feed=duplicates,
        problems=tuple(problems),
        unchanged=unchanged,
        prints=tuple(prints),
    )
