"""stories, update alerts and digests

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 04:27:42.060942

Generated with ``alembic revision --autogenerate`` against a fresh database at 0001, then adjusted so
that it upgrades and downgrades with rows present, on SQLite (batch mode) and PostgreSQL:

* every existing alert becomes the ``new`` alert of a one-article story (its article is the lead);
* ``alerts.story_id`` is added nullable, filled, then made NOT NULL;
* SQLite rebuilds a table in batch mode by copy, drop and rename, and with ``foreign_keys=ON`` it
  refuses to drop ``alerts`` while ``deliveries`` rows point at it (``PRAGMA foreign_keys`` cannot be
  switched off inside the migration's transaction). So the ``deliveries → alerts`` foreign key is
  dropped before ``alerts`` is rebuilt and created again afterwards, in both directions.

Downgrade drops what 0001 cannot represent: update alerts (0001 allows one alert per article) with
their deliveries, digests with their items and deliveries, and stories.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pipeline.store.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=500), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("created_at", pipeline.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
        sa.UniqueConstraint(
            "day", "channel", "recipient", name=op.f("uq_digests_day_channel_recipient")
        ),
    )
    op.create_table(
        "stories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_article_id", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("alerted_severity", sa.String(length=16), nullable=True),
        sa.Column("regimes", sa.JSON(), nullable=False),
        sa.Column("created_at", pipeline.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", pipeline.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_article_id"],
            ["articles.id"],
            name=op.f("fk_stories_lead_article_id_articles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stories")),
        sa.UniqueConstraint("lead_article_id", name=op.f("uq_stories_lead_article_id")),
    )
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stories_created_at"), ["created_at"], unique=False)

    # deliveries first: its new columns, and (for SQLite's rebuild of alerts) no FK to alerts yet.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deliveries_alert_id_alerts"), type_="foreignkey")
        batch_op.add_column(sa.Column("digest_id", sa.Integer(), nullable=True))
        batch_op.alter_column("alert_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_index(batch_op.f("ix_deliveries_digest_id"), ["digest_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_digest_id_digests"), "digests", ["digest_id"], ["id"]
        )

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("story_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="new", nullable=False)
        )
        batch_op.add_column(sa.Column("previous_severity", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))

    # Every existing alert becomes the first alert of a story led by its article.
    op.execute(
        "INSERT INTO stories (lead_article_id, severity, alerted_severity, regimes, created_at, "
        "updated_at) SELECT article_id, severity, severity, regimes, created_at, updated_at "
        "FROM alerts ORDER BY id"
    )
    op.execute(
        "UPDATE alerts SET story_id = (SELECT stories.id FROM stories "
        "WHERE stories.lead_article_id = alerts.article_id)"
    )
    op.execute(
        "UPDATE articles SET story_id = (SELECT stories.id FROM stories "
        "WHERE stories.lead_article_id = articles.id) "
        "WHERE id IN (SELECT lead_article_id FROM stories)"
    )

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column("story_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f("uq_alerts_article_id"), type_="unique")
        batch_op.create_index(batch_op.f("ix_alerts_article_id"), ["article_id"], unique=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_alerts_story_id_severity"), ["story_id", "severity"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_story_id_stories"), "stories", ["story_id"], ["id"]
        )

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_alert_id_alerts"), "alerts", ["alert_id"], ["id"]
        )

    # After alerts was rebuilt: SQLite cannot rebuild a table other rows point at (see above).
    op.create_table(
        "digest_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=500), nullable=False),
        sa.Column("created_at", pipeline.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_digest_items_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(
            ["digest_id"], ["digests.id"], name=op.f("fk_digest_items_digest_id_digests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_items")),
        sa.UniqueConstraint(
            "alert_id",
            "channel",
            "recipient",
            name=op.f("uq_digest_items_alert_id_channel_recipient"),
        ),
    )
    with op.batch_alter_table("digest_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_digest_items_digest_id"), ["digest_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("digest_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digest_items_digest_id"))
    op.drop_table("digest_items")

    # What 0001 cannot hold: update alerts (one alert per article there) and digest messages.
    op.execute(
        "DELETE FROM deliveries WHERE alert_id IS NULL "
        "OR alert_id IN (SELECT id FROM alerts WHERE kind <> 'new')"
    )
    op.execute("DELETE FROM alerts WHERE kind <> 'new'")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deliveries_digest_id_digests"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_deliveries_alert_id_alerts"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_deliveries_digest_id"))
        batch_op.alter_column("alert_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("digest_id")

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_alerts_story_id_stories"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_alerts_story_id_severity"), type_="unique")
        batch_op.drop_index(batch_op.f("ix_alerts_article_id"))
        batch_op.create_unique_constraint(batch_op.f("uq_alerts_article_id"), ["article_id"])
        batch_op.drop_column("details")
        batch_op.drop_column("previous_severity")
        batch_op.drop_column("kind")
        batch_op.drop_column("story_id")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_alert_id_alerts"), "alerts", ["alert_id"], ["id"]
        )

    op.execute("UPDATE articles SET story_id = NULL")
    with op.batch_alter_table("stories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stories_created_at"))

    op.drop_table("stories")
    op.drop_table("digests")
