"""feed health: the open alarm of each feed and when operators were last told

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 09:20:00

Adds ``feeds.alarm`` ("failing", "silent" or "few_items"; NULL while healthy), ``feeds.alarm_since``
and ``feeds.alarm_notified_at`` (pipeline/health/feeds.py): a feed in trouble notifies the operators
once, then only on recovery or after ``health.reminder_hours``. Plain ``ALTER TABLE`` on every
backend (nullable columns, no index): no SQLite batch rebuild of ``feeds``, whose rows other tables
reference. Downgrade drops the three columns; the next check after an upgrade opens fresh alarms.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pipeline.store.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("alarm", sa.String(length=16), nullable=True))
    op.add_column(
        "feeds",
        sa.Column("alarm_since", pipeline.store.schema.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "feeds",
        sa.Column(
            "alarm_notified_at", pipeline.store.schema.UTCDateTime(timezone=True), nullable=True
        ),
    )


def downgrade() -> None:
    op.drop_column("feeds", "alarm_notified_at")
    op.drop_column("feeds", "alarm_since")
    op.drop_column("feeds", "alarm")
