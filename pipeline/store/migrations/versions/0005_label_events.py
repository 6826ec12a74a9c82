"""label events: analysts' labels on articles, append-only

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 09:30:00

Adds the ``label_events`` table (issue 12): one row per label an analyst gives an article (relevant,
not relevant or unsure) from the command line, the review page, an email link or an import, with the
analyst, the time, the model version and score that flagged the item, a note, and for an email link
the SHA-256 of its token (unique: a token is spent once). Rows are never updated or deleted; an
article's current label is its latest event. Downgrade drops the table (and with it the labels:
export them first with ``sanctions-watch labels export``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pipeline.store.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("analyst", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", pipeline.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"], ["articles.id"], name=op.f("fk_label_events_article_id_articles")
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_label_events_alert_id_alerts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_events")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_label_events_token_sha256")),
    )
    op.create_index("ix_label_events_article", "label_events", ["article_id", "id"])
    op.create_index(op.f("ix_label_events_created_at"), "label_events", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_label_events_created_at"), table_name="label_events")
    op.drop_index("ix_label_events_article", table_name="label_events")
    op.drop_table("label_events")
