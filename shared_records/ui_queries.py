"""Read-side helpers of the web pages, all built on the visibility policy.

They answer what a page needs beyond `policy` and `queries`: which actions a case page offers,
whom a case can be handed over to, names for ids shown on a page and the dashboard counts.
Nothing here writes; the service layer still checks every action on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from partners.models import Organization, User
from portal.enums import CaseStatus, UserRole
from portal.errors import Forbidden
from shared_records import policy
from shared_records.models import Case, TimelineEntry
from shared_records.policy import CaseView, InboxScope, Permission
from shared_records.queries import like_pattern

OPEN_STATUSES = (CaseStatus.NEW.value, CaseStatus.OPEN.value, CaseStatus.WAITING.value)


def can_create(actor: User) -> bool:
    """Whether the actor may create customers and cases (policy.require_worker)."""
    try:
        policy.require_worker(actor)
    except Forbidden:
        return False
    return actor.is_active


@dataclass(frozen=True)
class CaseActions:
    """What the case page offers the viewing user (mirrors the checks of the service)."""

    edit: bool
    comment: bool
    share: bool
    claim: bool
    release: bool
    hand_over: bool
    claimed_by_me: bool
    claimed_by_other: bool

    @property
    def any_handling(self) -> bool:
        return self.claim or self.release or self.hand_over


def case_actions(actor: User, view: CaseView) -> CaseActions:
    case = view.case
    handle = policy.can(actor, Permission.HANDLE, view)
    mine = case.handling_user_id is not None and case.handling_user_id == actor.id
    other = case.handling_user_id is not None and not mine
    owner_admin = policy.can(actor, Permission.OVERRIDE_CLAIM, view)
    return CaseActions(
        edit=policy.can(actor, Permission.EDIT, view),
        comment=policy.can(actor, Permission.COMMENT, view),
        share=policy.can(actor, Permission.SHARE, view),
        claim=handle and not mine and not other,
        release=handle and (mine or (other and owner_admin)),
        hand_over=handle and (not other or owner_admin),
        claimed_by_me=mine,
        claimed_by_other=other,
    )


@dataclass(frozen=True, slots=True)
class Person:
    """Someone a case can be handed over to: all the form shows of them."""

    id: int
    name: str


@dataclass(frozen=True)
class HandoverGroup:
    organization: Organization
    users: list[Person]


# A value chain can have thousands of partners: the case page lists at most this many as
# share and handover targets and offers a search for the others.
TARGET_LIST_LIMIT = 100


def share_target_page(
    session: Session, case: Case, q: str | None = None
) -> tuple[list[Organization], bool]:
    """Organisations of the owner's value chains a case may be shared with or handed over
    to, by name (those whose name contains `q`), at most TARGET_LIST_LIMIT; and whether
    there are more."""
    stmt = policy.chain_organizations(case.owner_organization)
    if q:
        stmt = stmt.where(sa.func.lower(Organization.name).like(like_pattern(q), escape="\\"))
    orgs = list(session.scalars(stmt.limit(TARGET_LIST_LIMIT + 1)))
    return orgs[:TARGET_LIST_LIMIT], len(orgs) > TARGET_LIST_LIMIT


def handover_choices(
    session: Session, view: CaseView, q: str | None = None
) -> tuple[list[HandoverGroup], bool]:
    """Organisations a case may be handed over to (the owner first, then the page of
    `share_target_page`), each with its users who can handle cases (active agents and
    admins), read as plain rows; and whether there are more organisations."""
    targets, more = share_target_page(session, view.case, q)
    orgs = [view.case.owner_organization, *targets]
    ids = [org.id for org in orgs]
    rows = session.execute(
        sa.select(User.id, User.name, User.organization_id)
        .where(
            User.organization_id.in_(ids),
            User.active.is_(True),
            User.kind == "person",
            User.role.in_([UserRole.AGENT.value, UserRole.ADMIN.value]),
        )
        .order_by(User.name)
    ).all()
    by_org: dict[int, list[Person]] = {org_id: [] for org_id in ids}
    for user_id, name, org_id in rows:
        by_org[org_id].append(Person(user_id, name))
    return [HandoverGroup(org, by_org[org.id]) for org in orgs], more


@dataclass(frozen=True)
class AudienceOption:
    organization: Organization
    always: bool  # the author's own organisation is always in the audience (service)


def audience_options(session: Session, view: CaseView) -> list[AudienceOption]:
    """The organisations an entry's audience may name (policy.audience_choices)."""
    return [
        AudienceOption(org, org.id == view.actor.organization_id)
        for org in policy.audience_choices(session, view)
    ]


def user_names(session: Session, ids: Iterable[int | None]) -> dict[int, User]:
    """Users by id, for names shown next to records the viewer can already see."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(wanted)))}


def organization_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(Organization.id, Organization.name).where(Organization.id.in_(wanted))
    )
    return {row.id: row.name for row in rows}


def entry_audiences(session: Session, entries: Iterable[TimelineEntry]) -> dict[int, list[str]]:
    """The organisation names of each entry's explicit audience (entries the viewer sees)."""
    entries = list(entries)
    names = organization_names(
        session, {a.organization_id for e in entries for a in e.audience_organizations}
    )
    return {
        e.id: sorted(names[a.organization_id] for a in e.audience_organizations)
        for e in entries
        if e.audience_organizations
    }


# The dashboard counts among at most this many of the most recently active visible cases
# per tab: a manufacturer sees hundreds of thousands, and counting them all on every visit
# would cost more than the rest of the page. Below the cap the counts are exact.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class CaseCounts:
    """Visible cases per inbox tab and status, and the tabs whose counts reached the cap
    (counted among the COUNT_CAP most recently active cases only)."""

    per_scope: dict[str, dict[str, int]]
    capped: frozenset[str]

    def __getitem__(self, scope: str) -> dict[str, int]:
        return self.per_scope[scope]


def case_counts(session: Session, actor: User) -> CaseCounts:
    """One grouped query per tab over a bounded range of the visibility index."""
    per_scope: dict[str, dict[str, int]] = {}
    capped: set[str] = set()
    for scope in (InboxScope.MINE, InboxScope.ORGANIZATION, InboxScope.SHARED, InboxScope.ALL):
        conditions = [] if scope is InboxScope.ALL else [policy.inbox_scope(actor, scope)]
        page = policy.case_page_keys(actor, conditions, None, COUNT_CAP)
        stmt = (
            sa.select(Case.status, sa.func.count())
            .join(page, page.c.case_id == Case.id)
            .group_by(Case.status)
        )
        per_status = {status.value: 0 for status in CaseStatus}
        for status, number in session.execute(stmt):
            per_status[status] = number
        if sum(per_status.values()) >= COUNT_CAP:
            capped.add(scope.value)
        per_scope[scope.value] = per_status
    return CaseCounts(per_scope, frozenset(capped))


def open_count(per_status: dict[str, int]) -> int:
    return sum(per_status.get(status, 0) for status in OPEN_STATUSES)
