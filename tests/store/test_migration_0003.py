"""Migration 0003 (article pages) up and down with rows present, SQLite and PostgreSQL: existing
articles say their body came from the feed, and going down loses no article, classification or
sighting (SQLite must not rebuild ``articles``, which other tables point at)."""

from __future__ import annotations

from helpers import NOW
from sqlalchemy import inspect, text

from pipeline.store.db import downgrade_database, make_engine, upgrade_database

T = NOW.replace(tzinfo=None)


def _counts(conn) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
        for table in ("articles", "classifications", "sightings")
    )


def test_0003_upgrade_and_downgrade_with_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_database(engine, "0002")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO feeds (id, url, name, consecutive_failures) VALUES ('f', 'https://f.example/rss', 'F', 0)"
            )
        )
        for i in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO articles (id, key, feed_id, title, summary, body, lang, first_seen_at, updated_at, content_hash, revision) "
                    "VALUES (:i, :k, 'f', :t, 's', 'feed body', 'en', :now, :now, :h, 1)"
                ),
                {"i": i, "k": f"k{i}", "t": f"Title {i}", "h": f"h{i}", "now": T},
            )
            conn.execute(
                text(
                    "INSERT INTO classifications (article_id, revision, model_version, score, threshold, flagged, regimes, evidence, classified_at) "
                    "VALUES (:i, 1, 'm1', 0.2, 0.5, false, '[]', '{}', :now)"
                ),
                {"i": i, "now": T},
            )
            conn.execute(
                text("INSERT INTO sightings (article_id, feed_id, seen_at) VALUES (:i, 'f', :now)"),
                {"i": i, "now": T},
            )
    upgrade_database(engine, "0003")
    with engine.begin() as conn:
        sources = conn.execute(text("SELECT body_source, page_fetched_at FROM articles")).all()
        assert sources == [("feed", None), ("feed", None)]
        conn.execute(
            text(
                "UPDATE articles SET body = 'page text', body_source = 'page', page_fetched_at = :now WHERE id = 1"
            ),
            {"now": T},
        )
        conn.execute(
            text(
                "INSERT INTO page_fetches (article_id, revision, host, status, trigger, bytes, fetched_at) "
                "VALUES (1, 1, 'f.example', 'ok', 'band', 10, :now)"
            ),
            {"now": T},
        )
        assert _counts(conn) == (2, 2, 2)
    downgrade_database(engine, "0002")
    assert "page_fetches" not in inspect(engine).get_table_names()
    assert not {"body_source", "page_fetched_at"} & {
        c["name"] for c in inspect(engine).get_columns("articles")
    }
    with engine.begin() as conn:
        assert _counts(conn) == (2, 2, 2)
        assert conn.execute(text("SELECT body FROM articles WHERE id = 1")).scalar() == "page text"
    upgrade_database(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM page_fetches")).scalar() == 0
        assert {r[0] for r in conn.execute(text("SELECT body_source FROM articles"))} == {"feed"}
    engine.dispose()
