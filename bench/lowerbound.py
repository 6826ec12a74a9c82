"""The lower bound issue 13 measures against (run by bench/cycles.py, one cycle).

The least work that still gets the items into a database: httpx (8 threads, keep-alive, conditional
GET with the previous cycle's ETag/Last-Modified), lxml on the bytes, one batched ``executemany``
per feed and one commit per cycle into SQLite. No scoring, no normalisation, no mail.

    python bench/lowerbound.py --urls URLS.txt --db lower.db   # prints one JSON object
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from lxml import etree


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
        " summary TEXT, published TEXT)"
    )
    state = {u: (e, m) for u, e, m in db.execute("SELECT url, etag, modified FROM feeds")}
    limits = httpx.Limits(max_connections=args.threads, max_keepalive_connections=args.threads)
    client = httpx.Client(limits=limits, timeout=30)

    def fetch(url: str) -> tuple[str, int, list[tuple[str | None, ...]], str | None, str | None]:
        etag, modified = state.get(url, (None, None))
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        resp = client.get(url, headers=headers)
        if resp.status_code == 304:
            return url, 304, [], etag, modified
        root = etree.fromstring(resp.content)
        rows = [
            (
                it.findtext("link"),
                url,
                it.findtext("title"),
                it.findtext("description"),
                it.findtext("pubDate"),
            )
            for it in root.iter("item")
        ]
        return url, 200, rows, resp.headers.get("etag"), resp.headers.get("last-modified")

    new = seen = not_modified = 0
    with ThreadPoolExecutor(args.threads) as pool:
        for url, status, rows, etag, modified in pool.map(fetch, urls):
            if status == 304:
                not_modified += 1
                continue
            seen += len(rows)
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO items VALUES (?, ?, ?, ?, ?)", rows)
            new += db.total_changes - before
            db.execute("INSERT OR REPLACE INTO feeds VALUES (?, ?, ?)", (url, etag, modified))
    db.commit()
    db.close()
    client.close()
    out = {
        "feeds": len(urls),
        "not_modified": not_modified,
        "entries_seen": seen,
        "articles_new": new,
        "flagged": 0,
        "wall_s": time.perf_counter() - started,
    }
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
