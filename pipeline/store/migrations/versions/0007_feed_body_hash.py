"""feed body hash: a feed whose server ignores conditional requests is not parsed when unchanged

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 14:15:00

Adds ``feeds.body_sha256`` (issue 13 item 5): the SHA-256 of the last feed body that was parsed and
stored successfully. An ingest run that receives the very same bytes again (a server that ignores
``If-None-Match`` and ``If-Modified-Since``) records the fetch as not modified without parsing it, as
it does for a 304. NULL until a feed's next successful fetch. Plain ``ALTER TABLE`` on every backend
(a nullable column, no index): no SQLite batch rebuild. Downgrade drops the column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("body_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("feeds", "body_sha256")
