"""Merging duplicate customers: the survivor takes over every case, contact, phone, email and
consent of the merged customer, in one transaction.

The merged customer stays as a pointer (`merged_into_id`) so old links and API clients still
reach the survivor; a `CustomerMerge` row records who merged what, when, and how much moved.
Each moved case gets a recorded change on its timeline and an activity in the feed.
Only the admins of the organisation owning both customers may merge (policy.require_merge).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from partners.models import User
from portal.db import utcnow
from portal.enums import AudienceKind, EntryKind
from portal.errors import Conflict, NotFound, ValidationFailed
from shared_records import feed, policy, search_index
from shared_records.duplicates import Candidate, find_duplicates
from shared_records.events import ActivityType
from shared_records.events import build as build_activity
from shared_records.models import (
    Case,
    CaseShare,
    Consent,
    Contact,
    Customer,
    CustomerMerge,
    EmailAddress,
    PhoneNumber,
    TimelineEntry,
)
from shared_records.policy import CustomerView
from shared_records.textkeys import fold

# A chain of merges (A into B, later B into C) is followed at most this far; real chains are
# a few links long, the bound only guards against a cycle written by hand into the database.
MAX_CHAIN = 50
# Counts that depend on which cases the viewer sees; the rest belong to the customer record,
# which only its owner organisation can merge.
CASE_COUNTS = ("cases", "timeline_entries", "shares")


@dataclass(frozen=True)
class RecordCounts:
    """What hangs on one customer, as the acting organisation sees it."""

    cases: int
    timeline_entries: int
    shares: int
    contacts: int
    phones: int
    emails: int
    consents: int

    def as_json(self) -> dict[str, int]:
        return {
            "cases": self.cases,
            "timeline_entries": self.timeline_entries,
            "shares": self.shares,
            "contacts": self.contacts,
            "phones": self.phones,
            "emails": self.emails,
            "consents": self.consents,
        }


@dataclass(frozen=True)
class MergePreview:
    """Both customers side by side before a merge, with what each brings."""

    survivor: CustomerView
    merged: CustomerView
    survivor_counts: RecordCounts
    merged_counts: RecordCounts
    duplicate_phones: list[str]
    duplicate_emails: list[str]


@dataclass(frozen=True)
class MergeHistory:
    """The merges a customer page shows: customers merged into it, and where it went."""

    merged_from: list[CustomerMerge] = field(default_factory=list)
    merged_into: CustomerMerge | None = None
    merged_into_name: str = ""  # the customer it was merged into
    survivor: Customer | None = None  # where it lives on now (the end of a chain of merges)


# --- reading -------------------------------------------------------------------------------


def final_survivor_id(session: Session, customer_id: int) -> int | None:
    """The customer a merged customer lives on in (following chains); None when it was not
    merged or does not exist."""
    current = customer_id
    for _step in range(MAX_CHAIN):
        target = session.scalar(sa.select(Customer.merged_into_id).where(Customer.id == current))
        if target is None:
            return None if current == customer_id else current
        current = target
    return current


def _knew_merged(session: Session, actor: User, customer_id: int) -> bool:
    """Whether the actor may learn where a merged customer went: its owner may, and so may
    whoever sees one of the cases that moved away from it (as they saw the customer before)."""
    try:
        policy.get_visible_customer(session, actor, customer_id)
    except NotFound:
        pass
    else:
        return True
    moved = session.scalar(
        sa.select(CustomerMerge.moved).where(CustomerMerge.merged_id == customer_id)
    )
    case_ids = json.loads(moved or "{}").get("case_ids", [])
    if not case_ids:
        return False
    seen = sa.select(Case.id).where(
        Case.id.in_(case_ids), policy.case_visible_to(actor.organization_id)
    )
    return session.scalar(seen.limit(1)) is not None


def visible_survivor(session: Session, actor: User, customer_id: int) -> CustomerView | None:
    """For a merged customer: its final survivor as the actor sees it. None when the customer
    was not merged; NotFound when the actor may not know of the merged customer or may not
    see the survivor (a merged id never tells a stranger whom it belongs to)."""
    survivor_id = final_survivor_id(session, customer_id)
    if survivor_id is None:
        return None
    if not _knew_merged(session, actor, customer_id):
        raise NotFound(_("Customer not found."))
    return policy.get_visible_customer(session, actor, survivor_id)


def history(session: Session, actor: User, view: CustomerView) -> MergeHistory:
    """The merge history of a customer; only its owner organisation sees it."""
    if not policy.owns_customer(actor, view):
        return MergeHistory()
    customer = view.customer
    merged_from = list(
        session.scalars(
            sa.select(CustomerMerge)
            .where(CustomerMerge.survivor_id == customer.id)
            .order_by(CustomerMerge.merged_at.desc(), CustomerMerge.id.desc())
        )
    )
    if customer.merged_into_id is None:
        return MergeHistory(merged_from=merged_from)
    merged_into = session.scalars(
        sa.select(CustomerMerge).where(CustomerMerge.merged_id == customer.id)
    ).first()
    direct = session.get(Customer, customer.merged_into_id)
    survivor_id = final_survivor_id(session, customer.id)
    return MergeHistory(
        merged_from=merged_from,
        merged_into=merged_into,
        merged_into_name=direct.name if direct else "",
        survivor=session.get(Customer, survivor_id) if survivor_id else None,
    )


def _count(session: Session, stmt: sa.Select[Any]) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0)


def record_counts(session: Session, actor: User, customer_id: int) -> RecordCounts:
    """Cases, entries and shares the actor sees on a customer, and the record's own contacts,
    phones, emails and consents (the owner sees all of them)."""
    org_id = actor.organization_id
    visible_cases = sa.select(Case.id).where(
        Case.customer_id == customer_id, policy.case_visible_to(org_id)
    )
    return RecordCounts(
        cases=_count(session, visible_cases),
        timeline_entries=_count(session, policy.visible_entries_of_customer(actor, customer_id)),
        shares=_count(
            session,
            sa.select(CaseShare.id)
            .join(Case, Case.id == CaseShare.case_id)
            .where(Case.id.in_(visible_cases), policy.share_visible_to(org_id)),
        ),
        contacts=_count(session, sa.select(Contact.id).where(Contact.customer_id == customer_id)),
        phones=_count(
            session, sa.select(PhoneNumber.id).where(PhoneNumber.customer_id == customer_id)
        ),
        emails=_count(
            session, sa.select(EmailAddress.id).where(EmailAddress.customer_id == customer_id)
        ),
        consents=_count(session, sa.select(Consent.id).where(Consent.customer_id == customer_id)),
    )


def candidates(
    session: Session, actor: User, survivor_id: int, q: str | None, limit: int = 20
) -> list[Customer]:
    """Customers the actor could merge into the survivor: its organisation's own, found by
    name (or by id when `q` is a number like "123" or "#123")."""
    stmt = policy.mergeable_customers(actor).where(Customer.id != survivor_id)
    text = (q or "").strip()
    if text.lstrip("#").isdigit() and len(text) < 19:
        stmt = stmt.where(Customer.id == int(text.lstrip("#")))
    elif text:
        folded = fold(text)
        escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Customer.name_key.like(f"%{escaped}%", escape="\\"))
    rows = session.execute(stmt.order_by(Customer.name, Customer.id).limit(limit)).all()
    return [customer for customer, _details in rows]


def suggestions(session: Session, actor: User, survivor: CustomerView) -> list[Candidate]:
    """Likely duplicates of the survivor (the duplicate check's candidates) that the actor
    may merge into it."""
    customer = survivor.customer
    report = find_duplicates(
        session,
        actor,
        name=customer.name,
        phones=[p.e164 for p in customer.phones],
        emails=[e.email for e in customer.emails],
        postal_code=customer.postal_code,
        city=customer.city,
        exclude_customer_id=customer.id,
    )
    ids = [c.customer_id for c in report.candidates]
    if not ids:
        return []
    allowed = set(
        session.scalars(
            policy.mergeable_customers(actor)
            .with_only_columns(Customer.id)
            .where(Customer.id.in_(ids))
        )
    )
    return [c for c in report.candidates if c.customer_id in allowed]


# --- checks --------------------------------------------------------------------------------


def _lock(session: Session, ids: Sequence[int]) -> None:
    """Lock both customer rows (in id order, so two merges of one pair cannot deadlock) and
    reload them. SQLite needs nothing: BEGIN IMMEDIATE already serialises writers."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        sa.select(Customer)
        .where(Customer.id.in_(sorted(set(ids))))
        .order_by(Customer.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()


def _checked(
    session: Session, actor: User, survivor_id: int, merged_id: int
) -> tuple[CustomerView, CustomerView]:
    """Both customers after every check.

    Raises NotFound (survivor not visible), ValidationFailed (merging into itself, unknown
    customer), Forbidden (not an admin of the owner of both) and Conflict (one of them was
    merged already).
    """
    survivor = policy.get_visible_customer(session, actor, survivor_id)
    policy.require_merge(actor, survivor, survivor)
    if merged_id == survivor_id:
        raise ValidationFailed(
            _("A customer cannot be merged into itself."),
            code="merge_into_itself",
            fields={"merged_id": _("Choose another customer.")},
        )
    try:
        merged = policy.get_visible_customer(session, actor, merged_id)
    except NotFound:
        raise ValidationFailed(
            _("Unknown customer."), fields={"merged_id": _("No such customer.")}
        ) from None
    policy.require_merge(actor, survivor, merged)
    for view in (merged, survivor):
        if view.customer.merged_into_id is not None:
            raise Conflict(
                _("%(name)s was already merged into another customer.", name=view.customer.name),
                code="already_merged",
                extra={"merged_into": final_survivor_id(session, view.customer.id)},
            )
    return survivor, merged


def _customer_phones(session: Session, customer_id: int) -> list[PhoneNumber]:
    return list(
        session.scalars(
            sa.select(PhoneNumber)
            .where(PhoneNumber.customer_id == customer_id, PhoneNumber.contact_id.is_(None))
            .order_by(PhoneNumber.position, PhoneNumber.id)
        )
    )


def _customer_emails(session: Session, customer_id: int) -> list[EmailAddress]:
    return list(
        session.scalars(
            sa.select(EmailAddress)
            .where(EmailAddress.customer_id == customer_id, EmailAddress.contact_id.is_(None))
            .order_by(EmailAddress.position, EmailAddress.id)
        )
    )


def preview(session: Session, actor: User, survivor_id: int, merged_id: int) -> MergePreview:
    """What a merge would do, after the same checks as the merge itself; writes nothing."""
    survivor, merged = _checked(session, actor, survivor_id, merged_id)
    survivor_phones = {p.e164 for p in _customer_phones(session, survivor_id)}
    survivor_emails = {e.email for e in _customer_emails(session, survivor_id)}
    return MergePreview(
        survivor=survivor,
        merged=merged,
        survivor_counts=record_counts(session, actor, survivor_id),
        merged_counts=record_counts(session, actor, merged_id),
        duplicate_phones=[
            p.e164 for p in _customer_phones(session, merged_id) if p.e164 in survivor_phones
        ],
        duplicate_emails=[
            e.email for e in _customer_emails(session, merged_id) if e.email in survivor_emails
        ],
    )


# --- merging -------------------------------------------------------------------------------


def _updated(session: Session, stmt: sa.Update) -> int:
    """Run a Core UPDATE (objects in the session are not synchronised) and count its rows."""
    result = session.execute(stmt.execution_options(synchronize_session=False))
    return int(cast("sa.CursorResult[Any]", result).rowcount)


def _move_points(
    session: Session,
    model: type[PhoneNumber] | type[EmailAddress],
    value_of: str,
    survivor_id: int,
    merged_id: int,
) -> tuple[int, int]:
    """Move the merged customer's phones or emails to the survivor: (moved, dropped).

    A value the survivor itself already has is dropped (the only thing a merge deletes, and
    only when identical); those of contacts move with their contact unchanged.
    """
    own = sa.and_(model.customer_id == survivor_id, model.contact_id.is_(None))
    kept = set(session.scalars(sa.select(getattr(model, value_of)).where(own)))
    position = int(session.scalar(sa.select(sa.func.max(model.position)).where(own)) or 0)
    moved = dropped = 0
    found = session.scalars(
        sa.select(model)
        .where(model.customer_id == merged_id, model.contact_id.is_(None))
        .order_by(model.position, model.id)
    ).all()
    rows = cast("Sequence[PhoneNumber | EmailAddress]", found)
    for row in rows:
        value = getattr(row, value_of)
        if value in kept:
            session.delete(row)
            dropped += 1
            continue
        kept.add(value)
        position += 1
        row.customer_id = survivor_id
        row.position = position
        moved += 1
    moved += _updated(
        session,
        sa.update(model)
        .where(model.customer_id == merged_id, model.contact_id.is_not(None))
        .values(customer_id=survivor_id),
    )
    return moved, dropped


def _take_address(survivor: Customer, merged: Customer) -> bool:
    """A survivor without any address takes the merged customer's (as one unit)."""
    if survivor.street or survivor.postal_code or survivor.city:
        return False
    if not (merged.street or merged.postal_code or merged.city):
        return False
    survivor.street = merged.street
    survivor.postal_code = merged.postal_code
    survivor.city = merged.city
    survivor.country = merged.country or survivor.country
    return True


def _moved_entry(
    case_id: int, actor: User, merged: str, survivor: str, at: dt.datetime
) -> TimelineEntry:
    return TimelineEntry(
        case_id=case_id,
        kind=EntryKind.CHANGE.value,
        body="",
        audience=AudienceKind.SHARED.value,
        author_user_id=actor.id,
        organization_id=actor.organization_id,
        field="customer",
        old_value=merged,
        new_value=survivor,
        created_at=at,
    )


def merge_customers(
    session: Session, actor: User, survivor_id: int, merged_id: int
) -> CustomerMerge:
    """Fold `merged_id` into `survivor_id` and commit; nothing is lost.

    Raises (and changes nothing) as `_checked` describes.
    """
    _lock(session, (survivor_id, merged_id))
    survivor_view, merged_view = _checked(session, actor, survivor_id, merged_id)
    survivor, merged = survivor_view.customer, merged_view.customer
    # What the merging organisation sees, taken before anything moves (shown to it later).
    seen = record_counts(session, actor, merged_id)
    now = utcnow()

    case_ids = list(
        session.scalars(sa.select(Case.id).where(Case.customer_id == merged_id).order_by(Case.id))
    )
    moved: dict[str, Any] = {
        "cases": len(case_ids),
        "timeline_entries": _count(
            session, sa.select(TimelineEntry.id).where(TimelineEntry.case_id.in_(case_ids))
        ),
        "shares": _count(session, sa.select(CaseShare.id).where(CaseShare.case_id.in_(case_ids))),
    }
    moved["phones"], moved["phones_duplicate"] = _move_points(
        session, PhoneNumber, "e164", survivor_id, merged_id
    )
    moved["emails"], moved["emails_duplicate"] = _move_points(
        session, EmailAddress, "email", survivor_id, merged_id
    )
    # Core updates (no per-row objects); the search documents are rewritten below.
    moved["contacts"] = _updated(
        session,
        sa.update(Contact).where(Contact.customer_id == merged_id).values(customer_id=survivor_id),
    )
    moved["consents"] = _updated(
        session,
        sa.update(Consent).where(Consent.customer_id == merged_id).values(customer_id=survivor_id),
    )
    if case_ids:
        _updated(
            session,
            sa.update(Case).where(Case.id.in_(case_ids)).values(customer_id=survivor_id),
        )
    moved["address"] = _take_address(survivor, merged)
    moved["case_ids"] = case_ids
    moved["seen"] = {name: getattr(seen, name) for name in CASE_COUNTS}

    merged.merged_into_id = survivor_id
    merged.updated_at = now
    survivor.updated_at = now  # bumps its version: an edit begun before the merge is stale
    record = CustomerMerge(
        survivor_id=survivor_id,
        merged_id=merged_id,
        merged_name=merged.name,
        merged_by_user_id=actor.id,
        merged_at=now,
        moved=json.dumps(moved, sort_keys=True),
    )
    session.add(record)
    session.flush()

    entries = [_moved_entry(i, actor, merged.name, survivor.name, now) for i in case_ids]
    session.add_all(entries)
    session.flush()
    details = {
        "survivor_id": survivor_id,
        "survivor_name": survivor.name,
        "merged_id": merged_id,
        "merged_name": merged.name,
    }
    moved_cases = session.scalars(
        sa.select(Case)
        .where(Case.id.in_(case_ids))
        .order_by(Case.id)
        .execution_options(populate_existing=True)
    )
    for case in moved_cases:
        entry = next(e for e in entries if e.case_id == case.id)
        feed.record(
            session,
            build_activity(
                ActivityType.CUSTOMER_MERGED,
                case,
                actor,
                now,
                entry=entry,
                details={**details, "entry_id": entry.id},
            ),
        )
    connection = session.connection()
    search_index.reindex_customers(connection, (survivor_id, merged_id))
    search_index.reindex_cases(connection, case_ids)
    session.commit()
    # Relationships loaded before the Core updates are out of date now.
    session.expire(survivor)
    session.expire(merged)
    return record


# --- presenting ----------------------------------------------------------------------------


def moved_counts(merge: CustomerMerge) -> dict[str, Any]:
    """What moved in a merge as the merging organisation may be told: the record's own
    counts in full, the case-related ones as that organisation saw them."""
    data = json.loads(merge.moved or "{}")
    counts: dict[str, Any] = {
        name: data.get(name, 0)
        for name in (
            "contacts",
            "phones",
            "phones_duplicate",
            "emails",
            "emails_duplicate",
            "consents",
        )
    }
    seen = data.get("seen", {})
    counts.update({name: seen.get(name, 0) for name in CASE_COUNTS})
    counts["address"] = bool(data.get("address", False))
    return counts


def merge_json(merge: CustomerMerge) -> dict[str, Any]:
    return {
        "id": merge.id,
        "survivor_id": merge.survivor_id,
        "merged_id": merge.merged_id,
        "merged_name": merge.merged_name,
        "merged_by_user_id": merge.merged_by_user_id,
        "merged_at": merge.merged_at.isoformat(),
        "moved": moved_counts(merge),
    }
