"""Property-based test of the visibility policy: random value-chain networks, built through the
service layer, answered by the REST API exactly as a small independent reference model says.

Each Hypothesis example creates its own organisations (unique slugs), partnerships, users,
customers, cases, shares, hand-overs, claims and timeline entries, then asks the API as every
user of that network and compares each answer with `Reference` below. The reference is plain
Python written from the rules in `shared_records/policy.py`'s docstring; it never calls the
policy module to decide what is expected.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

import portal.db
from auth.service import create_api_token
from partners import service as partners_service
from partners.models import Organization, User
from portal.enums import CustomerKind
from portal.errors import Conflict, NotFound, PortalError, ValidationFailed
from shared_records import policy, service
from shared_records.models import TimelineAudience, TimelineEntry
from shared_records.schemas import (
    CaseCreate,
    ContactIn,
    CustomerCreate,
    EntryCreate,
    Handover,
    ShareCreate,
)
from shared_records.service import ClaimedByOther

_SEQ = itertools.count(1)  # unique slugs, emails, phones and bodies across examples

NONE, READ, COMMENT, EDIT = 0, 1, 2, 3
LEVEL = {"read": READ, "comment": COMMENT, "edit": EDIT}
LABEL = {READ: "read", COMMENT: "comment", EDIT: "edit"}
DETAIL_KEYS = ("emails", "phones", "street", "postal_code")
PRIORITIES = ("low", "normal", "high", "urgent")
PAGE = 7  # small page size, so that lists span several pages

Audience = str | frozenset[int]  # "internal" | "shared" | the explicit organisations


# --- the reference model ---------------------------------------------------------------------


@dataclass
class RUser:
    id: int
    org: int
    role: str
    name: str
    token: str = ""

    @property
    def worker(self) -> bool:
        return self.role in ("admin", "agent")


@dataclass
class RCustomer:
    id: int
    owner: int


@dataclass(frozen=True)
class REntry:
    id: int
    author_org: int
    audience: Audience

    def reaches(self, org: int) -> bool:
        """The author's organisation always; `shared` everyone who sees the case; a list, its
        organisations."""
        if org == self.author_org or self.audience == "shared":
            return True
        return isinstance(self.audience, frozenset) and org in self.audience


@dataclass
class RCase:
    id: int
    customer: int
    owner: int
    handler: int
    holder: int | None = None
    priority: str = "normal"
    shares: dict[int, tuple[int, bool]] = field(default_factory=dict)  # org -> (level, details)
    entries: list[REntry] = field(default_factory=list)


@dataclass
class Reference:
    """The policy rules, restated over plain dictionaries."""

    kinds: dict[int, str] = field(default_factory=dict)  # organisation id -> kind
    partners_of: dict[int, set[int]] = field(default_factory=dict)  # manufacturer -> partners
    users: dict[int, RUser] = field(default_factory=dict)
    customers: dict[int, RCustomer] = field(default_factory=dict)
    cases: dict[int, RCase] = field(default_factory=dict)

    # value chains
    def chain(self, org: int) -> set[int]:
        """Organisations sharing a value chain with `org` (without `org` itself)."""
        manufacturers = {m for m, partners in self.partners_of.items() if org in partners}
        if self.kinds[org] == "manufacturer":
            manufacturers.add(org)
        members = set(manufacturers)
        for m in manufacturers:
            members |= self.partners_of.get(m, set())
        return members - {org}

    def handover_targets(self, case: RCase) -> set[int]:
        return {case.owner} | self.chain(case.owner)

    # cases
    @staticmethod
    def sees(org: int, case: RCase) -> bool:
        return org in (case.owner, case.handler) or org in case.shares

    def orgs_seeing(self, case: RCase) -> set[int]:
        return {case.owner, case.handler, *case.shares}

    @staticmethod
    def org_access(org: int, case: RCase) -> int:
        if org in (case.owner, case.handler):
            return EDIT
        if org in case.shares:
            return case.shares[org][0]
        return NONE

    def access(self, user: RUser, case: RCase) -> int:
        cap = READ if user.role == "viewer" else EDIT
        return min(self.org_access(user.org, case), cap)

    def reasons(self, org: int, case: RCase) -> list[tuple[str, str]]:
        out = []
        if org == case.owner:
            out.append(("owner", "edit"))
        if org == case.handler:
            out.append(("handler", "edit"))
        if org in case.shares:
            out.append(("share", LABEL[case.shares[org][0]]))
        return out

    def visible_case_ids(self, org: int) -> set[int]:
        return {c.id for c in self.cases.values() if self.sees(org, c)}

    def timeline(self, org: int, case: RCase) -> set[int]:
        return {e.id for e in case.entries if e.reaches(org)}

    def expected_shares(self, org: int, case: RCase) -> set[tuple[int, str, bool]]:
        """Owner and handler see every share of a case, another partner only its own."""
        if org in (case.owner, case.handler):
            shown = case.shares
        else:
            shown = {o: s for o, s in case.shares.items() if o == org}
        return {(o, LABEL[level], details) for o, (level, details) in shown.items()}

    # customers
    def cases_of(self, customer: int) -> list[RCase]:
        return [c for c in self.cases.values() if c.customer == customer]

    def sees_customer(self, org: int, customer: RCustomer) -> bool:
        return customer.owner == org or any(self.sees(org, c) for c in self.cases_of(customer.id))

    def contact_details(self, org: int, customer: RCustomer) -> bool:
        if customer.owner == org:
            return True
        for case in self.cases_of(customer.id):
            if org in (case.owner, case.handler):
                return True
            if org in case.shares and case.shares[org][1]:
                return True
        return False

    def visible_customer_ids(self, org: int) -> set[int]:
        return {c.id for c in self.customers.values() if self.sees_customer(org, c)}


# --- building a random network through the service layer -------------------------------------

ExpectedEntry = tuple[str, str | None, int, Audience]  # kind, field, author org, audience


class NetworkBuilder:
    """Draws a random network and creates it with the services, keeping `ref` in step."""

    def __init__(self, session: Session, data: st.DataObject) -> None:
        self.session = session
        self.data = data
        self.ref = Reference()
        self.orgs: dict[int, Organization] = {}
        self.users: dict[int, User] = {}

    def draw(self, strategy: st.SearchStrategy[Any], label: str) -> Any:
        return self.data.draw(strategy, label=label)

    def pick(self, items: Any, label: str) -> Any:
        return self.draw(st.sampled_from(sorted(items)), label)

    # organisations, partnerships, users, customers
    def organisations(self) -> None:
        n_manufacturers = self.draw(st.integers(2, 3), "manufacturers")
        n_partners = self.draw(st.integers(2, 5), "partners")
        kinds = ["manufacturer"] * n_manufacturers + [
            self.draw(st.sampled_from(["dealer", "supplier", "agency"]), "partner kind")
            for _ in range(n_partners)
        ]
        for kind in kinds:
            n = next(_SEQ)
            org = partners_service.create_organization(
                self.session, name=f"Org {n} ({kind})", slug=f"prop-org-{n}", kind=kind
            )
            self.orgs[org.id] = org
            self.ref.kinds[org.id] = kind
        manufacturers = [i for i, k in self.ref.kinds.items() if k == "manufacturer"]
        for m in manufacturers:
            self.ref.partners_of[m] = set()
        for p in (i for i, k in self.ref.kinds.items() if k != "manufacturer"):
            if self.draw(st.integers(0, 4), "unlinked partner") == 0:
                continue  # now and then a partner outside every value chain
            brands = self.draw(
                st.lists(st.sampled_from(manufacturers), min_size=1, unique=True), "brands"
            )
            for m in brands:
                role = self.draw(st.sampled_from(["dealer", "supplier", "agency"]), "role")
                partners_service.add_partnership(self.session, self.orgs[m], self.orgs[p], role)
                self.ref.partners_of[m].add(p)

    def people(self) -> None:
        for org_id in list(self.orgs):
            first = self.draw(st.sampled_from(["admin", "agent"]), "first role")
            more = self.draw(
                st.lists(st.sampled_from(["admin", "agent", "viewer"]), max_size=2), "roles"
            )
            for role in [first, *more]:
                n = next(_SEQ)
                user = partners_service.create_user(
                    self.session,
                    self.orgs[org_id],
                    email=f"user{n}@prop{n}.example",
                    name=f"User {n} {role}",
                    role=role,
                    password=None,
                )
                self.users[user.id] = user
                self.ref.users[user.id] = RUser(user.id, org_id, role, user.name)
        self.session.commit()
        for user_id, user in self.users.items():
            _token, secret = create_api_token(self.session, user, "property test")
            self.ref.users[user_id].token = secret

    def customers(self) -> None:
        for org_id in list(self.orgs):
            for _ in range(self.draw(st.integers(0, 2), "customers")):
                actor = self.users[self.worker_of(org_id)]
                n = next(_SEQ)
                company = self.draw(st.booleans(), "company")
                contacts = []
                if company and self.draw(st.booleans(), "contact"):
                    contacts.append(
                        ContactIn(
                            name=f"Contact {n}",
                            phones=[f"0171 {3000000 + n}"],
                            emails=[f"contact{n}@firma{n}.example"],
                        )
                    )
                address = (
                    {"street": f"Weg {n}", "postal_code": "10115"}
                    if self.draw(st.booleans(), "street")
                    else {}
                )
                body = CustomerCreate(
                    name=f"Customer {n}",
                    kind=CustomerKind.COMPANY if company else CustomerKind.PERSON,
                    phones=[f"030 {1000000 + n}"] * self.draw(st.integers(0, 1), "phones"),
                    emails=[f"kunde{n}@mail{n}.example"] * self.draw(st.integers(0, 1), "emails"),
                    city="Berlin",
                    contacts=contacts,
                    **address,
                )
                customer = service.create_customer(self.session, actor, body)
                self.ref.customers[customer.id] = RCustomer(customer.id, org_id)

    def worker_of(self, org_id: int) -> int:
        workers = [u.id for u in self.ref.users.values() if u.org == org_id and u.worker]
        result: int = self.pick(workers, "worker")
        return result

    # cases
    def cases(self) -> None:
        for _ in range(self.draw(st.integers(2, 5), "cases")):
            owner = self.pick(self.orgs, "case owner")
            actor = self.users[self.worker_of(owner)]
            visible = self.ref.visible_customer_ids(owner)
            hidden = set(self.ref.customers) - visible
            if hidden and (not visible or self.draw(st.booleans(), "try hidden customer")):
                customer = self.pick(hidden, "hidden customer")
                with pytest.raises(ValidationFailed):
                    service.create_case(
                        self.session, actor, CaseCreate(customer_id=customer, subject="x")
                    )
                self.session.rollback()
            if not visible:
                continue
            customer = self.pick(visible, "customer")
            view = service.create_case(
                self.session,
                actor,
                CaseCreate(customer_id=customer, subject=f"Case {next(_SEQ)}"),
            )
            assert view.case.owner_organization_id == owner
            self.ref.cases[view.case.id] = RCase(view.case.id, customer, owner, owner)

    def operations(self) -> None:
        if not self.ref.cases:
            return
        weights = {"share": 3, "unshare": 1, "handover": 2, "claim": 1, "release": 1, "entry": 3}
        ops = {
            "share": self.share,
            "unshare": self.unshare,
            "handover": self.handover,
            "claim": self.claim,
            "release": self.release,
            "entry": self.entry,
        }
        menu = [op for op, weight in weights.items() for _ in range(weight)]
        for _ in range(self.draw(st.integers(3, 14), "operations")):
            op = self.draw(st.sampled_from(menu), "operation")
            case = self.ref.cases[self.pick(self.ref.cases, "case")]
            # Each operation starts from the database, like a request with its own session.
            self.session.expire_all()
            event(f"operation: {op}")
            ops[op](case)

    def expect_refusal(self, error: type[PortalError], call: Any, code: str | None = None) -> None:
        event(f"refused: {error.__name__}")
        with pytest.raises(error) as refused:
            call()
        if code is not None:
            assert refused.value.code == code
        self.session.rollback()

    def record(self, case: RCase, expected: list[ExpectedEntry]) -> None:
        """The entries the last operation wrote are exactly `expected`; add them to the model."""
        last = max((e.id for e in case.entries), default=0)
        rows = self.session.execute(
            sa.select(
                TimelineEntry.id,
                TimelineEntry.kind,
                TimelineEntry.field,
                TimelineEntry.organization_id,
                TimelineEntry.audience,
            )
            .where(TimelineEntry.case_id == case.id, TimelineEntry.id > last)
            .order_by(TimelineEntry.id)
        ).all()
        written = []
        for entry_id, kind, field_name, org, audience in rows:
            if audience == "organizations":
                members = self.session.scalars(
                    sa.select(TimelineAudience.organization_id).where(
                        TimelineAudience.entry_id == entry_id
                    )
                )
                audience = frozenset(members)
            written.append((entry_id, (kind, field_name, org, audience)))
        assert Counter(w for _, w in written) == Counter(expected)
        for entry_id, (_kind, _field, org, audience) in written:
            case.entries.append(REntry(entry_id, org, audience))

    def share(self, case: RCase) -> None:
        actor = self.users[self.worker_of(case.owner)]
        chain = self.ref.chain(case.owner)
        if chain and self.draw(st.integers(0, 3), "valid target") > 0:
            target = self.pick(chain, "share target")
        else:
            target = self.pick(self.orgs, "any share target")
        level = self.draw(st.sampled_from(["read", "comment", "edit"]), "access")
        details = self.draw(st.booleans(), "include_contact_details")
        body = ShareCreate(organization_id=target, access=level, include_contact_details=details)
        call = partial(service.share_case, self.session, actor, case.id, body)
        if target == case.owner or target not in self.ref.chain(case.owner):
            self.expect_refusal(ValidationFailed, call)
            return
        call()
        case.shares[target] = (LEVEL[level], details)
        self.record(case, [("change", "share", case.owner, frozenset({case.owner, target}))])

    def unshare(self, case: RCase) -> None:
        actor = self.users[self.worker_of(case.owner)]
        if case.shares and self.draw(st.integers(0, 3), "shared target") > 0:
            target = self.pick(case.shares, "unshare target")
        else:
            target = self.pick(self.orgs, "any unshare target")
        call = partial(service.unshare_case, self.session, actor, case.id, target)
        if target not in case.shares:
            self.expect_refusal(NotFound, call)
            return
        call()
        del case.shares[target]
        self.record(case, [("change", "share", case.owner, frozenset({case.owner, target}))])

    def handler_candidate(self, case: RCase) -> RUser | None:
        """A user allowed to claim, release or hand over the case (preferring the holder)."""
        able = [u.id for u in self.ref.users.values() if self.ref.access(u, case) == EDIT]
        if case.holder is not None and self.draw(st.booleans(), "act as holder"):
            return self.ref.users[case.holder]
        return self.ref.users[self.pick(able, "handling actor")] if able else None

    def handover(self, case: RCase) -> None:
        actor = self.handler_candidate(case)
        if actor is None:
            return
        to_user = self.draw(st.booleans(), "hand over to a user")
        message = self.draw(st.sampled_from(["", "Bitte übernehmen."]), "message")
        if to_user:
            target_user: RUser | None = self.ref.users[self.pick(self.ref.users, "target user")]
            assert target_user is not None
            target_org = target_user.org
            body = Handover(user_id=target_user.id, message=message)
        else:
            target_user = None
            target_org = self.pick(self.orgs, "target organisation")
            body = Handover(organization_id=target_org, message=message)
        call = partial(service.hand_over_case, self.session, self.users[actor.id], case.id, body)
        owner_admin = actor.org == case.owner and actor.role == "admin"
        if case.holder not in (None, actor.id) and not owner_admin:
            self.expect_refusal(ClaimedByOther, call)
            return
        if target_org not in self.ref.handover_targets(case) or (
            target_user is not None and target_user.role == "viewer"
        ):
            self.expect_refusal(ValidationFailed, call)
            return
        call()
        expected: list[ExpectedEntry] = []
        old_name = self.ref.users[case.holder].name if case.holder else None
        new_name = target_user.name if target_user else None
        if old_name != new_name:
            expected.append(("change", "handling_user", actor.org, "shared"))
        if case.handler != target_org:
            expected.append(("change", "handling_organization", actor.org, "shared"))
        if message:
            audience = frozenset({actor.org, target_org, case.owner})
            expected.append(("note", "handover", actor.org, audience))
        case.handler = target_org
        case.holder = target_user.id if target_user else None
        self.record(case, expected)

    def claim(self, case: RCase) -> None:
        actor = self.handler_candidate(case)
        if actor is None:
            return
        call = partial(service.claim_case, self.session, self.users[actor.id], case.id)
        if case.holder not in (None, actor.id):
            self.expect_refusal(ClaimedByOther, call)
            return
        call()
        expected: list[ExpectedEntry] = []
        if case.holder != actor.id:
            expected.append(("change", "handling_user", actor.org, "shared"))
            if case.handler != actor.org:
                expected.append(("change", "handling_organization", actor.org, "shared"))
        case.holder = actor.id
        case.handler = actor.org
        self.record(case, expected)

    def release(self, case: RCase) -> None:
        actor = self.handler_candidate(case)
        if actor is None:
            return
        call = partial(service.release_case, self.session, self.users[actor.id], case.id)
        owner_admin = actor.org == case.owner and actor.role == "admin"
        if case.holder is None:
            self.expect_refusal(Conflict, call, code="not_claimed")
            return
        if case.holder != actor.id and not owner_admin:
            self.expect_refusal(ClaimedByOther, call)
            return
        call()
        case.holder = None
        self.record(case, [("change", "handling_user", actor.org, "shared")])

    def entry(self, case: RCase) -> None:
        able = [u.id for u in self.ref.users.values() if self.ref.access(u, case) >= COMMENT]
        if not able:
            return
        actor = self.ref.users[self.pick(able, "author")]
        kind = self.draw(st.sampled_from(["internal", "shared", "list", "bogus list"]), "audience")
        audience: Any = kind
        if kind in ("list", "bogus list"):
            view = policy.get_visible_case(self.session, self.users[actor.id], case.id)
            choices = {org.id for org in policy.audience_choices(self.session, view)}
            # The choices may only name organisations that see the case.
            assert choices <= self.ref.orgs_seeing(case)
            audience = self.draw(
                st.lists(st.sampled_from(sorted(choices)), min_size=1, unique=True), "list"
            )
            outsiders = set(self.orgs) - self.ref.orgs_seeing(case)
            if kind == "bogus list":
                if not outsiders:
                    return
                audience = [*audience, self.pick(outsiders, "outsider")]
        body = EntryCreate(body=f"Note {next(_SEQ)}", audience=audience)
        call = partial(service.add_entry, self.session, self.users[actor.id], case.id, body)
        if kind == "bogus list":
            self.expect_refusal(ValidationFailed, call)
            return
        call()
        stored: Audience = (
            frozenset({*audience, actor.org}) if isinstance(audience, list) else audience
        )
        self.record(case, [("note", None, actor.org, stored)])


# --- asking the API ----------------------------------------------------------------------------


class Api:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def call(
        self, method: str, user: RUser, url: str, body: Any = None, query: Any = None
    ) -> tuple[int, Any]:
        response = self.client.open(
            url,
            method=method,
            headers={"Authorization": f"Bearer {user.token}"},
            json=body,
            query_string=query,
        )
        return response.status_code, response.get_json(silent=True)

    def get(self, user: RUser, url: str) -> tuple[int, Any]:
        return self.call("GET", user, url)

    def all_pages(self, user: RUser, url: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        for _ in range(1000):
            query: dict[str, Any] = {"limit": PAGE}
            if cursor:
                query["cursor"] = cursor
            status, page = self.call("GET", user, url, query=query)
            assert status == 200, page
            assert len(page["items"]) <= PAGE
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert len(page["items"]) == PAGE  # a next page only after a full one
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids)), f"a record came twice across pages: {ids}"
        return items


def check_reads(api: Api, ref: Reference, missing_case: int, missing_customer: int) -> None:
    """Every user's view of cases, timelines, shares and customers equals the reference."""
    for user in ref.users.values():
        org = user.org
        # cases: the list, every detail, 404 for the invisible ones
        listed = {item["id"]: item for item in api.all_pages(user, "/api/v1/cases")}
        assert set(listed) == ref.visible_case_ids(org), f"case list of {user}"
        _, missing_body = api.get(user, f"/api/v1/cases/{missing_case}")
        for case in ref.cases.values():
            status, body = api.get(user, f"/api/v1/cases/{case.id}")
            t_status, timeline = api.get(user, f"/api/v1/cases/{case.id}/timeline")
            s_status, shares = api.get(user, f"/api/v1/cases/{case.id}/shares")
            if not ref.sees(org, case):
                assert (status, t_status, s_status) == (404, 404, 404), (user, case)
                assert body == timeline == shares == missing_body  # existence is never revealed
                continue
            assert (status, t_status, s_status) == (200, 200, 200), (user, case, body)
            event(f"case seen as {'+'.join(k for k, _ in ref.reasons(org, case))}")
            for item in (body, listed[case.id]):
                assert item["access"] == LABEL[ref.access(user, case)], (user, case, item)
                assert item["owner_organization_id"] == case.owner
                assert item["handling_organization_id"] == case.handler
                assert item["handling_user_id"] == case.holder
                assert item["priority"] == case.priority
                reasons = [(r["kind"], r["access"]) for r in item["visibility_reason"]]
                assert reasons == ref.reasons(org, case), (user, case, item)
            got = {e["id"] for e in timeline["items"]}
            assert got == ref.timeline(org, case), (user, case, timeline)
            got_shares = {
                (s["organization_id"], s["access"], s["include_contact_details"])
                for s in shares["items"]
            }
            assert got_shares == ref.expected_shares(org, case), (user, case)
        # customers: the list and every detail, contact details present or absent
        customers = {item["id"]: item for item in api.all_pages(user, "/api/v1/customers")}
        assert set(customers) == ref.visible_customer_ids(org), f"customer list of {user}"
        for customer in ref.customers.values():
            status, body = api.get(user, f"/api/v1/customers/{customer.id}")
            if not ref.sees_customer(org, customer):
                assert status == 404, (user, customer, body)
                assert body == api.get(user, f"/api/v1/customers/{missing_customer}")[1]
                continue
            assert status == 200, (user, customer, body)
            details = ref.contact_details(org, customer)
            if customer.owner != org:
                event(f"foreign customer, contact details {'shown' if details else 'hidden'}")
            for item in (body, customers[customer.id]):
                assert item["contact_details_visible"] is details, (user, customer, item)
                for key in DETAIL_KEYS:
                    assert (key in item) is details, (user, customer, key, item)
                for contact in item["contacts"]:
                    for key in ("emails", "phones"):
                        assert (key in contact) is details, (user, customer, contact)


def check_writes(api: Api, ref: Reference) -> None:
    """PATCH, POST timeline and POST shares answer as the reference says; refusals change
    nothing."""
    for case in ref.cases.values():
        owner_user = next(u for u in ref.users.values() if u.org == case.owner)
        status, snapshot = api.get(owner_user, f"/api/v1/cases/{case.id}")
        assert status == 200
        for user in ref.users.values():
            access = ref.access(user, case)
            new_priority = PRIORITIES[(PRIORITIES.index(case.priority) + 1) % len(PRIORITIES)]
            status, body = api.call(
                "PATCH",
                user,
                f"/api/v1/cases/{case.id}",
                {"version": snapshot["version"], "priority": new_priority},
            )
            _, after = api.get(owner_user, f"/api/v1/cases/{case.id}")
            if not ref.sees(user.org, case):
                assert status == 404, (user, case, body)
                assert after == snapshot
                continue
            if user.role == "viewer" or access != EDIT:
                assert status == 403, (user, case, body)
                assert body["error"]["code"] == "forbidden"
                assert after == snapshot
                continue
            assert status == 200, (user, case, body)
            assert body["priority"] == new_priority
            assert after["priority"] == new_priority
            assert after["version"] == snapshot["version"] + 1
            _, timeline = api.get(user, f"/api/v1/cases/{case.id}/timeline")
            new = [e for e in timeline["items"] if e["id"] not in {x.id for x in case.entries}]
            assert len(new) == 1, new
            assert (new[0]["field"], new[0]["old_value"], new[0]["new_value"]) == (
                "priority",
                case.priority,
                new_priority,
            )
            assert new[0]["audience"] == "shared"
            case.entries.append(REntry(new[0]["id"], user.org, "shared"))
            case.priority = new_priority
            snapshot = after

        for user in ref.users.values():
            access = ref.access(user, case)
            body_text = f"Probe {next(_SEQ)}"
            status, body = api.call(
                "POST",
                user,
                f"/api/v1/cases/{case.id}/timeline",
                {"body": body_text, "audience": "internal"},
            )
            if not ref.sees(user.org, case):
                assert status == 404, (user, case, body)
            elif user.role == "viewer" or access < COMMENT:
                assert status == 403, (user, case, body)
            else:
                assert status == 201, (user, case, body)
                assert (body["organization_id"], body["audience"]) == (user.org, "internal")
                case.entries.append(REntry(body["id"], user.org, "internal"))
            # Sharing is for the owner's agents and admins; they get past the permission check
            # to the validation (the owner itself is no share target), so nothing is written.
            status, body = api.call(
                "POST",
                user,
                f"/api/v1/cases/{case.id}/shares",
                {"organization_id": case.owner, "access": "edit"},
            )
            if not ref.sees(user.org, case):
                assert status == 404, (user, case, body)
            elif user.org != case.owner or not user.worker:
                assert status == 403, (user, case, body)
            else:
                assert status == 422, (user, case, body)
        # Comments move the case up in the inbox but never change its version or fields.
        _, after = api.get(owner_user, f"/api/v1/cases/{case.id}")
        unchanged = {k: v for k, v in snapshot.items() if k != "last_activity_at"}
        assert {k: v for k, v in after.items() if k != "last_activity_at"} == unchanged


def check_timelines_and_shares(api: Api, ref: Reference) -> None:
    """After the writes, each organisation's timelines and shares still match the model."""
    seen_orgs: set[int] = set()
    for user in ref.users.values():
        if user.org in seen_orgs:
            continue
        seen_orgs.add(user.org)
        for case in ref.cases.values():
            if not ref.sees(user.org, case):
                continue
            _, timeline = api.get(user, f"/api/v1/cases/{case.id}/timeline")
            assert {e["id"] for e in timeline["items"]} == ref.timeline(user.org, case)
            _, shares = api.get(user, f"/api/v1/cases/{case.id}/shares")
            got = {
                (s["organization_id"], s["access"], s["include_contact_details"])
                for s in shares["items"]
            }
            assert got == ref.expected_shares(user.org, case)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_api_answers_match_the_reference_model(empty_app: Flask, data: st.DataObject) -> None:
    """For random networks, every user's API answers follow the visibility rules: an
    organisation sees a case iff it owns, handles or has a share of it (404 otherwise, exactly
    like a case that does not exist); access is min(organisation access, role cap); timelines
    hold exactly the entries whose audience includes the organisation; customers are visible
    through ownership or a visible case, their contact details only through ownership,
    ownership or handling of one of their cases, or a share with contact details (hidden keys
    are absent); commenting needs comment access, editing edit access, sharing the owner's
    agents or admins (403 when visible, 404 when not), and a refused request changes nothing."""
    with empty_app.app_context():
        session = portal.db.get_session()
        builder = NetworkBuilder(session, data)
        builder.organisations()
        builder.people()
        builder.customers()
        builder.cases()
        builder.operations()
        session.commit()
        missing_case = (session.scalar(sa.text("SELECT max(id) FROM cases")) or 0) + 1000
        missing_customer = (session.scalar(sa.text("SELECT max(id) FROM customers")) or 0) + 1000
    ref = builder.ref
    api = Api(empty_app.test_client())
    check_reads(api, ref, missing_case, missing_customer)
    check_writes(api, ref)
    check_timelines_and_shares(api, ref)
