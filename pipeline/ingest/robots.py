"""robots.txt for the article-page fetcher: fetched through the feed fetcher's guard, read once per
origin per run.

What it guarantees:

* **Same guard as feeds** — ``/robots.txt`` is fetched with :func:`pipeline.ingest.fetch.fetch_feed`
  (address policy on every hop, pinned DNS, total deadline, bounded decoding) under a 512 KiB cap
  (RFC 9309 asks crawlers to read at least 500 KiB; what lies beyond is ignored).
* **As crawlers do** (RFC 9309 §2.3.1) — a 4xx answer (no robots.txt) allows everything; any other
  failure (5xx, 429, a refused or unreachable host, a timeout, a redirect to a blocked address)
  means *do not fetch from this origin in this run*: conservative, since we cannot know the rules.
  429 counts as a failure, not as a missing file, as Google's crawler treats it.
* **Our User-Agent** — rules are matched with :mod:`urllib.robotparser` against the product token
  of the configured ``fetch.user_agent`` (``sanctions-watch``), falling back to the ``*`` group.
  ``Crawl-delay`` for that agent is reported, and the caller waits at least that long between two
  requests to the host.

Pure apart from the fetch: no clock, no shared state (the caller keeps one :class:`Robots` per origin
for the length of a run).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from urllib.robotparser import RobotFileParser

from pipeline.config import FetchPolicy
from pipeline.errors import FetchError
from pipeline.ingest.fetch import BlockedAddressError, HTTPStatusError, fetch_feed

__all__ = ["ROBOTS_MAX_BYTES", "Robots", "fetch_robots"]

log = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class Robots:
    """The rules of one origin for ``agent``; ``unreachable`` says why none could be read."""

    origin: str
    agent: str
    parser: RobotFileParser | None = None  # None: no rules (everything allowed unless unreachable)
    unreachable: str | None = None
    crawl_delay: float | None = None
    blocked: bool = False  # unreachable because the address policy refused the host

    def allows(self, url: str) -> bool:
        if self.unreachable is not None:
            return False
        return self.parser is None or self.parser.can_fetch(self.agent, url)


def fetch_robots(origin: str, *, policy: FetchPolicy) -> Robots:
    """Fetch and parse ``origin``/robots.txt (``origin`` is ``scheme://host[:port]``)."""
    url = f"{origin}/robots.txt"
    agent = _product_token(policy.user_agent)
    try:
        result = fetch_feed(url, policy=dataclasses.replace(policy, max_bytes=ROBOTS_MAX_BYTES))
    except HTTPStatusError as exc:
        if 400 <= exc.http_status < 500 and exc.http_status != 429:
            log.debug("%s: HTTP %d, no rules: everything allowed", url, exc.http_status)
            return Robots(origin, agent)
        return Robots(origin, agent, unreachable=f"robots.txt unavailable ({exc.reason})")
    except FetchError as exc:
        reason = getattr(exc, "reason", str(exc))
        blocked = isinstance(exc, BlockedAddressError)
        return Robots(
            origin, agent, unreachable=f"robots.txt unreachable ({reason})", blocked=blocked
        )
    parser = RobotFileParser(url)
    parser.parse(result.content.decode("utf-8", errors="replace").splitlines())
    delay = parser.crawl_delay(agent)
    return Robots(origin, agent, parser, crawl_delay=float(delay) if delay is not None else None)


def _product_token(user_agent: str) -> str:
    """``sanctions-watch`` of ``sanctions-watch/0.1 (+https://...)``: what robots.txt groups name."""
    return user_agent.split("/", 1)[0].split()[0] if user_agent.strip() else "*"
