"""delivery latency: how long after publication and after first sight an alert was sent

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 11:30:00

Adds ``deliveries.latency_published_s`` and ``deliveries.latency_first_seen_s`` (issue 11 item 5):
whole seconds from the story lead's publication time and from our first sight of it to the sending
time stamped in ``deliveries.sent_at`` and the message's ``Date``, the figures the message itself
shows (the outbox renders each message when it sends it). Set when an alert's row is marked
``sent``; NULL for pending and failed rows, for digest rows (each digest entry shows its own
figures) and for a feed that gave no publication time (``latency_published_s`` only). Rows sent
before this revision keep NULL: their latency can still be derived from ``sent_at`` and the
article's times. Plain ``ALTER TABLE`` on every backend (nullable columns, no index): no SQLite batch
rebuild. Downgrade drops the two columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("latency_published_s", sa.Integer(), nullable=True))
    op.add_column("deliveries", sa.Column("latency_first_seen_s", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("deliveries", "latency_first_seen_s")
    op.drop_column("deliveries", "latency_published_s")
