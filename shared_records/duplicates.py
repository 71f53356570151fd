"""Duplicate check when a customer or contact is created (form, API, import, business card).

Candidates come from blocking keys, never from a scan over all customers: the E.164 index of
phone numbers, the index of normalised email addresses, and the btree keys of the customer
(folded name, postal code, folded city). One statement unions those lookups (each limited) and
asks the policy, per found customer, whether the actor sees it and its contact details;
rapidfuzz then scores the folded names in Python.

Privacy: a match is only shown when the actor may see the customer *and* its contact details,
since every reason (phone, email, postal code, city) would otherwise reveal hidden data. A
match the actor may not see, on a customer of the actor's value chain, only sets
`elsewhere_in_network`; nothing of that customer leaves this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from rapidfuzz import fuzz
from sqlalchemy.orm import InstrumentedAttribute, Session

from partners.models import User
from shared_records import policy
from shared_records.models import Customer, EmailAddress, PhoneNumber
from shared_records.normalize import InvalidValue, normalize_email, normalize_phone
from shared_records.schemas import CaptureCreate, ContactIn, CustomerCreate
from shared_records.textkeys import fold

REASON_PHONE = "phone"
REASON_EMAIL = "email"
REASON_NAME_POSTAL_CODE = "name_postal_code"
REASON_NAME_CITY = "name_city"
REASONS = (REASON_PHONE, REASON_EMAIL, REASON_NAME_POSTAL_CODE, REASON_NAME_CITY)

#: rapidfuzz score (0..100) from which two folded names count as the same name.
NAME_THRESHOLD = 85.0
#: Rows taken from each blocking key; a postal code or city rarely holds more namesakes.
BLOCK_LIMIT = 500
#: Candidates reported at most (best first).
MAX_CANDIDATES = 10

# Blocks whose match counts as a likely duplicate by itself.
_EXACT_BLOCKS = frozenset({REASON_PHONE, REASON_EMAIL})


@dataclass(frozen=True)
class Candidate:
    """A customer the actor may see (with its contact details) that may be the same one."""

    customer_id: int
    name: str
    reasons: tuple[str, ...]  # of REASONS
    score: float  # 0..100
    city: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "name": self.name,
            "city": self.city,
            "reasons": list(self.reasons),
            "score": self.score,
        }


@dataclass(frozen=True)
class DuplicateReport:
    candidates: list[Candidate] = field(default_factory=list)
    # A likely duplicate exists in the actor's value chain that the actor may not see.
    elsewhere_in_network: bool = False

    @property
    def found(self) -> bool:
        """Whether there is anything to warn about."""
        return bool(self.candidates) or self.elsewhere_in_network

    @property
    def message(self) -> str | None:
        if not self.elsewhere_in_network:
            return None
        return elsewhere_message()

    def as_json(self) -> dict[str, Any]:
        return {
            "candidates": [c.as_json() for c in self.candidates],
            "elsewhere_in_network": self.elsewhere_in_network,
            "message": self.message,
        }


def elsewhere_message() -> str:
    return str(_("This customer may already be served in your network; contact your manufacturer."))


def _phones(raw: Iterable[str], region: str) -> list[str]:
    found: list[str] = []
    for value in raw:
        try:
            e164 = normalize_phone(value, region)
        except InvalidValue:
            continue  # the writer reports invalid values; the check just skips them
        if e164 not in found:
            found.append(e164)
    return found


def _emails(raw: Iterable[str]) -> list[str]:
    found: list[str] = []
    for value in raw:
        try:
            email = normalize_email(value)
        except InvalidValue:
            continue
        if email not in found:
            found.append(email)
    return found


def _block(
    reason: str, column: InstrumentedAttribute[int], *where: sa.ColumnElement[bool]
) -> sa.Select[str, int]:
    """One blocking-key lookup as `(reason, id)` rows, limited (wrapped so that the LIMIT is
    allowed inside a UNION on SQLite too)."""
    inner = (
        sa.select(sa.literal(reason).label("reason"), column.label("id"))
        .where(*where)
        .limit(BLOCK_LIMIT)
        .subquery()
    )
    return sa.select(inner.c.reason, inner.c.id)


def _name_score(folded: str, name_key: str) -> float:
    if not folded or not name_key:
        return 0.0
    return float(fuzz.token_sort_ratio(folded, name_key))


def find_duplicates(
    session: Session,
    actor: User,
    *,
    name: str,
    phones: Sequence[str] = (),
    emails: Sequence[str] = (),
    postal_code: str | None = None,
    city: str | None = None,
    exclude_customer_id: int | None = None,
) -> DuplicateReport:
    """Customers that may be the would-be customer described, as the actor may learn of them.

    Raw phones and emails are normalised here (invalid ones are ignored). Matches: the same
    phone number or email address (of the customer or one of its contacts), or a name scoring
    at least NAME_THRESHOLD with the same postal code or city. Merged customers never match.
    """
    region = actor.organization.phone_region
    e164s = _phones(phones, region)
    addresses = _emails(emails)
    folded_name = fold(name or "")
    postal = (postal_code or "").strip()
    city_key = fold(city or "")

    blocks = []
    if e164s:
        blocks.append(_block(REASON_PHONE, PhoneNumber.customer_id, PhoneNumber.e164.in_(e164s)))
    if addresses:
        blocks.append(
            _block(REASON_EMAIL, EmailAddress.customer_id, EmailAddress.email.in_(addresses))
        )
    if folded_name and postal:
        blocks.append(_block("postal_code", Customer.id, Customer.postal_code == postal))
    if folded_name and city_key:
        blocks.append(_block("city", Customer.id, Customer.city_key == city_key))
        # Exact namesakes even where a big city holds more customers than BLOCK_LIMIT.
        blocks.append(_block("name", Customer.id, Customer.name_key == folded_name[:200]))
    elif folded_name and postal:
        blocks.append(_block("name", Customer.id, Customer.name_key == folded_name[:200]))
    if not blocks:
        return DuplicateReport()

    found = sa.union_all(*blocks).subquery()
    org_id = actor.organization_id
    chain = policy.chain_organizations(actor.organization).subquery()
    stmt = (
        sa.select(
            Customer.id,
            Customer.name,
            Customer.name_key,
            Customer.postal_code,
            Customer.city,
            Customer.city_key,
            found.c.reason,
            policy.customer_visible_to(org_id).label("visible"),
            policy.customer_details_visible_to(org_id).label("details"),
            Customer.owner_organization_id.in_(sa.select(chain.c.id)).label("in_chain"),
        )
        .join(found, found.c.id == Customer.id)
        .where(Customer.merged_into_id.is_(None))
    )
    if exclude_customer_id is not None:
        stmt = stmt.where(Customer.id != exclude_customer_id)

    by_id: dict[int, dict[str, Any]] = {}
    for row in session.execute(stmt):
        entry = by_id.setdefault(row.id, {"row": row, "blocks": set()})
        entry["blocks"].add(row.reason)

    candidates: list[Candidate] = []
    elsewhere = False
    for customer_id, entry in by_id.items():
        row = entry["row"]
        reasons: list[str] = [r for r in (REASON_PHONE, REASON_EMAIL) if r in entry["blocks"]]
        score = 100.0 if reasons else 0.0
        name_score = _name_score(folded_name, row.name_key)
        if name_score >= NAME_THRESHOLD:
            if postal and row.postal_code == postal:
                reasons.append(REASON_NAME_POSTAL_CODE)
            if city_key and row.city_key == city_key:
                reasons.append(REASON_NAME_CITY)
            if len(reasons) > len(_EXACT_BLOCKS & entry["blocks"]):
                score = max(score, name_score)
        if not reasons:
            continue
        if row.details:
            candidates.append(
                Candidate(customer_id, row.name, tuple(reasons), round(score, 1), row.city)
            )
        elif row.visible or row.in_chain:
            elsewhere = True
    candidates.sort(key=lambda c: (-c.score, c.customer_id))
    return DuplicateReport(candidates[:MAX_CANDIDATES], elsewhere)


def for_customer(
    session: Session,
    actor: User,
    data: CustomerCreate,
    *,
    exclude_customer_id: int | None = None,
) -> DuplicateReport:
    """The duplicate check of a would-be customer (its contacts' phones and emails included)."""
    phones = [*data.phones, *(p for c in data.contacts for p in c.phones)]
    emails = [*data.emails, *(e for c in data.contacts for e in c.emails)]
    return find_duplicates(
        session,
        actor,
        name=data.name,
        phones=phones,
        emails=emails,
        postal_code=data.postal_code,
        city=data.city,
        exclude_customer_id=exclude_customer_id,
    )


def for_contact(
    session: Session, actor: User, customer_id: int, data: ContactIn
) -> DuplicateReport:
    """Customers (other than the contact's own) holding the would-be contact's phones or emails."""
    return find_duplicates(
        session,
        actor,
        name=data.name,
        phones=data.phones,
        emails=data.emails,
        exclude_customer_id=customer_id,
    )


def confirmation_key(data: CustomerCreate | ContactIn | CaptureCreate) -> str:
    """A short fingerprint of the values a warning was shown for: a form confirms "create
    anyway" with it, so that changing those values afterwards triggers a new check."""
    parts = {
        "name": data.name,
        "phones": sorted(data.phones),
        "emails": sorted(data.emails),
        "postal_code": getattr(data, "postal_code", None),
        "city": getattr(data, "city", None),
        "company": getattr(data, "company", None),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return digest[:16]
