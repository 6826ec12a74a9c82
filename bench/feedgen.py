"""Deterministic benchmark feeds, served on loopback with ETag / Last-Modified (304) support.

Feed ``n`` at version ``v`` is an RSS 2.0 document of 50 items, newest first: the items numbered
``5v`` to ``5v + 49`` (so each new version adds 5 new items at the top and drops the 5 oldest). Item
``(n, i)`` is always the same text: a title and a 300-1,500 character description composed from
sentences of the labelled corpus (the ``data/corpus`` files named in :data:`SOURCES`, fixed so that
adding training data does not change the benchmark's stream) in the feed's language, about 3 % of them
from breach (label 1) items, the rest from everyday and hard-negative items, so the classifier reads
realistic text. Everything is a function of ``(n, i)`` and the seed: every contender of a run, and
every run, reads the same bytes.

:class:`FeedSite` writes the documents to a folder (so the server holds no feed in memory) and
serves them with a threaded HTTP server that answers ``If-None-Match`` (preferred) and
``If-Modified-Since`` with 304. Item links are ``<site>/a/<feed>/<item>``, which lets the benchmark
tell which item a mail is about.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "corpus"
# The corpus files the stream is composed from: the corpus as of the first results in bench/results/.
# Training files added later are not read, so every run, before and after new data, reads the same
# bytes (a new file here changes the stream: rerun the whole benchmark then, and say so in results).
SOURCES = (
    "africa_haiti.jsonl", "articles_dprk_iran.jsonl", "articles_world.jsonl", "dprk.jsonl",
    "everyday_a.jsonl", "everyday_b.jsonl", "hard_negatives.jsonl", "mideast.jsonl",
    "multilingual.jsonl", "round2_negatives.jsonl", "round2_positives.jsonl",
    "round3_context.jsonl", "round3_missiles.jsonl", "round4_iraq.jsonl", "round5_targeted.jsonl",
    "round6_articles.jsonl", "round6_kinds.jsonl", "round6_negatives.jsonl",
)  # fmt: skip
ITEMS_PER_FEED = 50
NEW_PER_CHANGE = 5
BREACH_RATE = 0.03
_SPLIT = re.compile(r"(?<=[.!?。！？])\s+|\n+")
LINK_RE = re.compile(r"/a/(f\d+)/(\d+)")


@dataclass(slots=True)
class Sentences:
    """Corpus sentences by language and label (1: breach items, 0: the rest)."""

    pools: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    titles: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    languages: list[tuple[str, int]] = field(default_factory=list)  # (lang, weight)

    @classmethod
    def load(cls, folder: Path = CORPUS) -> Sentences:
        out = cls()
        weights: dict[str, int] = {}
        for path in (folder / name for name in SOURCES):
            for line in path.read_text(encoding="utf-8").splitlines():
                item = json.loads(line)
                lang, label = item.get("lang") or "en", int(item["label"])
                weights[lang] = weights.get(lang, 0) + 1
                out.titles.setdefault((lang, label), []).append(item["title"])
                text = f"{item.get('summary') or ''}\n{item.get('body') or ''}"
                for s in _SPLIT.split(text):
                    s = s.strip()
                    if len(s) >= 20:
                        out.pools.setdefault((lang, label), []).append(s)
        out.languages = sorted(weights.items())
        return out

    def pool(self, lang: str, label: int) -> tuple[list[str], list[str]]:
        key = (lang, label) if (lang, label) in self.pools else ("en", label)
        return self.pools[key], self.titles[key]


class FeedMaker:
    """Renders feed documents; pure apart from the corpus it reads once."""

    def __init__(self, base_url: str, seed: int = 13) -> None:
        self.base_url = base_url
        self.seed = seed
        self.sentences = Sentences.load()
        langs, weights = zip(*self.sentences.languages, strict=True)
        self._langs: Sequence[str] = langs
        self._weights: Sequence[int] = weights

    def feed_id(self, n: int) -> str:
        return f"f{n:05d}"

    def language(self, n: int) -> str:
        rng = random.Random(f"{self.seed}:lang:{n}")
        return rng.choices(self._langs, weights=self._weights)[0]

    def item(self, n: int, i: int) -> tuple[str, str, bool]:
        """(title, description, is_breach) of item ``i`` of feed ``n``."""
        rng = random.Random(f"{self.seed}:{n}:{i}")
        breach = rng.random() < BREACH_RATE
        pool, titles = self.sentences.pool(self.language(n), int(breach))
        title = rng.choice(titles)
        target = rng.randint(300, 1500)
        parts: list[str] = []
        size = 0
        while size < target:
            s = rng.choice(pool)
            parts.append(s)
            size += len(s) + 1
        text = " ".join(parts)[:target]
        return title, text, breach

    def render(self, n: int, version: int, published: float) -> bytes:
        """Feed ``n`` at ``version``: items ``5 * version + 49`` down to ``5 * version``; the
        newest item published at ``published`` (a Unix time), each older one a minute earlier."""
        fid = self.feed_id(n)
        first = NEW_PER_CHANGE * version
        out = [
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
            f"<title>Bench feed {fid}</title><link>{self.base_url}/</link>",
            f"<description>Generated feed {fid}</description>",
            f"<language>{self.language(n)}</language>",
        ]
        for pos, i in enumerate(range(first + ITEMS_PER_FEED - 1, first - 1, -1)):
            title, text, _ = self.item(n, i)
            link = f"{self.base_url}/a/{fid}/{i}"
            out.append(
                f"<item><title>{escape(title)}</title><link>{link}</link>"
                f'<guid isPermaLink="true">{link}</guid>'
                f"<pubDate>{formatdate(published - 60 * pos, usegmt=True)}</pubDate>"
                f"<description>{escape(text)}</description></item>"
            )
        out.append("</channel></rss>\n")
        return "".join(out).encode("utf-8")


@dataclass(slots=True)
class _Doc:
    path: Path
    etag: str
    last_modified: str  # an HTTP date
    modified_at: float


class FeedSite:
    """A folder of feed documents and a loopback HTTP server that serves them conditionally."""

    def __init__(self, folder: Path, seed: int = 13) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.seed = seed
        self.docs: dict[str, _Doc] = {}
        self.versions: dict[int, list[tuple[int, float]]] = {}  # feed -> [(version, time)]
        self.maker: FeedMaker | None = None
        self.requests = {"200": 0, "304": 0, "404": 0}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        assert self.maker is not None
        return self.maker.base_url

    def feed_url(self, n: int) -> str:
        assert self.maker is not None
        return f"{self.url}/feeds/{self.maker.feed_id(n)}.xml"

    def publish(self, feeds: Sequence[int], version: int, when: float) -> None:
        """Write ``feeds`` at ``version``, first seen (published) at ``when``."""
        assert self.maker is not None
        last = max((d.modified_at for d in self.docs.values()), default=0.0)
        when = max(when, last + 1.0)  # Last-Modified has 1 s resolution: always move it on
        for n in feeds:
            data = self.maker.render(n, version, when)
            name = f"{self.maker.feed_id(n)}.xml"
            path = self.folder / name
            path.write_bytes(data)
            etag = '"' + hashlib.sha1(data).hexdigest()[:20] + '"'
            self.docs[name] = _Doc(path, etag, formatdate(when, usegmt=True), when)
            self.versions.setdefault(n, []).append((version, when))

    def first_seen(self, feed_id: str, item: int) -> float | None:
        """When item ``item`` of ``feed_id`` first appeared in its feed (None if it never did)."""
        n = int(feed_id[1:])
        for version, when in self.versions.get(n, []):
            if NEW_PER_CHANGE * version <= item < NEW_PER_CHANGE * version + ITEMS_PER_FEED:
                return when
        return None

    @contextmanager
    def serve(self) -> Iterator[FeedSite]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _count(self, code: str) -> None:
                with site._lock:
                    site.requests[code] += 1

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                doc = site.docs.get(name) if self.path.startswith("/feeds/") else None
                if doc is None:
                    self._count("404")
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                fresh = False
                if inm is not None:
                    fresh = doc.etag in [t.strip() for t in inm.split(",")]
                elif ims is not None:
                    try:
                        fresh = parsedate_to_datetime(ims).timestamp() >= int(doc.modified_at)
                    except (TypeError, ValueError):
                        fresh = False
                if fresh:
                    self._count("304")
                    self.send_response(304)
                    self.send_header("ETag", doc.etag)
                    self.send_header("Last-Modified", doc.last_modified)
                    self.end_headers()
                    return
                data = doc.path.read_bytes()
                self._count("200")
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("ETag", doc.etag)
                self.send_header("Last-Modified", doc.last_modified)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256

        server = Server(("127.0.0.1", 0), Handler)
        self.maker = FeedMaker(f"http://127.0.0.1:{server.server_address[1]}", self.seed)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
