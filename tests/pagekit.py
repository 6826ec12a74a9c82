"""Article pages for the full-text tests (issue 9, item 5): the texts, HTML around them, a summary-only
feed, and a loopback server that timestamps every request on its own side.

Import as ``from pagekit import ...`` (tests/ is on ``sys.path`` through the root conftest).

* :data:`SUMMIT_TITLE` / :data:`SUMMIT_PARAGRAPHS` — a long article written for these tests: summit
  diplomacy in paragraphs 1-3 and 5; paragraph 4 (and only it) reports the arms transfers both
  governments deny because they would violate UN Security Council resolutions.
  :data:`CALM_PARAGRAPHS` is a summit article of the same shape with no arms content.
* :func:`article_html` wraps paragraphs in a realistic page (navigation, scripts, related links,
  footer); :func:`summary_feed` builds an RSS feed whose items carry only a first sentence.
* :class:`PageServer` is a :class:`~_httpfixtures.MisbehavingServer` whose ``serve_*`` helpers add
  routes and whose :attr:`PageServer.log` records, per request, when it arrived and when its answer
  was sent (``time.monotonic()`` in the server's thread): what politeness tests assert on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from html import escape as html_escape
from xml.sax.saxutils import escape

from _httpfixtures import Exchange, MisbehavingServer

SUMMIT_TITLE = "Kim and Putin pledge a new chapter in ties as summit opens in Vladivostok"
SUMMIT_PARAGRAPHS = (
    "North Korean leader Kim Jong Un arrived in the Russian Pacific port of Vladivostok on Tuesday "
    "for two days of talks with President Vladimir Putin, the second meeting between the two men in "
    "little more than a year, according to state media in both countries.",
    "Mr Putin greeted his guest on the steps of a university campus on Russky Island, where the two "
    "leaders posed for photographs before sitting down with their delegations. Officials listed "
    "agriculture, tourism, a new road bridge across the Tumen river and places for North Korean "
    "students at Russian universities among the subjects on the table. Mr Kim said relations had "
    'entered "a new era of friendship" and thanked Russia for its support at the United Nations.',
    "The Kremlin said no joint statement was planned, but a spokesman told reporters that the "
    "leaders would discuss regional security and economic cooperation over a working lunch. Chinese "
    "officials said Beijing welcomed any contacts that contributed to stability on the peninsula, "
    "and analysts in Seoul noted that Mr Kim had brought his foreign minister and the head of the "
    "party's international department rather than his economic planners.",
    "Washington and Seoul say North Korea has sent trainloads of artillery shells and short-range "
    "ballistic missiles to Russia for its war in Ukraine, receiving fuel, food and military "
    "technology in return. Both governments deny the arms transfers, which would violate United "
    "Nations Security Council resolutions banning all trade in weapons with Pyongyang.",
    "On Wednesday the two leaders are expected to visit a shipyard and attend a performance at the "
    "Mariinsky theatre's Primorsky stage. Mr Kim has invited Mr Putin to visit Pyongyang at a time "
    "convenient to him, and Russian officials said the invitation had been accepted with gratitude.",
)
BREACH_MARK = "Both governments deny the arms transfers"

CALM_TITLE = "Kim and Putin tour a shipyard as Vladivostok summit ends with pledges on trade"
CALM_PARAGRAPHS = (
    "North Korean leader Kim Jong Un ended two days of talks with President Vladimir Putin in "
    "Vladivostok on Wednesday with a tour of a shipyard and a pledge to double trade within five "
    "years, state media in both countries reported.",
    "The leaders signed agreements on fisheries, on direct flights between Vladivostok and Pyongyang "
    "and on a second road crossing over the Tumen river. Russian officials said the new bridge could "
    "open to lorries next year and would cut journey times for farm produce and building materials.",
    "Mr Putin said the talks had been frank and friendly, and Mr Kim thanked his hosts for the "
    "reception, describing the friendship between the two peoples as unbreakable. Their foreign "
    "ministers will meet again in the autumn to prepare a visit by Mr Putin to Pyongyang.",
    "Analysts in Seoul said the agreements were modest and mostly repeated plans first announced "
    "years ago. Tourism from Russia to the Wonsan-Kalma beach resort remains small, and rail "
    "traffic across the border is still limited to a handful of trains a week.",
    "In the evening the two leaders attended a concert of folk music on Russky Island before Mr Kim "
    "boarded his train for the journey home, which usually takes more than a day.",
)

SCRIPT_MARKS = ("SCRIPT-TEXT", "STYLE-TEXT", "NOSCRIPT-TEXT", "window.dataLayer")


def article_html(title: str, paragraphs: Sequence[str], *, scripts: int = 3) -> bytes:
    """An article page as news sites serve them: the paragraphs inside ``<article>``, with
    navigation, ``scripts`` inline scripts between paragraphs, related links and a footer around."""
    noise = [
        f'<script>window.dataLayer = window.dataLayer || []; var s{i} = "SCRIPT-TEXT {i}";</script>'
        for i in range(scripts)
    ]
    body = []
    for i, paragraph in enumerate(paragraphs):
        body.append(f"<p>{html_escape(paragraph)}</p>")
        if i < len(noise):
            body.append(noise[i])
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html_escape(title)} | Loopback News</title>"
        "<style>.STYLE-TEXT { color: red }</style>"
        '<script src="/static/app.js"></script>'
        "</head><body>"
        '<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a>'
        " <a href='/weather'>Weather</a></nav></header>"
        f"<main><article><h1>{html_escape(title)}</h1>"
        '<p class="byline">By a staff correspondent</p>'
        f"{''.join(body)}"
        "<noscript>NOSCRIPT-TEXT enable JavaScript</noscript>"
        "</article>"
        '<aside><h2>Most read</h2><ul><li><a href="/a">Heatwave grips the south</a></li>'
        '<li><a href="/b">Cup final tickets sell out</a></li></ul></aside></main>'
        "<footer>© Loopback News. All rights reserved. Cookies policy.</footer>"
        "</body></html>"
    ).encode()


def summary_feed(items: Sequence[dict[str, str]]) -> bytes:
    """An RSS 2.0 feed whose items have a title, a link and a one-sentence description only."""
    parts = [
        "<item>"
        f"<title>{escape(i['title'])}</title><link>{escape(i['link'])}</link>"
        f"<guid>{escape(i['link'])}</guid><description>{escape(i['summary'])}</description>"
        "</item>"
        for i in items
    ]
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>Loopback News</title><link>http://127.0.0.1/</link><description>t</description>"
        f"{''.join(parts)}</channel></rss>\n"
    ).encode()


@dataclass(frozen=True)
class Hit:
    path: str
    arrived: float
    answered: float


class PageServer(MisbehavingServer):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Hit] = []
        self._hits = threading.Lock()

    def hits(self, prefix: str = "") -> list[Hit]:
        with self._hits:
            return [h for h in self.log if h.path.startswith(prefix)]

    def serve(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "text/html; charset=utf-8",
        status: int = 200,
        pause: float = 0.0,
    ) -> str:
        """Answer ``path`` with ``body`` after ``pause`` seconds; returns its absolute URL."""

        def behaviour(ex: Exchange) -> None:
            arrived = time.monotonic()
            if pause:
                ex.stopping.wait(pause)
            ex.respond(status, {"Content-Type": content_type}, body)
            with self._hits:
                self.log.append(Hit(ex.request.path, arrived, time.monotonic()))

        self.route(path, behaviour)
        return self.url(path)

    def serve_with(self, path: str, behaviour: Callable[[Exchange], None]) -> str:
        """Answer ``path`` with a custom behaviour (timestamped like :meth:`serve`)."""

        def timed(ex: Exchange) -> None:
            arrived = time.monotonic()
            behaviour(ex)
            with self._hits:
                self.log.append(Hit(ex.request.path, arrived, time.monotonic()))

        self.route(path, timed)
        return self.url(path)


@contextlib.contextmanager
def page_server() -> Iterator[PageServer]:
    server = PageServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
