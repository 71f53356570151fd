"""The visibility policy: the one place that decides who sees which case, timeline entry and
customer detail, and what they may do with it.

Every read path (lists, detail pages, API, search, exports, and later the feed and telephony)
starts from a function here. Visibility is expressed as SQL so lists are filtered by the
database, never loaded and filtered in Python.

Rules:
- An organisation sees a case when it owns it, handles it, or the case is shared with it.
- Its access is `edit` as owner or handler, else the share's level; a user's access is the
  lesser of that and their role (viewers only read).
- Timeline entries are filtered by audience: `internal` (author's organisation), `shared`
  (everyone who sees the case) or an explicit list of organisations.
- A customer is visible through ownership or through a visible case; phones, emails and the
  street address only through ownership, ownership or handling of one of its cases, or a share
  with `include_contact_details`.
- Not visible answers 404 (existence is never revealed); visible but not permitted, 403.
- A suspended share (owner and share organisation no longer have a value chain in common)
  counts nowhere: it grants nothing and is listed to nobody until it is resumed.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from partners.models import Organization, Partnership, User
from portal.enums import Access, AudienceKind, OrganizationKind, UserRole
from portal.errors import Forbidden, NotFound
from shared_records import case_rows
from shared_records.case_rows import CaseRow, ShareRow
from shared_records.models import (
    Activity,
    Call,
    Case,
    CaseShare,
    CaseVisibility,
    Customer,
    PhoneNumber,
    TimelineAudience,
    TimelineEntry,
)


class Permission(StrEnum):
    VIEW = "case:view"
    COMMENT = "case:comment"
    EDIT = "case:edit"
    HANDLE = "case:handle"  # claim, release, hand over
    OVERRIDE_CLAIM = "case:override_claim"  # release or hand over someone else's claim
    SHARE = "case:share"


class InboxScope(StrEnum):
    ALL = "all"
    MINE = "mine"
    ORGANIZATION = "organization"
    SHARED = "shared"


@dataclass(frozen=True)
class VisibilityReason:
    """Why an organisation sees a case: as owner, as handler, or through a share."""

    kind: str  # "owner" | "handler" | "share"
    organization_id: int
    access: Access
    since: dt.datetime
    shared_by_user_id: int | None = None
    shared_by_organization_id: int | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "kind": self.kind,
            "access": self.access.label,
            "since": self.since.isoformat(),
        }
        if self.kind == "share":
            data["shared_by_organization_id"] = self.shared_by_organization_id
            data["shared_by_user_id"] = self.shared_by_user_id
        return data


@dataclass(frozen=True)
class CaseView:
    """A case together with what the viewing user may do with it and why they see it."""

    case: Case
    actor: User
    share: CaseShare | None
    organization_access: Access
    access: Access
    reasons: tuple[VisibilityReason, ...] = field(default=())

    @property
    def is_owner(self) -> bool:
        return self.case.owner_organization_id == self.actor.organization_id

    @property
    def is_handler(self) -> bool:
        return self.case.handling_organization_id == self.actor.organization_id

    @property
    def contact_details(self) -> bool:
        """Whether this case lets the viewer see the customer's phones, emails and street."""
        return (
            self.is_owner
            or self.is_handler
            or (
                self.share is not None
                and not self.share.suspended
                and self.share.include_contact_details
            )
            or self.case.customer.owner_organization_id == self.actor.organization_id
        )


class CaseListView:
    """A listed case (a lean `CaseRow`) with the viewer's access; why they see it is worked
    out only when asked (the API shows it, the pages do not)."""

    __slots__ = ("_org_id", "access", "case", "share")

    def __init__(self, case: CaseRow, share: ShareRow | None, access: Access, org_id: int):
        self.case = case
        self.share = share
        self.access = access
        self._org_id = org_id

    @property
    def reasons(self) -> tuple[VisibilityReason, ...]:
        return _reasons(self._org_id, self.case, self.share)


class CaseFacts(Protocol):
    """What access, reasons and claims are decided from: a `Case` or a list's `CaseRow`."""

    @property
    def owner_organization_id(self) -> int: ...
    @property
    def handling_organization_id(self) -> int: ...
    @property
    def handling_user_id(self) -> int | None: ...
    @property
    def claimed_at(self) -> dt.datetime | None: ...
    @property
    def claim_renewed_at(self) -> dt.datetime | None: ...
    @property
    def created_at(self) -> dt.datetime: ...


class ShareFacts(Protocol):
    """A `CaseShare` or a list's `ShareRow`."""

    @property
    def access(self) -> str: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def shared_by_user_id(self) -> int | None: ...
    @property
    def suspended(self) -> bool: ...


@dataclass(frozen=True)
class CustomerView:
    customer: Customer
    actor: User
    contact_details: bool

    @property
    def can_edit(self) -> bool:
        return (
            self.customer.owner_organization_id == self.actor.organization_id
            and self.actor.role != UserRole.VIEWER
        )


# --- cases -------------------------------------------------------------------------------


def _share_of(org_id: int) -> sa.ColumnElement[bool]:
    """The organisation's share of the current `Case` row, if it is in force."""
    return sa.and_(
        CaseShare.case_id == Case.id,
        CaseShare.organization_id == org_id,
        ~CaseShare.suspended,
    )


def active_shares(case: Case) -> list[CaseShare]:
    """The case's shares in force (suspended ones grant nothing and are shown nowhere)."""
    return [share for share in case.shares if not share.suspended]


def case_visible_to_reference(org_id: int) -> sa.ColumnElement[bool]:
    """The rule itself, over the base tables: owner, handler or a share in force.
    `case_visibility` materialises it; tests compare the two."""
    return sa.or_(
        Case.owner_organization_id == org_id,
        Case.handling_organization_id == org_id,
        sa.exists().where(_share_of(org_id)),
    )


def _visibility_of(org_id: int) -> sa.ColumnElement[bool]:
    return sa.and_(CaseVisibility.case_id == Case.id, CaseVisibility.organization_id == org_id)


def case_visible_to(org_id: int) -> sa.ColumnElement[bool]:
    """SQL condition: the current `Case` row is visible to organisation `org_id` (one probe
    of the materialised rule's primary key)."""
    return sa.exists().where(_visibility_of(org_id))


def visible_cases(actor: User) -> sa.Select[Case, CaseShare]:
    """Every case the actor may see, each with the actor organisation's share (if any).

    The starting point of every case list; callers add filters and limits, and order by
    `inbox_order()` so that pages are ranges of the (organisation, last activity, case)
    index of `case_visibility` at any depth.
    """
    org_id = actor.organization_id
    return (
        sa.select(Case, CaseShare)
        .join(CaseVisibility, _visibility_of(org_id))
        .outerjoin(CaseShare, _share_of(org_id))
    )


def case_page_keys(
    actor: User,
    conditions: Sequence[sa.ColumnElement[bool]],
    after: tuple[dt.datetime, int] | None,
    limit: int,
) -> sa.Subquery:
    """(case_id, last_activity_at) of one page of the actor's visible cases in inbox order:
    a range of the visibility index, joined with `cases` (and the actor organisation's
    share) only when `conditions` filter on them. Kept small on purpose: the planner then
    plans the page in a millisecond, and `cases_of_page` adds the rows' details."""
    org_id = actor.organization_id
    stmt = sa.select(CaseVisibility.case_id, CaseVisibility.last_activity_at).where(
        CaseVisibility.organization_id == org_id
    )
    if conditions:
        stmt = (
            stmt.join(Case, Case.id == CaseVisibility.case_id)
            .outerjoin(CaseShare, _share_of(org_id))
            .where(*conditions)
        )
    if after is not None:
        stmt = stmt.where(inbox_after(*after))
    return stmt.order_by(*inbox_order()).limit(limit).subquery("page")


def cases_of_page(actor: User, page: sa.Subquery) -> sa.Select[*tuple[Any, ...]]:
    """Lean list rows (`case_rows.select_rows`) of the cases of a page from
    `case_page_keys`, each with the actor organisation's share, in the page's order."""
    return (
        case_rows.select_rows(_share_of(actor.organization_id))
        .join(page, page.c.case_id == Case.id)
        .order_by(page.c.last_activity_at.desc(), page.c.case_id.desc())
    )


def case_page_rows(
    actor: User,
    conditions: Sequence[sa.ColumnElement[bool]],
    after: tuple[dt.datetime, int] | None,
    limit: int,
) -> tuple[sa.Select[*tuple[Any, ...]], dict[str, Any]]:
    """The statement (and its parameters) reading one page of list rows: `cases_of_page`
    over `case_page_keys`. The unfiltered inbox, by far the most read, is one statement
    built once and run with parameters: building it per request cost more than running it.
    """
    if conditions:
        return cases_of_page(actor, case_page_keys(actor, conditions, after, limit)), {}
    params: dict[str, Any] = {"page_org": actor.organization_id, "page_limit": limit}
    if after is not None:
        params.update(page_after_at=after[0], page_after_id=after[1])
    return _unfiltered_page(after is not None), params


@functools.cache
def _unfiltered_page(keyset: bool) -> sa.Select[*tuple[Any, ...]]:
    org: Any = sa.bindparam("page_org", type_=sa.Integer())
    keys = sa.select(CaseVisibility.case_id, CaseVisibility.last_activity_at).where(
        CaseVisibility.organization_id == org
    )
    if keyset:
        at = sa.bindparam("page_after_at", type_=CaseVisibility.last_activity_at.type)
        keys = keys.where(inbox_after(at, sa.bindparam("page_after_id", type_=sa.Integer())))
    limit: Any = sa.bindparam("page_limit", type_=sa.Integer())
    page = keys.order_by(*inbox_order()).limit(limit).subquery("page")
    return (
        case_rows.select_rows(_share_of(org))
        .join(page, page.c.case_id == Case.id)
        .order_by(page.c.last_activity_at.desc(), page.c.case_id.desc())
    )


def inbox_order() -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    """The order of case lists: newest activity first, on the visibility index's columns."""
    return CaseVisibility.last_activity_at.desc(), CaseVisibility.case_id.desc()


def inbox_after(
    at: dt.datetime | sa.BindParameter[Any], case_id: int | sa.BindParameter[int]
) -> sa.ColumnElement[bool]:
    """Keyset condition: cases after (older than) the page that ended at (at, case_id).

    A row comparison, which PostgreSQL uses as the start of the index range; the equivalent
    `a < x OR (a = x AND b < y)` was only a filter, so a page at depth 10,000 walked 10,000
    index entries (4,300 buffers, 2.8 ms) before its first row."""
    keys = (CaseVisibility.last_activity_at, CaseVisibility.case_id)
    return sa.tuple_(*keys) < sa.tuple_(at, case_id, types=[key.type for key in keys])


def inbox_scope(actor: User, scope: InboxScope) -> sa.ColumnElement[bool]:
    """Extra condition for the inbox tabs, applied on top of `visible_cases`."""
    org_id = actor.organization_id
    if scope is InboxScope.MINE:
        return Case.handling_user_id == actor.id
    if scope is InboxScope.ORGANIZATION:
        return sa.or_(Case.owner_organization_id == org_id, Case.handling_organization_id == org_id)
    if scope is InboxScope.SHARED:
        return sa.and_(
            CaseShare.id.is_not(None),
            Case.owner_organization_id != org_id,
            Case.handling_organization_id != org_id,
        )
    return sa.true()


def organization_access(case: CaseFacts, org_id: int, share: ShareFacts | None) -> Access:
    if org_id in (case.owner_organization_id, case.handling_organization_id):
        return Access.EDIT
    if share is not None and not share.suspended:
        return Access.parse(share.access)
    return Access.NONE


def role_cap(actor: User) -> Access:
    return Access.READ if actor.role == UserRole.VIEWER else Access.EDIT


def _reasons(
    org_id: int, case: CaseFacts, share: ShareFacts | None
) -> tuple[VisibilityReason, ...]:
    reasons: list[VisibilityReason] = []
    if case.owner_organization_id == org_id:
        reasons.append(VisibilityReason("owner", org_id, Access.EDIT, case.created_at))
    if case.handling_organization_id == org_id:
        since = case.claimed_at or case.created_at
        reasons.append(VisibilityReason("handler", org_id, Access.EDIT, since))
    if share is not None and not share.suspended:
        reasons.append(
            VisibilityReason(
                "share",
                org_id,
                Access.parse(share.access),
                share.created_at,
                shared_by_user_id=share.shared_by_user_id,
                shared_by_organization_id=case.owner_organization_id,
            )
        )
    return tuple(reasons)


def case_view(actor: User, case: Case, share: CaseShare | None) -> CaseView:
    """Wrap a case the actor can see (from `visible_cases`) with access and reasons."""
    org_access = organization_access(case, actor.organization_id, share)
    return CaseView(
        case=case,
        actor=actor,
        share=share,
        organization_access=org_access,
        access=min(org_access, role_cap(actor)),
        reasons=_reasons(actor.organization_id, case, share),
    )


def case_list_views(
    actor: User, rows: Iterable[tuple[CaseRow, ShareRow | None]]
) -> list[CaseListView]:
    """The same for lean list rows (`cases_of_page`)."""
    org_id = actor.organization_id  # once: `actor` is often Flask-Login's proxy
    cap = role_cap(actor)
    return [
        CaseListView(case, share, min(organization_access(case, org_id, share), cap), org_id)
        for case, share in rows
    ]


def get_visible_case(
    session: Session, actor: User, case_id: int, *, lock: bool = False
) -> CaseView:
    """The case as the actor sees it; NotFound when it does not exist or is not visible."""
    stmt = visible_cases(actor).where(Case.id == case_id)
    if lock:
        stmt = stmt.with_for_update(of=Case)
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound(_("Case not found."))
    case, share = row
    return case_view(actor, case, share)


def can(actor: User, permission: Permission, view: CaseView) -> bool:
    if not actor.is_active:
        return False
    if permission is Permission.VIEW:
        return view.access >= Access.READ
    if actor.role == UserRole.VIEWER:
        return False
    if permission is Permission.COMMENT:
        return view.access >= Access.COMMENT
    if permission in (Permission.EDIT, Permission.HANDLE):
        return view.access >= Access.EDIT
    if permission is Permission.SHARE:
        return view.is_owner
    if permission is Permission.OVERRIDE_CLAIM:
        return view.is_owner and actor.role == UserRole.ADMIN
    return False


_REFUSALS = {
    Permission.VIEW: _l("You may not see this case."),
    Permission.COMMENT: _l("You may not comment on this case."),
    Permission.EDIT: _l("You may not change this case."),
    Permission.HANDLE: _l("You may not claim, release or hand over this case."),
    Permission.SHARE: _l("Only the owner organisation's agents and admins can share this case."),
    Permission.OVERRIDE_CLAIM: _l("Only the owner organisation's admins can take over a claim."),
}


def require(actor: User, permission: Permission, view: CaseView) -> None:
    """Raise Forbidden unless the actor may do `permission` on the visible case."""
    if not can(actor, permission, view):
        raise Forbidden(str(_REFUSALS[permission]))


# --- timeline ----------------------------------------------------------------------------


def entry_visible_to(org_id: int) -> sa.ColumnElement[bool]:
    """SQL condition on `TimelineEntry`: its audience includes organisation `org_id`."""
    return sa.or_(
        TimelineEntry.organization_id == org_id,
        TimelineEntry.audience == AudienceKind.SHARED.value,
        sa.and_(
            TimelineEntry.audience == AudienceKind.ORGANIZATIONS.value,
            sa.exists().where(
                TimelineAudience.entry_id == TimelineEntry.id,
                TimelineAudience.organization_id == org_id,
            ),
        ),
    )


def visible_entries(view: CaseView) -> sa.Select[TimelineEntry]:
    """The timeline of a visible case, filtered by audience for the viewer's organisation."""
    return (
        sa.select(TimelineEntry)
        .where(TimelineEntry.case_id == view.case.id)
        .where(entry_visible_to(view.actor.organization_id))
        .order_by(TimelineEntry.created_at, TimelineEntry.id)
    )


def visible_entries_of_customer(actor: User, customer_id: int) -> sa.Select[TimelineEntry]:
    """The contact history of a customer across every case the actor can see."""
    org_id = actor.organization_id
    visible_case_ids = sa.select(Case.id).where(
        Case.customer_id == customer_id, case_visible_to(org_id)
    )
    return (
        sa.select(TimelineEntry)
        .where(TimelineEntry.case_id.in_(visible_case_ids))
        .where(entry_visible_to(org_id))
        .order_by(TimelineEntry.created_at.desc(), TimelineEntry.id.desc())
    )


def audience_choices(session: Session, view: CaseView) -> list[Organization]:
    """Organisations the actor may name in an entry's audience: those it knows see the case."""
    case = view.case
    ids = {case.owner_organization_id, case.handling_organization_id, view.actor.organization_id}
    if view.is_owner or view.is_handler:
        ids.update(share.organization_id for share in active_shares(case))
    stmt = sa.select(Organization).where(Organization.id.in_(ids)).order_by(Organization.name)
    return list(session.scalars(stmt))


def visible_shares(view: CaseView) -> list[CaseShare]:
    """Owner and handler see every share of a case in force; another partner sees only its
    own."""
    if view.is_owner or view.is_handler:
        return active_shares(view.case)
    return [view.share] if view.share is not None and not view.share.suspended else []


# --- customers ---------------------------------------------------------------------------


def customer_visible_to(org_id: int) -> sa.ColumnElement[bool]:
    return sa.or_(
        Customer.owner_organization_id == org_id,
        sa.exists().where(
            CaseVisibility.organization_id == org_id, CaseVisibility.customer_id == Customer.id
        ),
    )


def customer_details_visible_to(org_id: int) -> sa.ColumnElement[bool]:
    """SQL condition on `Customer`: the organisation may see phones, emails and street."""
    return sa.or_(
        Customer.owner_organization_id == org_id,
        sa.exists().where(
            CaseVisibility.organization_id == org_id,
            CaseVisibility.customer_id == Customer.id,
            CaseVisibility.details.is_(True),
        ),
    )


def customer_details_visible_to_reference(org_id: int) -> sa.ColumnElement[bool]:
    """The details rule over the base tables (see `case_visible_to_reference`)."""
    detail_share = sa.exists().where(
        CaseShare.case_id == Case.id,
        CaseShare.organization_id == org_id,
        CaseShare.include_contact_details.is_(True),
        ~CaseShare.suspended,
    )
    return sa.or_(
        Customer.owner_organization_id == org_id,
        sa.exists().where(
            Case.customer_id == Customer.id,
            sa.or_(
                Case.owner_organization_id == org_id,
                Case.handling_organization_id == org_id,
                detail_share,
            ),
        ),
    )


def customer_visibility_keys(org_id: int) -> sa.CompoundSelect[int, bool]:
    """(customer_id, contact_details) rows, one per reason, from which `customer_visible_to`
    and `customer_details_visible_to` follow; each part is read through an index.

    For narrowing many candidates (the search) by a semi-join instead of testing the
    conditions row by row; callers still apply the conditions to what remains.
    """
    return sa.union_all(
        sa.select(Customer.id.label("customer_id"), sa.true().label("contact_details")).where(
            Customer.owner_organization_id == org_id
        ),
        sa.select(CaseVisibility.customer_id, CaseVisibility.details).where(
            CaseVisibility.organization_id == org_id
        ),
    )


def visible_customers(actor: User) -> sa.Select[Customer, bool]:
    """Every customer the actor may see, each with whether its contact details are visible."""
    org_id = actor.organization_id
    return sa.select(Customer, customer_details_visible_to(org_id).label("contact_details")).where(
        customer_visible_to(org_id)
    )


def get_visible_customer(session: Session, actor: User, customer_id: int) -> CustomerView:
    row = session.execute(visible_customers(actor).where(Customer.id == customer_id)).first()
    if row is None:
        raise NotFound(_("Customer not found."))
    customer, details = row
    return CustomerView(customer=customer, actor=actor, contact_details=bool(details))


def require_customer_edit(actor: User, view: CustomerView) -> None:
    if not view.can_edit:
        raise Forbidden(
            _("Only the owner organisation's agents and admins can change this customer.")
        )


def require_worker(actor: User) -> None:
    """Creating records is for agents and admins; viewers only read."""
    if actor.role == UserRole.VIEWER:
        raise Forbidden(_("Viewers cannot create or change records."))


def owns_customer(actor: User, view: CustomerView) -> bool:
    """Whether the actor belongs to the customer's owner organisation (any role): only the
    owner sees the record's merge history."""
    return view.customer.owner_organization_id == actor.organization_id


def can_merge(actor: User, view: CustomerView) -> bool:
    """Merging customers is for the admins of the organisation that owns them."""
    return bool(actor.is_active and actor.role == UserRole.ADMIN and owns_customer(actor, view))


def require_merge(actor: User, survivor: CustomerView, merged: CustomerView) -> None:
    """Raise Forbidden unless the actor administers the organisation owning both customers."""
    if not (actor.is_active and actor.role == UserRole.ADMIN):
        raise Forbidden(_("Only admins can merge customers."))
    if not (owns_customer(actor, survivor) and owns_customer(actor, merged)):
        raise Forbidden(_("Only customers your organisation owns can be merged."), code="not_owner")


def mergeable_customers(actor: User) -> sa.Select[Customer, bool]:
    """Customers the actor's organisation owns and that were not merged away: the ones it may
    pick for a merge (the caller adds filters and limits)."""
    return visible_customers(actor).where(
        Customer.owner_organization_id == actor.organization_id,
        Customer.merged_into_id.is_(None),
    )


def share_visible_to(org_id: int) -> sa.ColumnElement[bool]:
    """SQL condition on `CaseShare` joined with its `Case`: the share is one the organisation
    may know of (owner and handler know every share in force, another partner only its
    own); the same rule as `visible_shares`."""
    return sa.and_(
        ~CaseShare.suspended,
        sa.or_(
            Case.owner_organization_id == org_id,
            Case.handling_organization_id == org_id,
            CaseShare.organization_id == org_id,
        ),
    )


# --- organisations and value chains ------------------------------------------------------


def _chain_manufacturer_ids(org: Organization) -> sa.Select[int]:
    """Manufacturers whose value chain includes `org` (itself when it is one)."""
    partner_of = sa.select(Partnership.manufacturer_id).where(
        Partnership.partner_id == org.id, Partnership.active.is_(True)
    )
    if org.kind == OrganizationKind.MANUFACTURER:
        return sa.select(sa.literal(org.id)).union(partner_of)  # type: ignore[return-value]
    return partner_of


def chain_organizations(org: Organization) -> sa.Select[Organization]:
    """Active organisations sharing a value chain with `org`, excluding `org` itself."""
    manufacturers = _chain_manufacturer_ids(org).subquery()
    members = sa.select(Partnership.partner_id).where(
        Partnership.manufacturer_id.in_(sa.select(manufacturers)), Partnership.active.is_(True)
    )
    return (
        sa.select(Organization)
        .where(
            Organization.active.is_(True),
            Organization.id != org.id,
            sa.or_(Organization.id.in_(sa.select(manufacturers)), Organization.id.in_(members)),
        )
        .order_by(Organization.name)
    )


def chain_member_ids(org_id: int) -> sa.CompoundSelect[int]:
    """Ids of the organisations that share a value chain with organisation `org_id` (itself
    included when it is in a chain), whether or not they are active: the condition under
    which a share between the two stays in force (see partners.service)."""
    manufacturers = sa.union(
        sa.select(Partnership.manufacturer_id.label("id")).where(
            Partnership.partner_id == org_id, Partnership.active.is_(True)
        ),
        sa.select(Organization.id).where(
            Organization.id == org_id, Organization.kind == OrganizationKind.MANUFACTURER.value
        ),
    ).subquery("chains")
    return sa.union(
        sa.select(manufacturers.c.id),
        sa.select(Partnership.partner_id).where(
            Partnership.active.is_(True),
            Partnership.manufacturer_id.in_(sa.select(manufacturers.c.id)),
        ),
    )


def is_share_target(session: Session, case: Case, org_id: int) -> bool:
    """Whether a case may be shared with this organisation: one of the owner's value chains.
    (The case page lists them a page at a time: ui_queries.share_target_page.)"""
    stmt = chain_organizations(case.owner_organization).where(Organization.id == org_id)
    return session.execute(stmt).first() is not None


def handover_target(session: Session, case: Case, org_id: int) -> Organization | None:
    """The organisation, when a case may be handed over to it (the owner, or one of the
    owner's value chains); one row read, however long the chain."""
    if org_id == case.owner_organization_id:
        return case.owner_organization
    stmt = chain_organizations(case.owner_organization).where(Organization.id == org_id)
    return session.scalars(stmt).first()


def visible_organizations(actor: User) -> sa.Select[Organization]:
    """The actor's own organisation and every organisation in its value chains."""
    own = actor.organization
    chain = chain_organizations(own).subquery()
    return (
        sa.select(Organization)
        .where(sa.or_(Organization.id == own.id, Organization.id.in_(sa.select(chain.c.id))))
        .order_by(Organization.name)
    )


def get_visible_organization(session: Session, actor: User, org_id: int) -> Organization:
    org = session.scalars(visible_organizations(actor).where(Organization.id == org_id)).first()
    if org is None:
        raise NotFound(_("Organisation not found."))
    return org


def org_ids_seeing_case(case: Case) -> set[int]:
    return {
        case.owner_organization_id,
        case.handling_organization_id,
        *(share.organization_id for share in active_shares(case)),
    }


def filter_audience(allowed: Iterable[Organization], requested: Sequence[int]) -> list[int]:
    """The requested audience organisations that are not among the allowed ones."""
    allowed_ids = {org.id for org in allowed}
    return [org_id for org_id in requested if org_id not in allowed_ids]


# --- live delivery -----------------------------------------------------------------------


def activity_audience(session: Session, activity: Activity) -> set[int]:
    """Organisations that may see an activity now: those that see its case, narrowed to the
    entry's audience for timeline activities (the same rules as `entry_visible_to`)."""
    case = session.get(Case, activity.case_id)
    if case is None:
        return set()
    orgs = org_ids_seeing_case(case)
    if activity.entry_id is None:
        return orgs
    entry = session.get(TimelineEntry, activity.entry_id)
    if entry is None:
        return set()
    if entry.audience == AudienceKind.SHARED.value:
        return orgs
    allowed = {entry.organization_id}
    if entry.audience == AudienceKind.ORGANIZATIONS.value:
        allowed |= {a.organization_id for a in entry.audience_organizations}
    return orgs & allowed


# --- claims ------------------------------------------------------------------------------


def claim_expires_at(case: CaseFacts, idle: dt.timedelta) -> dt.datetime | None:
    """When the current claim lapses unless its holder renews it (None: nobody holds it)."""
    if case.handling_user_id is None:
        return None
    last = case.claim_renewed_at or case.claimed_at
    return last + idle if last is not None else None


def claim_active(case: CaseFacts, idle: dt.timedelta, now: dt.datetime) -> bool:
    expires = claim_expires_at(case, idle)
    return expires is not None and expires > now


def viewer_visible_to(case: Case, viewer_org_id: int, observer_org_id: int) -> bool:
    """Whether an organisation may see that someone of another organisation is looking at a
    case: owner and handler see every viewer; a partner sees its own people and those of
    owner and handler, never which other partners the case is shared with."""
    insiders = {case.owner_organization_id, case.handling_organization_id}
    if observer_org_id in insiders:
        return True
    return viewer_org_id == observer_org_id or viewer_org_id in insiders


# --- telephony ---------------------------------------------------------------------------

OPEN_STATUSES = ("new", "open", "waiting")


def caller_candidates(actor: User, e164: str) -> sa.Select[int, str, int | None]:
    """Customers (and their contacts) with this number whose contact details the actor may
    see: a number only identifies a caller to those allowed to see that number."""
    return _callers(actor.organization_id, e164)


def _callers(org_id: Any, e164: Any) -> sa.Select[int, str, int | None]:
    return (
        sa.select(Customer.id, Customer.name, PhoneNumber.contact_id)
        .join(PhoneNumber, PhoneNumber.customer_id == Customer.id)
        .where(
            PhoneNumber.e164 == e164,
            Customer.merged_into_id.is_(None),
            customer_details_visible_to(org_id),
        )
        .order_by(Customer.id)
    )


CALLER_LIMIT = 50


def caller_lookup(actor: User, e164: str) -> tuple[sa.Select[int, str, int | None], dict[str, Any]]:
    """`caller_candidates` (at most CALLER_LIMIT rows) as one statement built once, with its
    parameters: the phone lookup is the interaction center's hot path."""
    return _caller_lookup(), {"caller_org": actor.organization_id, "caller_e164": e164}


@functools.cache
def _caller_lookup() -> sa.Select[int, str, int | None]:
    org = sa.bindparam("caller_org", type_=sa.Integer())
    number = sa.bindparam("caller_e164", type_=sa.String())
    return _callers(org, number).limit(CALLER_LIMIT)


def open_cases_of(actor: User, customer_ids: Sequence[int]) -> sa.Select[Case]:
    """The actor's visible open cases of these customers, most recently active first."""
    return (
        sa.select(Case)
        .where(
            Case.customer_id.in_(customer_ids),
            Case.status.in_(OPEN_STATUSES),
            case_visible_to(actor.organization_id),
        )
        .order_by(Case.last_activity_at.desc(), Case.id.desc())
    )


def open_case_ids_lookup(
    actor: User, customer_ids: Sequence[int]
) -> tuple[sa.Select[int, int], dict[str, Any]]:
    """(case id, customer id) of `open_cases_of`, as one statement built once (the screen
    pop's second read), with its parameters."""
    params = {"open_org": actor.organization_id, "open_customers": list(customer_ids)}
    return _open_case_ids(), params


@functools.cache
def _open_case_ids() -> sa.Select[int, int]:
    org: Any = sa.bindparam("open_org", type_=sa.Integer())
    return (
        sa.select(Case.id, Case.customer_id)
        .where(
            Case.customer_id.in_(sa.bindparam("open_customers", expanding=True)),
            Case.status.in_(OPEN_STATUSES),
            case_visible_to(org),
        )
        .order_by(Case.last_activity_at.desc(), Case.id.desc())
    )


def visible_calls(actor: User) -> sa.Select[Call]:
    """Calls are private to the agent they rang for."""
    return sa.select(Call).where(
        Call.agent_user_id == actor.id, Call.organization_id == actor.organization_id
    )
