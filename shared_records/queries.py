"""Read-side queries over shared records, all starting from the visibility policy:
filtered, keyset-paginated case and customer lists (shared by API and UI)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from partners.models import User
from portal.db import read_rows
from shared_records import case_rows, policy
from shared_records.models import Case, Contact, Customer
from shared_records.policy import CaseListView, CustomerView, InboxScope


@dataclass(frozen=True)
class CaseFilters:
    scope: InboxScope = InboxScope.ALL
    status: str | None = None
    kind: str | None = None
    owner_organization_id: int | None = None
    handling_organization_id: int | None = None
    customer_id: int | None = None
    q: str | None = None


def like_pattern(text: str) -> str:
    """A LIKE pattern (escape character backslash) for text containing `text`, lower-cased."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def case_page(
    session: Session,
    actor: User,
    filters: CaseFilters,
    limit: int,
    after: tuple[dt.datetime, int] | None = None,
) -> tuple[list[CaseListView], tuple[dt.datetime, int] | None]:
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
        pattern = like_pattern(filters.q)
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
    stmt, params = policy.case_page_rows(actor, conditions, after, limit + 1)
    # Core execution: the rows are plain tuples, the ORM's result machinery has nothing to do.
    rows = session.connection().execute(stmt, params).all()
    views = policy.case_list_views(actor, map(case_rows.from_row, rows[:limit]))
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
        pattern = like_pattern(q)
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


def callers(actor: User, e164: str) -> list[tuple[int, str, int | None]]:
    """(customer id, name, contact id) for each customer or contact with this E.164 number
    whose contact details the actor may see; one statement, outside a transaction."""
    stmt, params = policy.caller_lookup(actor, e164)
    return [(row[0], row[1], row[2]) for row in read_rows(stmt, params)]
