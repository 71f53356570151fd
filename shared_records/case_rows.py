"""Lean rows for case lists (inbox, dashboard, a customer's cases, the API list).

A list page reads the columns it shows with Core into named tuples rather than ORM objects:
hydrating a `Case` with its joined customer, organisations, handler and share cost about six
ORM instances per row, most of a page's time (bench/suite.py, issue 6). The attribute names
match the models', so templates and serializers read both alike (`row.customer.name`,
`row.handling_user.name`, `row.claimed_at`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import sqlalchemy as sa

from partners.models import Organization, User
from shared_records.models import Case, CaseShare, Customer


class Ref(NamedTuple):
    """Something a list names: a customer, an organisation or a user."""

    id: int
    name: str


class CaseRow(NamedTuple):
    """What a case list knows of a case."""

    id: int
    number: str
    customer_id: int
    subject: str
    description: str
    kind: str
    status: str
    priority: str
    owner_organization_id: int
    handling_organization_id: int
    handling_user_id: int | None
    claimed_at: dt.datetime | None
    claim_renewed_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    last_activity_at: dt.datetime
    customer: Ref
    owner_organization: Ref
    handling_organization: Ref
    handling_user: Ref | None


class ShareRow(NamedTuple):
    """The viewing organisation's share of a listed case."""

    access: str
    include_contact_details: bool
    created_at: dt.datetime
    shared_by_user_id: int | None
    suspended: bool


_CASE_COLUMNS = (
    Case.id,
    Case.number,
    Case.customer_id,
    Case.subject,
    Case.description,
    Case.kind,
    Case.status,
    Case.priority,
    Case.owner_organization_id,
    Case.handling_organization_id,
    Case.handling_user_id,
    Case.claimed_at,
    Case.claim_renewed_at,
    Case.version,
    Case.created_at,
    Case.updated_at,
    Case.last_activity_at,
)
_N = len(_CASE_COLUMNS)


def _name_of(column: Any, key: Any) -> sa.ScalarSelect[str]:
    return sa.select(column).where(key).scalar_subquery()


def select_rows(share_condition: sa.ColumnElement[bool]) -> sa.Select[*tuple[Any, ...]]:
    """The list columns of `cases` with the names a list shows and the share matching
    `share_condition` (the viewer's); the caller joins the page and orders.

    The names are scalar subqueries, not joins: with four more tables in the join PostgreSQL
    spent 4 ms planning a page that runs in 1 ms; a subquery per name plans in microseconds
    and probes the same primary keys."""
    return (
        sa.select(
            *_CASE_COLUMNS,
            _name_of(Customer.name, Customer.id == Case.customer_id),
            _name_of(Organization.name, Organization.id == Case.owner_organization_id),
            _name_of(Organization.name, Organization.id == Case.handling_organization_id),
            _name_of(User.name, User.id == Case.handling_user_id),
            CaseShare.access,
            CaseShare.include_contact_details,
            CaseShare.created_at,
            CaseShare.shared_by_user_id,
            CaseShare.suspended,
        )
        .select_from(Case)
        .outerjoin(CaseShare, share_condition)
    )


def from_row(row: sa.Row[Any]) -> tuple[CaseRow, ShareRow | None]:
    """The case and the viewer's share of one row of `select_rows`."""
    values = tuple(row)
    customer_name, owner_name, handling_name, handler_name, *share_values = values[_N:]
    # CaseRow's first fields are _CASE_COLUMNS in order (mypy cannot count a slice).
    case = CaseRow(  # type: ignore[call-arg]
        *values[:_N],
        Ref(values[2], customer_name),
        Ref(values[8], owner_name),
        Ref(values[9], handling_name),
        Ref(values[10], handler_name) if values[10] is not None else None,
    )
    share = ShareRow(*share_values) if share_values[0] is not None else None
    return case, share
