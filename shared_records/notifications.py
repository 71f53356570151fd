"""Reading and marking a person's in-app notifications (mentions)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from partners.models import User
from portal.db import utcnow
from shared_records import policy
from shared_records.models import Case, Notification


def visible_notifications(actor: User) -> sa.Select[Notification]:
    """The actor's notifications about cases it can still see."""
    return (
        sa.select(Notification)
        .join(Case, Case.id == Notification.case_id)
        .where(Notification.user_id == actor.id, policy.case_visible_to(actor.organization_id))
    )


def latest(session: Session, actor: User, limit: int = 20) -> list[Notification]:
    stmt = visible_notifications(actor).order_by(Notification.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def unread_count(session: Session, actor: User) -> int:
    stmt = (
        visible_notifications(actor)
        .where(Notification.read_at.is_(None))
        .with_only_columns(sa.func.count(Notification.id))
    )
    return int(session.scalar(stmt) or 0)


def mark_all_read(session: Session, actor: User) -> None:
    session.execute(
        sa.update(Notification)
        .where(Notification.user_id == actor.id, Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    session.commit()


def notification_json(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.id,
        "kind": notification.kind,
        "case_id": notification.case_id,
        "entry_id": notification.entry_id,
        "actor_user_id": notification.actor_user_id,
        "summary": notification.summary,
        "created_at": notification.created_at.isoformat(),
        "read": notification.read_at is not None,
    }
