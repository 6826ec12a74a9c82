"""Full text for summary-only items: the cascade that decides which article pages to fetch, the
polite page fetcher, and main-text extraction.

A feed often carries a headline and one sentence; the breach may be in paragraph four of the page it
links to. Fetching every page is dear (for us and for publishers), so per feed ``full_text`` says:
``never``; ``always`` (fetch before the first score); or ``auto`` (the default), a cascade, cheap
first and dear only where the page can change the decision. :func:`select_pages` asks the model about
each ``auto`` item as stored (title, summary, the feed's body) and picks the page when the score is
below the threshold and either inside the uncertainty band (``band_low × threshold`` and up) or, with
``regime_heads``, when the title or summary names an active UN sanctions regime (the head of a summit
story says nothing about what its fourth paragraph reports). An item whose feed already gave a body of
``full_body_words`` words or more is never fetched by ``auto``. See docs/fulltext.md for the rates.

:func:`fetch_pages` fetches the chosen pages. What it guarantees:

* **The feeds' network guard** — every page goes through :func:`pipeline.ingest.fetch.fetch_feed`:
  http(s) only, the address policy on every hop (a redirect to a private address is refused), DNS
  pinned between check and connect, the total deadline enforced by the watchdog, gzip/deflate decoded
  in bounded steps, the ``fetch:`` settings' timeouts, redirect limit and User-Agent, and its own byte
  cap (``full_text.max_bytes``).
* **Politeness** — robots.txt (:mod:`pipeline.ingest.robots`) is fetched once per origin per run
  through the same guard and honoured for our User-Agent; pages of one host are fetched one at a time
  (one worker owns a host for the run), at least ``min_delay`` seconds (or the robots.txt
  Crawl-delay, if longer) after the previous request to that host ended, robots.txt included; a host
  answering 429 or 503, or failing :data:`HOST_FAILURES` times in a row (timeout, network, DNS),
  gets no more requests in this run; at most ``max_pages`` page requests per run, and none starts
  after ``max_seconds`` (so one classify run spends at most about ``max_seconds`` plus one
  ``fetch.total_deadline`` on pages, however slow the hosts).
* **Refusals never stop the run** — a blocked address, a timeout, a page over the byte cap, a content
  type that is not HTML, a robots.txt disallow, an extraction of fewer than :data:`PAGE_MIN_WORDS`
  words: each is recorded on its item as a :class:`PageOutcome` (``status`` error or skipped, a
  short ``reason`` and the message), and the next item goes on. The text extracted from a page is cleaned like feed text and capped at
  :data:`PAGE_MAX_CHARS`.
* **Extraction never fetches** — trafilatura reads the bytes we fetched (decoded with the charset the
  server named, else detected); it is never given a URL to download, and needs nothing at run time.

Limitations: robots.txt and politeness apply to the linked URL's origin; a page that redirects to
another host is fetched there (each hop still under the address policy) without that host's
robots.txt. The body is read (up to the cap) before its content type is judged. Requests carry the
feed fetcher's ``Accept`` header, which ends in ``*/*``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import httpx

from pipeline.config import FetchPolicy, FullTextSettings
from pipeline.errors import FetchError
from pipeline.ingest.fetch import (
    BlockedAddressError,
    ContentDecodingError,
    DeadlineExceeded,
    FetchTimeout,
    HTTPStatusError,
    InvalidURLError,
    ResolutionError,
    TooManyRedirects,
    UnsupportedScheme,
    fetch_feed,
)
from pipeline.ingest.normalise import clean_text
from pipeline.ingest.robots import Robots, fetch_robots
from pipeline.logs import bind
from pipeline.net.policy import redact_url

__all__ = [
    "HOST_FAILURES",
    "HTML_TYPES",
    "MAX_CRAWL_DELAY",
    "PAGE_MAX_CHARS",
    "PAGE_MIN_WORDS",
    "PageCandidate",
    "PageError",
    "PageOutcome",
    "PageRequest",
    "extract_text",
    "fetch_pages",
    "full_text_pass",
    "select_pages",
]

log = logging.getLogger(__name__)

PAGE_MAX_CHARS = 100_000  # as a feed's body (pipeline.ingest.parse)
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# A robots.txt Crawl-delay is honoured up to this; a host asking for more gets one page per run.
MAX_CRAWL_DELAY = 60.0
# Consecutive failures to reach a host (timeout, network, DNS) after which it gets no more requests.
HOST_FAILURES = 2
_UNREACHABLE = frozenset({"timeout", "network", "dns"})
# Fewer words than this is not an article (a consent wall, a menu): the page is recorded as empty.
PAGE_MIN_WORDS = 25
_SLOW_DOWN = frozenset({429, 503})
_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")

Trigger = Literal["always", "band", "regime"]
Status = Literal["ok", "error", "skipped"]
# What the model says about an item as stored: its score and the UN regimes it names.
Triage = Callable[[Sequence["PageCandidate"]], Sequence[tuple[float, Sequence[str]]]]


# ------------------------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class PageCandidate:
    """An article revision not yet classified, from a feed whose ``full_text`` is auto or always."""

    article_id: int
    revision: int
    feed_id: str
    mode: Literal["auto", "always"]
    url: str | None
    title: str
    summary: str
    body: str


@dataclass(frozen=True, slots=True)
class PageRequest:
    candidate: PageCandidate
    trigger: Trigger
    head_score: float | None


@dataclass(frozen=True, slots=True)
class PageOutcome:
    """What became of one page: ``ok`` with ``body``, or ``error``/``skipped`` with a reason."""

    article_id: int
    revision: int
    host: str
    status: Status
    trigger: Trigger
    head_score: float | None
    reason: str | None = None  # blocked, timeout, too_big, not_html, robots, empty, budget, ...
    detail: str | None = None
    http_status: int | None = None
    nbytes: int = 0
    body: str = ""


class PageError(FetchError):
    """A page was fetched but cannot be used: ``kind`` (too_big, not_html, empty, extract_failed)."""

    def __init__(self, url: str, kind: str, reason: str) -> None:
        super().__init__(f"page {url}: {reason}")
        self.url, self.kind, self.reason = url, kind, reason


# ------------------------------------------------------------------------------------------ cascade


def _words(text: str) -> int:
    return len(_WORD.findall(text)) + len(_CJK.findall(text)) // 2


def select_pages(
    candidates: Sequence[PageCandidate],
    *,
    triage: Triage,
    threshold: float,
    settings: FullTextSettings,
) -> list[PageRequest]:
    """The pages worth fetching, most useful first: ``always`` items, then ``auto`` items by score
    (closest to the threshold first). ``triage`` is called once, on the ``auto`` items only."""
    wanted = [PageRequest(c, "always", None) for c in candidates if c.mode == "always"]
    auto = [c for c in candidates if c.mode == "auto" and _words(c.body) < settings.full_body_words]
    picked: list[PageRequest] = []
    for c, (score, regimes) in zip(auto, triage(auto) if auto else [], strict=True):
        if score >= threshold:
            continue
        if score >= settings.band_low * threshold:
            picked.append(PageRequest(c, "band", float(score)))
        elif settings.regime_heads and regimes:
            picked.append(PageRequest(c, "regime", float(score)))
    picked.sort(key=lambda r: -(r.head_score or 0.0))
    return wanted + picked


# ------------------------------------------------------------------------------------- extraction


def _charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip("\"'"):
            return value.strip().strip("\"'")
    return None


def extract_text(content: bytes, content_type: str | None = None) -> str:
    """The main text of an HTML page (paragraphs on their own lines), cleaned and capped; "" when
    there is none. Scripts, styles, navigation and comments are left out. Never fetches anything."""
    import trafilatura  # imported on first use: ~0.15 s, and only classify runs need it

    html: str | bytes = content
    charset = _charset(content_type)
    if charset:
        try:
            html = content.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know: let trafilatura detect it
            html = content
    text = trafilatura.extract(
        html,
        include_comments=False,
        include_tables=False,
        include_images=False,
        include_links=False,
        with_metadata=False,
        output_format="txt",
    )
    return clean_text(text or "", max_chars=PAGE_MAX_CHARS)


# ---------------------------------------------------------------------------------------- fetching


def _split(url: str | None) -> tuple[str, str] | None:
    """(host, origin) of an http(s) URL, else None."""
    if not url:
        return None
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    port = f":{parsed.port}" if parsed.port else ""
    raw = parsed.raw_host.decode("ascii")
    netloc = f"[{raw}]" if ":" in raw else raw  # an IPv6 literal
    return parsed.host.lower(), f"{parsed.scheme}://{netloc}{port}"


def _kind(exc: FetchError) -> str:
    for cls, kind in (
        (PageError, ""),
        (BlockedAddressError, "blocked"),
        (UnsupportedScheme, "scheme"),
        (InvalidURLError, "invalid_url"),
        (ResolutionError, "dns"),
        (DeadlineExceeded, "timeout"),
        (FetchTimeout, "timeout"),
        (TooManyRedirects, "redirects"),
        (HTTPStatusError, "http"),
        (ContentDecodingError, "decoding"),
    ):
        if isinstance(exc, cls):
            return kind or getattr(exc, "kind", "error")
    return "network"


class _Run:
    """One fetch_pages call: the policies, the robots.txt rules read so far, the budget."""

    def __init__(self, settings: FullTextSettings, policy: FetchPolicy) -> None:
        self.settings = settings
        self.ends = time.monotonic() + settings.max_seconds  # no request starts after this
        self.policy = policy
        self.page_policy = dataclasses.replace(policy, max_bytes=settings.max_bytes)
        # One worker owns a host, and an origin belongs to one host: no two threads share a key.
        self.robots: dict[str, Robots] = {}

    @staticmethod
    def outcome(
        req: PageRequest,
        host: str,
        status: Status,
        *,
        reason: str | None = None,
        detail: str | None = None,
        http_status: int | None = None,
        nbytes: int = 0,
        body: str = "",
    ) -> PageOutcome:
        c = req.candidate
        return PageOutcome(
            c.article_id,
            c.revision,
            host,
            status,
            req.trigger,
            req.head_score,
            reason=reason,
            detail=detail,
            http_status=http_status,
            nbytes=nbytes,
            body=body,
        )

    def fetch_one(self, req: PageRequest, host: str) -> PageOutcome:
        url = req.candidate.url or ""
        safe = redact_url(url)
        try:
            result = fetch_feed(url, policy=self.page_policy)
            if result.truncated:
                raise PageError(safe, "too_big", f"larger than {self.settings.max_bytes} bytes")
            media = (result.content_type or "").split(";")[0].strip().lower()
            if media not in HTML_TYPES:
                raise PageError(safe, "not_html", f"content type {media or '(none)'!r} is not HTML")
            try:
                body = extract_text(result.content, result.content_type)
            except Exception as exc:  # a third-party parser on hostile bytes: recorded, re-raised
                log.warning("page %s: extraction failed", safe, exc_info=True)
                raise PageError(safe, "extract_failed", f"{type(exc).__name__}: {exc}") from exc
            if _words(body) < PAGE_MIN_WORDS:
                found = f" (only {_words(body)} words)" if body else ""
                raise PageError(safe, "empty", f"no main text found in the page{found}")
        except FetchError as exc:
            detail = clean_text(getattr(exc, "reason", None) or str(exc), max_chars=1000)
            log.info("page %s not used: %s", safe, detail)
            status = exc.http_status if isinstance(exc, HTTPStatusError) else None
            return self.outcome(
                req, host, "error", reason=_kind(exc), detail=detail, http_status=status
            )
        log.debug("page %s: %d characters of text", safe, len(body))
        return self.outcome(
            req, host, "ok", http_status=result.http_status, nbytes=len(result.content), body=body
        )

    def host_worker(self, host: str, requests: Sequence[PageRequest]) -> list[PageOutcome]:
        """Every page of one host, one at a time, ``delay`` apart (robots.txt included)."""
        out: list[PageOutcome] = []
        delay = self.settings.min_delay
        ended: float | None = None  # time.monotonic() when the last request to the host ended
        stop: tuple[str, str] | None = None  # (reason, detail): no more requests to this host
        failures = 0

        def wait() -> None:
            if ended is not None:
                time.sleep(max(0.0, ended + delay - time.monotonic()))

        def late() -> tuple[str, str] | None:
            """The time budget's stop, if the next request would start after it."""
            starts = time.monotonic() if ended is None else max(time.monotonic(), ended + delay)
            if starts < self.ends:
                return None
            return ("time", f"page time budget of {self.settings.max_seconds:g}s per run spent")

        for req in requests:
            stop = stop or late()
            if stop is not None:
                out.append(self.outcome(req, host, "skipped", reason=stop[0], detail=stop[1]))
                continue
            split = _split(req.candidate.url)
            assert split is not None  # fetch_pages grouped only http(s) URLs
            origin = split[1]
            rules = self.robots.get(origin)
            if rules is None:
                wait()
                rules = fetch_robots(origin, policy=self.policy)
                ended = time.monotonic()
                self.robots[origin] = rules
                if rules.crawl_delay is not None:
                    delay = max(delay, min(rules.crawl_delay, MAX_CRAWL_DELAY))
            if not rules.allows(req.candidate.url or ""):
                reason = "robots" if rules.unreachable is None else "robots_unreachable"
                if rules.blocked:  # the host itself is refused by the address policy
                    reason = "blocked"
                detail = rules.unreachable or f"robots.txt of {origin} disallows this page"
                out.append(self.outcome(req, host, "error", reason=reason, detail=detail))
                continue
            stop = late()
            if stop is not None:
                out.append(self.outcome(req, host, "skipped", reason=stop[0], detail=stop[1]))
                continue
            wait()
            with bind(feed_id=req.candidate.feed_id, article_id=req.candidate.article_id):
                result = self.fetch_one(req, host)
            ended = time.monotonic()
            out.append(result)
            failures = failures + 1 if result.reason in _UNREACHABLE else 0
            if result.http_status in _SLOW_DOWN and result.status == "error":
                stop = ("host", f"{host} answered HTTP {result.http_status}: no more requests")
            elif failures >= HOST_FAILURES:
                stop = ("host", f"{host} failed {failures} times in a row: no more requests")
            elif rules.crawl_delay is not None and rules.crawl_delay > MAX_CRAWL_DELAY:
                delay_asked = f"{rules.crawl_delay:g}s"
                stop = ("host", f"robots.txt of {origin} asks for a Crawl-delay of {delay_asked}")
        return out


def fetch_pages(
    requests: Sequence[PageRequest], *, settings: FullTextSettings, policy: FetchPolicy
) -> list[PageOutcome]:
    """Fetch the pages of ``requests`` (in their order, within the budget); see the module docstring.

    Returns one outcome per request, in the order given. Never raises for a page: every failure is an
    outcome.
    """
    run = _Run(settings, policy)
    outcomes: dict[int, PageOutcome] = {}
    by_host: dict[str, list[tuple[int, PageRequest]]] = {}
    budget = settings.max_pages
    for i, req in enumerate(requests):
        split = _split(req.candidate.url)
        if split is None:
            reason, detail = (
                ("no_link", "the item has no link")
                if not req.candidate.url
                else ("scheme", "the link is not an http(s) URL")
            )
            outcomes[i] = run.outcome(req, "", "skipped", reason=reason, detail=detail)
        elif budget <= 0:
            detail = f"page budget of {settings.max_pages} per run spent"
            outcomes[i] = run.outcome(req, split[0], "skipped", reason="budget", detail=detail)
        else:
            budget -= 1
            by_host.setdefault(split[0], []).append((i, req))
    if by_host:
        workers = min(settings.workers, len(by_host))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pages") as pool:
            futures = {
                host: pool.submit(run.host_worker, host, [r for _, r in items])
                for host, items in by_host.items()
            }
            for host, future in futures.items():
                for (i, _), outcome in zip(by_host[host], future.result(), strict=True):
                    outcomes[i] = outcome
    return [outcomes[i] for i in range(len(requests))]


def full_text_pass(
    candidates: Sequence[PageCandidate],
    *,
    triage: Triage,
    threshold: float,
    settings: FullTextSettings,
    policy: FetchPolicy,
) -> list[PageOutcome]:
    """The cascade: :func:`select_pages`, then :func:`fetch_pages`. Items not selected get no
    outcome (nothing was decided about their page)."""
    requests = select_pages(candidates, triage=triage, threshold=threshold, settings=settings)
    outcomes = fetch_pages(requests, settings=settings, policy=policy)
    fetched = sum(o.status == "ok" for o in outcomes)
    if requests:
        log.info(
            "full text: %d of %d candidates selected (%d always, %d band, %d regime); "
            "%d pages used, %d refused, %d skipped",
            len(requests),
            len(candidates),
            sum(r.trigger == "always" for r in requests),
            sum(r.trigger == "band" for r in requests),
            sum(r.trigger == "regime" for r in requests),
            fetched,
            sum(o.status == "error" for o in outcomes),
            sum(o.status == "skipped" for o in outcomes),
        )
    return outcomes
