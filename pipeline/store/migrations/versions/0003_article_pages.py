"""article pages: where an article's body came from, and the page fetch log

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 09:00:00

Adds ``articles.body_source`` ("feed" for every existing row, through the server default) and
``articles.page_fetched_at``, and the ``page_fetches`` table (one row per article revision whose
page the full-text cascade fetched, refused or skipped; see pipeline/ingest/article.py).

The ``articles`` columns are added and dropped with plain ``ALTER TABLE`` on every backend, never
through SQLite's batch rebuild: rebuilding ``articles`` drops the table, and with
``foreign_keys=ON`` that deletes (``ON DELETE CASCADE``) or refuses on the rows of sightings,
classifications, stories and alerts that point at it. SQLite has supported ``DROP COLUMN`` since
3.35 (neither column is indexed or constrained). Downgrade drops the page log and the two columns:
a body fetched from a page stays in ``articles.body`` (0002 cannot say where it came from).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pipeline.store.schema

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "articles",
        sa.Column("body_source", sa.String(length=8), server_default="feed", nullable=False),
    )
    op.add_column(
        "articles",
        sa.Column(
            "page_fetched_at", pipeline.store.schema.UTCDateTime(timezone=True), nullable=True
        ),
    )
    op.create_table(
        "page_fetches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("head_score", sa.Float(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("fetched_at", pipeline.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_page_fetches_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_fetches")),
        sa.UniqueConstraint(
            "article_id", "revision", name=op.f("uq_page_fetches_article_id_revision")
        ),
    )
    op.create_index(
        op.f("ix_page_fetches_fetched_at"), "page_fetches", ["fetched_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_page_fetches_fetched_at"), table_name="page_fetches")
    op.drop_table("page_fetches")
    op.drop_column("articles", "page_fetched_at")
    op.drop_column("articles", "body_source")
