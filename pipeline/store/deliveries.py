"""Read-only questions about the outbox (``deliveries``): how much is waiting, what is stuck.

Claiming and marking rows is :mod:`pipeline.deliver.outbox`; these queries never write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pipeline.store.schema import Delivery

__all__ = ["count_pending", "stuck_deliveries"]

_WAITING = ("pending", "sending")


def count_pending(session: Session) -> int:
    """Deliveries not yet sent or failed (pending, or claimed by a sender right now)."""
    stmt = select(func.count()).select_from(Delivery).where(Delivery.status.in_(_WAITING))
    return int(session.scalar(stmt) or 0)


def stuck_deliveries(session: Session, *, created_before: datetime) -> list[Delivery]:
    """Deliveries still waiting that were recorded before ``created_before``, oldest first."""
    stmt = (
        select(Delivery)
        .where(Delivery.status.in_(_WAITING), Delivery.created_at < created_before)
        .order_by(Delivery.id)
    )
    return list(session.scalars(stmt))
