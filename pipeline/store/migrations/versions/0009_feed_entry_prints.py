"""feed entry prints: the entries a feed's last stored document held, so a changed feed's known entries
are not normalised again

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:00:00

Adds ``feeds.entry_prints`` (issue 13 item 5, "only new entries of a changed feed are normalised"):
a short hash of each raw entry (its title, text, links and id exactly as the feed gave them) of the
last document that was parsed and stored, space-separated, prefixed with the hashing scheme. The next
parse of the feed skips the normalisation and storing of an entry whose raw hash is among them (it is
a known article whose content has not changed) and counts it as a duplicate, as storing it would
have. NULL until a feed's next successful fetch: that parse normalises every entry, as before. Plain
``ALTER TABLE`` on every backend (a nullable column, no index). Downgrade drops the column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("entry_prints", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("feeds", "entry_prints")
