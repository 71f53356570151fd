"""@mentions in timeline entries: who is mentioned, limited to people who may see the entry.

A mention is `@` followed by a person's full name or the part of their email address before
the `@` (case-insensitive), e.g. "@Anna Berger" or "@sales". Only active people of the
organisations in the entry's audience that see the case can be mentioned; anyone else named
is ignored, so a mention never tells an outsider about the case."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from partners.models import User
from shared_records import policy
from shared_records.models import Case, Notification, TimelineEntry


def mentioned_users(session: Session, case: Case, entry: TimelineEntry) -> list[User]:
    if "@" not in entry.body:
        return []
    orgs = policy.org_ids_seeing_case(case)
    if entry.audience == "internal":
        orgs &= {entry.organization_id}
    elif entry.audience == "organizations":
        orgs &= {a.organization_id for a in entry.audience_organizations} | {entry.organization_id}
    candidates = session.scalars(
        sa.select(User).where(
            User.organization_id.in_(orgs), User.active.is_(True), User.kind == "person"
        )
    ).all()
    text = entry.body.casefold()
    found = []
    for user in candidates:
        handles = {"@" + user.name.casefold(), "@" + user.email.partition("@")[0].casefold()}
        if user.id != entry.author_user_id and any(h in text for h in handles):
            found.append(user)
    return found


def notify_mentions(session: Session, case: Case, entry: TimelineEntry, author: User) -> list[int]:
    """Add a notification per mentioned person (in the caller's transaction)."""
    ids = []
    for user in mentioned_users(session, case, entry):
        notification = Notification(
            user_id=user.id,
            kind="mention",
            case_id=case.id,
            entry_id=entry.id,
            actor_user_id=author.id,
            summary=f"{author.name} mentioned you on {case.number}: {case.subject}"[:300],
            created_at=entry.created_at,
        )
        session.add(notification)
        session.flush()
        ids.append(notification.id)
    return ids
