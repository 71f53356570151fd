"""Read-side queries over shared records, all starting from the visibility policy:
filtered, keyset-paginated case and customer lists (shared by API and UI)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, defaultload, lazyload, selectinload

from partners.models import User
from shared_records import policy
from shared_records.models import Case, CaseShare, Contact, Customer
from shared_records.policy import CaseView, CustomerView, InboxScope


@dataclass(frozen=True)
class CaseFilters:
    scope: InboxScope = InboxScope.ALL
    status: str | None = None
    kind: str | None = None
    owner_organization_id: int | None = None
    handling_organization_id: int | None = None
    customer_id: int | None = None
    q: str | None = None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def case_page(
    session: Session,
    actor: User,
    filters: CaseFilters,
    limit: int,
    after: tuple[dt.datetime, int] | None = None,
) -> tuple[list[CaseView], tuple[dt.datetime, int] | None]:
    """One page of visible cases in last-activity order and the key of the next page."""
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.scope is not InboxScope.ALL:
        conditions.append(policy.inbox_scope(actor, filters.scope))
    if filters.status:
        conditions.append(Case.status == filters.status)
    if filters.kind:
        conditions.append(Case.kind == filters.kind)
    if filters.owner_organization_id:
        conditions.append(Case.owner_organization_id == filters.owner_organization_id)
    if filters.handling_organization_id:
        conditions.append(Case.handling_organization_id == filters.handling_organization_id)
    if filters.customer_id:
        conditions.append(Case.customer_id == filters.customer_id)
    if filters.q:
        pattern = _like(filters.q)
        conditions.append(
            sa.or_(
                sa.func.lower(Case.subject).like(pattern, escape="\\"),
                sa.func.lower(Case.number).like(pattern, escape="\\"),
                Case.customer_id.in_(
                    sa.select(Customer.id).where(
                        sa.func.lower(Customer.name).like(pattern, escape="\\")
                    )
                ),
            )
        )
    page = policy.case_page_keys(actor, conditions, after, limit + 1)
    stmt = policy.cases_of_page(actor, page).options(
        # The list shows neither who shared a case nor the handler's organisation record.
        lazyload(CaseShare.organization),
        lazyload(CaseShare.shared_by),
        defaultload(Case.handling_user).lazyload(User.organization),
    )
    rows = session.execute(stmt).all()
    views = [policy.case_view(actor, case, share) for case, share in rows[:limit]]
    next_key = None
    if len(rows) > limit:
        last = views[-1].case
        next_key = (last.last_activity_at, last.id)
    return views, next_key


def customer_page(
    session: Session,
    actor: User,
    q: str | None,
    limit: int,
    after_id: int | None = None,
) -> tuple[list[CustomerView], int | None]:
    """One page of visible customers by id (newest first); merged ones are left out."""
    stmt = (
        policy.visible_customers(actor)
        .where(Customer.merged_into_id.is_(None))
        .options(
            selectinload(Customer.phones),
            selectinload(Customer.emails),
            selectinload(Customer.contacts).selectinload(Contact.phones),
            selectinload(Customer.contacts).selectinload(Contact.emails),
        )
    )
    if q:
        pattern = _like(q)
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(Customer.name).like(pattern, escape="\\"),
                sa.func.lower(sa.func.coalesce(Customer.city, "")).like(pattern, escape="\\"),
            )
        )
    if after_id is not None:
        stmt = stmt.where(Customer.id < after_id)
    rows = session.execute(stmt.order_by(Customer.id.desc()).limit(limit + 1)).all()
    views = [
        CustomerView(customer=customer, actor=actor, contact_details=bool(details))
        for customer, details in rows[:limit]
    ]
    next_id = views[-1].customer.id if len(rows) > limit else None
    return views, next_id
