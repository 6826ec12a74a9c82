"""story prints: the stored story fingerprint of every grouped article

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 20:30:00

Adds the ``story_prints`` table (issue 13 item 5, "the story step's cost proportional to what is new,
not to the database"): one row per article placed in a story, holding its MinHash signature and
anchors for the revision and fingerprint scheme they were computed from. The stories step indexes the
story window from these rows instead of re-reading and re-hashing every member's text each run. An
existing database starts with no rows: the next run computes the window's prints once (as it did every
run before) and stores them. Rows go with their article (``ON DELETE CASCADE``). Downgrade drops the
table; nothing else refers to it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "story_prints",
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.Column("anchors", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_story_prints_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("article_id", name=op.f("pk_story_prints")),
    )


def downgrade() -> None:
    op.drop_table("story_prints")
