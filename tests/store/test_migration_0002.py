"""Migration 0002 (stories, update alerts, digests) up and down with rows present, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from helpers import NOW
from sqlalchemy import inspect, text

from pipeline.store.db import downgrade_database, make_engine, upgrade_database

T = NOW.replace(tzinfo=None)


def _seed_0001(conn) -> None:
    """Rows as a 0001 database holds them: two alerts with deliveries (one sent, one pending)."""
    conn.execute(
        text(
            "INSERT INTO feeds (id, url, name, consecutive_failures) VALUES ('f', 'https://f.example/rss', 'F', 0)"
        )
    )
    for i in (1, 2, 3):
        conn.execute(
            text(
                "INSERT INTO articles (id, key, feed_id, title, summary, body, lang, first_seen_at, updated_at, content_hash, revision) "
                "VALUES (:i, :k, 'f', :t, 's', '', 'en', :now, :now, :h, 1)"
            ),
            {"i": i, "k": f"k{i}", "t": f"Title {i}", "h": f"h{i}", "now": T},
        )
        conn.execute(
            text(
                "INSERT INTO classifications (id, article_id, revision, model_version, score, threshold, flagged, regimes, evidence, classified_at) "
                "VALUES (:i, :i, 1, 'm1', 0.95, 0.5, :f, '[\"dprk\"]', '{}', :now)"
            ),
            {"i": i, "f": i < 3, "now": T},
        )
    for i in (1, 2):
        conn.execute(
            text(
                "INSERT INTO alerts (id, article_id, classification_id, score, severity, regimes, created_at, updated_at) "
                "VALUES (:i, :i, :i, 0.95, 'high', '[\"dprk\"]', :now, :now)"
            ),
            {"i": i, "now": T},
        )
        conn.execute(
            text(
                "INSERT INTO deliveries (alert_id, subscription_id, channel, recipient, status, attempts, next_attempt_at, message_id, created_at) "
                "VALUES (:i, 's', 'email', 'a@example.org', :st, 0, :now, :mid, :now)"
            ),
            {"i": i, "st": "sent" if i == 1 else "pending", "mid": f"<m{i}@x>", "now": T},
        )


def test_0002_upgrade_and_downgrade_with_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade_database(engine, "0001")
    with engine.begin() as conn:
        _seed_0001(conn)
    upgrade_database(engine, "0002")
    with engine.begin() as conn:
        stories = conn.execute(
            text("SELECT id, lead_article_id, severity, alerted_severity FROM stories ORDER BY id")
        ).all()
        assert [(lead, sev, alerted) for _, lead, sev, alerted in stories] == [
            (1, "high", "high"),
            (2, "high", "high"),
        ]
        alerts = conn.execute(
            text(
                "SELECT a.id, a.story_id, a.kind, s.lead_article_id FROM alerts a JOIN stories s ON s.id = a.story_id ORDER BY a.id"
            )
        ).all()
        assert [(a, kind, lead) for a, _, kind, lead in alerts] == [(1, "new", 1), (2, "new", 2)]
        assert dict(conn.execute(text("SELECT id, story_id FROM articles")).all()) == {
            1: stories[0][0],
            2: stories[1][0],
            3: None,
        }
        assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar() == 2
        # Rows only 0002 can hold: an update alert, a digest with its item and its message.
        story = stories[0][0]
        conn.execute(
            text(
                "INSERT INTO alerts (id, article_id, story_id, kind, previous_severity, classification_id, score, severity, regimes, created_at, updated_at) "
                "VALUES (3, 1, :s, 'update', 'high', 1, 0.95, 'critical', '[\"dprk\"]', :now, :now)"
            ),
            {"s": story, "now": T + timedelta(hours=1)},
        )
        conn.execute(
            text(
                "INSERT INTO digests (id, day, channel, recipient, items, created_at) VALUES (1, '2026-11-27', 'email', 'd@example.org', 1, :now)"
            ),
            {"now": T},
        )
        conn.execute(
            text(
                "INSERT INTO digest_items (alert_id, subscription_id, channel, recipient, created_at, digest_id) VALUES (2, 's', 'email', 'd@example.org', :now, 1)"
            ),
            {"now": T},
        )
        for alert_id, digest_id, mid in ((3, None, "<u@x>"), (None, 1, "<d@x>")):
            conn.execute(
                text(
                    "INSERT INTO deliveries (alert_id, digest_id, subscription_id, channel, recipient, status, attempts, next_attempt_at, message_id, created_at) "
                    "VALUES (:a, :d, 's', 'email', :r, 'pending', 0, :now, :mid, :now)"
                ),
                {
                    "a": alert_id,
                    "d": digest_id,
                    "r": "d@example.org" if digest_id else "a@example.org",
                    "mid": mid,
                    "now": T,
                },
            )
    downgrade_database(engine, "0001")
    names = inspect(engine).get_table_names()
    assert not {"stories", "digests", "digest_items"} & set(names)
    with engine.begin() as conn:
        assert [r[0] for r in conn.execute(text("SELECT id FROM alerts ORDER BY id"))] == [1, 2]
        assert sorted(r[0] for r in conn.execute(text("SELECT message_id FROM deliveries"))) == [
            "<m1@x>",
            "<m2@x>",
        ]
        assert (
            conn.execute(text("SELECT count(*) FROM articles WHERE story_id IS NOT NULL")).scalar()
            == 0
        )
    upgrade_database(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM stories")).scalar() == 2
        assert (
            conn.execute(text("SELECT count(*) FROM alerts WHERE story_id IS NULL")).scalar() == 0
        )
    engine.dispose()
