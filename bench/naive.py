"""The naive script issue 13 measures sanctions-watch against (run by bench/cycles.py, one cycle).

What a newcomer would write in an afternoon: ``feedparser.parse(url)`` in 8 threads (with the ETag
and Last-Modified of the previous cycle, so unchanged feeds answer 304), a keyword regex as the
"classifier", and ``INSERT OR IGNORE`` with a commit per row into SQLite. No mail.

    python bench/naive.py --urls URLS.txt --db naive.db   # prints one JSON object
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import feedparser

KEYWORDS = re.compile(
    r"\b(sanction\w*|embargo\w*|ballistic|missile\w*|ship-to-ship|panel of experts|"
    r"arms (?:transfer|shipment|deliver)\w*|smuggl\w*|designated|UN Security Council)\b",
    re.IGNORECASE,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--urls", type=Path, required=True)
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args(argv)
    urls = args.urls.read_text().split()
    started = time.perf_counter()
    db = sqlite3.connect(args.db)
    db.execute("CREATE TABLE IF NOT EXISTS feeds (url TEXT PRIMARY KEY, etag TEXT, modified TEXT)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS items (link TEXT PRIMARY KEY, feed TEXT, title TEXT,"
        " summary TEXT, published TEXT, flagged INTEGER)"
    )
    db.commit()
    state = {u: (e, m) for u, e, m in db.execute("SELECT url, etag, modified FROM feeds")}

    def fetch(url: str) -> tuple[str, Any]:
        etag, modified = state.get(url, (None, None))
        return url, feedparser.parse(url, etag=etag, modified=modified)

    new = seen = flagged = not_modified = 0
    with ThreadPoolExecutor(args.threads) as pool:
        for url, parsed in pool.map(fetch, urls):
            if parsed.get("status") == 304:
                not_modified += 1
                continue
            for e in parsed.entries:
                seen += 1
                text = f"{e.get('title', '')} {e.get('summary', '')}"
                hit = bool(KEYWORDS.search(text))
                cur = db.execute(
                    "INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?, ?)",
                    (e.get("link"), url, e.get("title"), e.get("summary"), e.get("published"), hit),
                )
                db.commit()
                new += cur.rowcount
                flagged += hit and cur.rowcount
            db.execute(
                "INSERT OR REPLACE INTO feeds VALUES (?, ?, ?)",
                (url, parsed.get("etag"), parsed.get("modified")),
            )
            db.commit()
    db.close()
    out = {
        "feeds": len(urls),
        "not_modified": not_modified,
        "entries_seen": seen,
        "articles_new": new,
        "flagged": flagged,
        "wall_s": time.perf_counter() - started,
    }
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
