"""One feed's harvest: what fetching and parsing it gave, and in words what went wrong.

A :class:`Harvest` holds the fetch result (``parsed`` is None on a 304, and on a 200 whose body is
byte for byte the last one stored: ``same_body``) or an ``error``: the text
operators see in the fetch log and in notices, with the HTTP status and the server's Retry-After kept
for the back-off. A body cut at the byte cap is named first in the error (when the cut made the feed
unreadable) or in :meth:`Harvest.problems` (when what was read still parsed). ``pipeline.jobs.ingest``
fills harvests (fetch, then parse) and stores them; the wording is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pipeline.config import FeedConfig
from pipeline.errors import FeedError
from pipeline.ingest.fetch import FetchResult, HTTPStatusError
from pipeline.ingest.parse import ParsedFeed

__all__ = ["Harvest"]

_MAX_PROBLEMS = 2000


@dataclass(slots=True)
class Harvest:
    """The outcome of fetching and parsing one feed."""

    feed: FeedConfig
    started: datetime
    max_bytes: int  # the cap the fetch ran under
    result: FetchResult | None = None
    parsed: ParsedFeed | None = None
    error: str | None = None
    http_status: int | None = None
    retry_after: float | None = None
    body_sha256: str | None = None  # of a 200's body
    same_body: bool = False  # the body is the one last stored: not parsed, like a 304

    def _cut_note(self) -> str:
        truncated = self.result is not None and self.result.truncated
        return f"body cut at {self.max_bytes} bytes; " if truncated else ""

    def refused(self, err: HTTPStatusError) -> None:
        """The server answered with an error status (its Retry-After kept for the back-off)."""
        self.error, self.http_status, self.retry_after = str(err), err.http_status, err.retry_after

    def failed(self, err: FeedError) -> None:
        """The fetch or the parse failed; a body cut at the cap is named first (the likely cause)."""
        self.error = self._cut_note() + str(err)

    def problems(self) -> str | None:
        """What the parser skipped or could not read, for the fetch log (None when nothing)."""
        text = "; ".join(self.parsed.problems)[:_MAX_PROBLEMS] if self.parsed else ""
        return (self._cut_note() + text) or None
