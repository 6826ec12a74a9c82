"""Database growth per stored article, SQLite and PostgreSQL (docs/capacity.md).

Runs one real ``run-once`` cycle (bench/swcycle.py, in a subprocess) over generated feeds
(bench/feedgen.py: 50 items a feed, 300-1,500 characters, ~3 % breach stories) into a fresh database of
each kind, then reports the bytes the database takes per stored article: the whole database (the
file after a WAL checkpoint for SQLite; the sum of the pipeline's tables for PostgreSQL, whose empty
database is ~7 MiB of catalogs) and per table (``dbstat`` / ``pg_total_relation_size``: rows, indexes
and TOAST).

    .venv/bin/python bench/dbsize.py [--feeds 100] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]
        [--out bench/results/dbsize-<date>.json]

PostgreSQL: a database named ``sw_dbsize_<pid>`` is created through the given URL and dropped after.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from cycles import TimedSink, run_child, write_sw_config  # noqa: E402
from feedgen import FeedSite  # noqa: E402

TABLES = (
    "articles",
    "sightings",
    "classifications",
    "fetch_log",
    "stories",
    "alerts",
    "deliveries",
)


def _sqlite_sizes(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    per_table: dict[str, int] = {}
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        indexes = [
            n
            for (n,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name=?", (name,)
            )
        ]
        total = 0
        for obj in [name, *indexes]:
            row = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name=?", (obj,)).fetchone()
            total += int(row[0] or 0)
        per_table[name] = total
    articles = db.execute("SELECT count(*) FROM articles").fetchone()[0]
    db.close()
    return {"total_bytes": path.stat().st_size, "articles": articles, "tables": per_table}


def _pg_sizes(url: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url) as conn:
        total = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        per_table = {
            name: size
            for name, size in conn.execute(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                "WHERE relkind='r' AND relnamespace='public'::regnamespace"
            )
        }
        articles = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
    return {
        "total_bytes": sum(per_table.values()),
        "database_bytes": total,
        "articles": articles,
        "tables": per_table,
    }


def _run(work: Path, site: FeedSite, feeds: int, sink: TimedSink, url: str) -> None:
    cdir = write_sw_config(work, site, feeds, sink.port)
    env = {
        **os.environ,
        "SANCTIONS_WATCH_CONFIG": str(cdir),
        "SANCTIONS_WATCH_DATABASE_URL": url,
    }
    run_child(
        [sys.executable, str(BENCH / "swcycle.py"), "--config", str(cdir), "--run-id", "size"], env
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--feeds", type=int, default=100)
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    out: dict[str, Any] = {"date": date, "feeds": args.feeds}
    with TimedSink() as sink, tempfile.TemporaryDirectory(prefix="sw-dbsize-") as tmp:
        site = FeedSite(Path(tmp) / "feeds")
        with site.serve():
            site.publish(range(args.feeds), 0, datetime.now(UTC).timestamp())
            lite = Path(tmp) / "lite"
            lite.mkdir()
            _run(lite, site, args.feeds, sink, f"sqlite:///{lite / 'size.db'}")
            out["sqlite"] = _sqlite_sizes(lite / "size.db")
            if not args.no_postgres:
                import psycopg

                name = f"sw_dbsize_{os.getpid()}"
                with psycopg.connect(args.postgres, autocommit=True) as admin:
                    admin.execute(f'CREATE DATABASE "{name}"')
                try:
                    url = args.postgres.rsplit("/", 1)[0] + "/" + name
                    pg = Path(tmp) / "pg"
                    pg.mkdir()
                    _run(pg, site, args.feeds, sink, url)
                    out["postgresql"] = _pg_sizes(url)
                finally:
                    with psycopg.connect(args.postgres, autocommit=True) as admin:
                        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    for kind in ("sqlite", "postgresql"):
        if kind in out:
            r = out[kind]
            r["bytes_per_article"] = r["total_bytes"] / max(1, r["articles"])
            print(
                f"{kind}: {r['articles']} articles, {r['total_bytes'] / 2**20:.1f} MiB, "
                f"{r['bytes_per_article']:.0f} bytes per article; by table: "
                + ", ".join(
                    f"{t} {r['tables'].get(t, 0) / max(1, r['articles']):.0f}" for t in TABLES
                )
            )
    dest = args.out or BENCH / "results" / f"dbsize-{date}.json"
    dest.write_text(json.dumps(out, indent=1), encoding="utf-8")
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
