"""The durable activity log: writing activities in commit order and reading them back through
the visibility policy.

PostgreSQL hands out sequence values at insert time, so a transaction can commit id 11 while
id 10 is still uncommitted; a reader asking "after 10" would then skip 10 for ever. Writers
therefore take one transaction-scoped advisory lock before inserting an activity and keep it
until commit: ids become visible strictly in order. (SQLite serialises writers anyway.)
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from partners.models import User
from shared_records.models import Activity, Case, TimelineEntry
from shared_records.policy import case_visible_to, entry_visible_to

# An arbitrary constant naming the feed's advisory lock (ASCII of "WKFEED").
FEED_LOCK_KEY = 0x574B46454544
PENDING_KEY = "wertkette_pending_activities"
NOTIFICATIONS_KEY = "wertkette_pending_notifications"


def record(session: Session, activity: Activity) -> Activity:
    """Add an activity to the current transaction, in commit order; the caller commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(FEED_LOCK_KEY)))
    session.add(activity)
    session.flush()
    session.info.setdefault(PENDING_KEY, []).append(activity.id)
    return activity


def visible_activities(actor: User) -> sa.Select[Activity]:
    """Activities the actor may see now: of visible cases, and for timeline entries only
    those whose audience includes the actor's organisation."""
    org_id = actor.organization_id
    entry_ok = sa.exists().where(TimelineEntry.id == Activity.entry_id, entry_visible_to(org_id))
    return (
        sa.select(Activity)
        .join(Case, Case.id == Activity.case_id)
        .where(case_visible_to(org_id))
        .where(sa.or_(Activity.entry_id.is_(None), entry_ok))
    )


def activities_after(session: Session, actor: User, after: int, limit: int) -> list[Activity]:
    stmt = visible_activities(actor).where(Activity.id > after).order_by(Activity.id).limit(limit)
    return list(session.scalars(stmt))


def recent_activities(session: Session, actor: User, limit: int) -> list[Activity]:
    """The newest activities the actor may see, newest first (the activity panel on load)."""
    stmt = visible_activities(actor).order_by(Activity.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def latest_id(session: Session) -> int:
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.max(Activity.id), 0))) or 0)
