"""Typed models of the shared records: customers and their contacts, cases, timeline, shares."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship, validates

from partners.models import Organization, User
from portal.db import Base, created_at_col, intpk, utcnow
from portal.enums import (
    AudienceKind,
    CaseKind,
    CasePriority,
    CaseStatus,
    ConsentChannel,
    ConsentPurpose,
    CustomerKind,
    EntryKind,
)
from shared_records.textkeys import fold


def _in(column: str, values: type[StrEnum]) -> sa.CheckConstraint:
    return sa.CheckConstraint(sa.column(column).in_([v.value for v in values]), name=column)


class Customer(Base):
    """A person or company served along the value chain; owned by one organisation."""

    __tablename__ = "customers"

    id: Mapped[intpk]
    owner_organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(10))
    name: Mapped[str] = mapped_column(sa.String(200))
    street: Mapped[str | None] = mapped_column(sa.String(200))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))
    city: Mapped[str | None] = mapped_column(sa.String(100))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    # Folded spellings (see textkeys.fold): blocking keys of the duplicate check.
    name_key: Mapped[str] = mapped_column(sa.String(200), default="", index=True)
    city_key: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    # Set when this customer was merged into another one; the record stays as a pointer.
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[created_at_col]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner_organization: Mapped[Organization] = relationship()
    phones: Mapped[list[PhoneNumber]] = relationship(
        primaryjoin="and_(PhoneNumber.customer_id == Customer.id, PhoneNumber.contact_id == None)",
        order_by="PhoneNumber.position",
        viewonly=True,
    )
    emails: Mapped[list[EmailAddress]] = relationship(
        primaryjoin=(
            "and_(EmailAddress.customer_id == Customer.id, EmailAddress.contact_id == None)"
        ),
        order_by="EmailAddress.position",
        viewonly=True,
    )
    contacts: Mapped[list[Contact]] = relationship(back_populates="customer", order_by="Contact.id")

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        _in("kind", CustomerKind),
        sa.Index("ix_customers_postal_code", "postal_code"),
    )

    @validates("name")
    def _keep_name_key(self, _key: str, value: str) -> str:
        self.name_key = fold(value)[:200]
        return value

    @validates("city")
    def _keep_city_key(self, _key: str, value: str | None) -> str | None:
        self.city_key = fold(value)[:100] or None if value else None
        return value


class Contact(Base):
    """A person at a company customer."""

    __tablename__ = "contacts"

    id: Mapped[intpk]
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    position_title: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[created_at_col]

    customer: Mapped[Customer] = relationship(back_populates="contacts")
    phones: Mapped[list[PhoneNumber]] = relationship(order_by="PhoneNumber.position", viewonly=True)
    emails: Mapped[list[EmailAddress]] = relationship(
        order_by="EmailAddress.position", viewonly=True
    )


class PhoneNumber(Base):
    """A phone number of a customer (contact_id empty) or of one of its contacts, in E.164."""

    __tablename__ = "phone_numbers"

    id: Mapped[intpk]
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    e164: Mapped[str] = mapped_column(sa.String(20), index=True)
    position: Mapped[int] = mapped_column(default=0)


class EmailAddress(Base):
    """An email address of a customer (contact_id empty) or of one of its contacts, lower-cased."""

    __tablename__ = "email_addresses"

    id: Mapped[intpk]
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    position: Mapped[int] = mapped_column(default=0)


class Case(Base):
    """A customer case shared along the value chain.

    Owner and handling organisation decide visibility together with the shares, so they
    change only through their own operations, never through a generic update.
    """

    __tablename__ = "cases"

    id: Mapped[intpk]
    number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    subject: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    kind: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20))
    priority: Mapped[str] = mapped_column(sa.String(10))
    owner_organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    handling_organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    handling_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    claimed_at: Mapped[dt.datetime | None]
    # The holder's last sign of life on the claim; a claim not renewed for the configured
    # idle time expires (see policy.claim_expires_at).
    claim_renewed_at: Mapped[dt.datetime | None]
    created_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[created_at_col]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(lazy="joined")
    owner_organization: Mapped[Organization] = relationship(
        foreign_keys=[owner_organization_id], lazy="joined"
    )
    handling_organization: Mapped[Organization] = relationship(
        foreign_keys=[handling_organization_id], lazy="joined"
    )
    handling_user: Mapped[User | None] = relationship(
        foreign_keys=[handling_user_id], lazy="joined"
    )
    shares: Mapped[list[CaseShare]] = relationship(
        back_populates="case", order_by="CaseShare.created_at"
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        _in("kind", CaseKind),
        _in("status", CaseStatus),
        _in("priority", CasePriority),
        # The inbox reads these in last-activity order per organisation (keyset pages).
        sa.Index("ix_cases_owner_activity", "owner_organization_id", "last_activity_at", "id"),
        sa.Index(
            "ix_cases_handling_activity", "handling_organization_id", "last_activity_at", "id"
        ),
        sa.Index("ix_cases_activity", "last_activity_at", "id"),
    )


class ShareSuspension(Base):
    """Two organisations without a value chain in common: the shares of the first one's cases
    with the second one are suspended (they grant nothing until the two share a chain again).

    One row per pair of organisations, not per share, so that a dealer leaving a chain costs
    a few hundred rows here plus the visibility rows it loses, however many shares it had.
    Written only by `partners.service.recalculate_shares`, which updates `case_visibility`
    in the same transaction (the visibility triggers read this table for share changes).
    No foreign keys: every pair is taken from a share row and its case in the same
    statement, both of which reference the organisations already; per-row checks of the
    same fact cost a dealer's leave 20 ms of about 140.
    """

    __tablename__ = "share_suspensions"

    owner_organization_id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(primary_key=True, index=True)
    created_at: Mapped[created_at_col]


_SUSPENSIONS = ShareSuspension.__table__
# The share's case as its own alias: `suspended` stays correlated to `case_shares` alone,
# whatever else the enclosing query joins.
_SHARE_CASE = Case.__table__.alias("share_case")


class CaseShare(Base):
    """A case shared with another organisation of the owner's value chain.

    `suspended` (read-only, from `ShareSuspension`) while the owner and that organisation
    have no value chain in common (a partnership ended, see partners/service.py): the share
    then grants nothing and is shown nowhere, but keeps its access level and contact-details
    flag for when they share a chain again.
    """

    __tablename__ = "case_shares"

    id: Mapped[intpk]
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"))
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    access: Mapped[str] = mapped_column(sa.String(10))
    include_contact_details: Mapped[bool] = mapped_column(default=False)
    suspended: Mapped[bool] = column_property(
        sa.select(1)
        .select_from(
            _SUSPENSIONS.join(
                _SHARE_CASE,
                _SHARE_CASE.c.owner_organization_id == _SUSPENSIONS.c.owner_organization_id,
            )
        )
        .where(_SHARE_CASE.c.id == case_id, _SUSPENSIONS.c.organization_id == organization_id)
        .exists()
    )
    shared_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[created_at_col]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship(back_populates="shares")
    organization: Mapped[Organization] = relationship(lazy="joined")
    shared_by: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (
        sa.UniqueConstraint("case_id", "organization_id"),
        # An organisation's shares by case: leaving a value chain reads them from the index
        # alone (partners/service.py).
        sa.Index("ix_case_shares_organization_case", "organization_id", "case_id"),
        sa.CheckConstraint(sa.column("access").in_(["read", "comment", "edit"]), name="access"),
    )


class CaseVisibility(Base):
    """The visibility policy's case rule, materialised: one row per organisation and case
    it sees (owner, handler or share), keyed in inbox order.

    Database triggers keep it current on every insert or update of `cases` and
    `case_shares` (migration 0007), so every writer (services, merge, import, bulk loads)
    keeps it right without knowing about it. The one exception: suspending or resuming the
    shares between two organisations (`ShareSuspension`) removes or restores the rows those
    shares grant in the same statement (partners.service.recalculate_shares), because only
    that code knows which organisation's shares to read.
    """

    __tablename__ = "case_visibility"

    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id"), primary_key=True
    )
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    last_activity_at: Mapped[dt.datetime]
    # Whether this organisation sees the customer's contact details through this case.
    details: Mapped[bool]

    __table_args__ = (
        sa.Index("ix_case_visibility_inbox", "organization_id", "last_activity_at", "case_id"),
        sa.Index("ix_case_visibility_customer", "organization_id", "customer_id"),
        sa.Index("ix_case_visibility_case", "case_id"),
    )


class TimelineEntry(Base):
    """A note, an interaction or a recorded change on a case; never rewritten or deleted."""

    __tablename__ = "timeline_entries"

    id: Mapped[intpk]
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(sa.String(12))
    channel: Mapped[str | None] = mapped_column(sa.String(20))
    direction: Mapped[str | None] = mapped_column(sa.String(3))
    body: Mapped[str] = mapped_column(sa.Text, default="")
    audience: Mapped[str] = mapped_column(sa.String(14))
    author_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    field: Mapped[str | None] = mapped_column(sa.String(50))
    # Length of a logged phone call.
    duration_seconds: Mapped[int | None]
    old_value: Mapped[str | None] = mapped_column(sa.Text)
    new_value: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[created_at_col]

    author: Mapped[User | None] = relationship(lazy="joined")
    organization: Mapped[Organization] = relationship(lazy="joined")
    audience_organizations: Mapped[list[TimelineAudience]] = relationship(lazy="selectin")

    __table_args__ = (
        _in("kind", EntryKind),
        _in("audience", AudienceKind),
        sa.Index("ix_timeline_entries_case_created", "case_id", "created_at", "id"),
    )


class TimelineAudience(Base):
    """One organisation in an entry's explicit audience list."""

    __tablename__ = "timeline_audiences"

    entry_id: Mapped[int] = mapped_column(sa.ForeignKey("timeline_entries.id"), primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organizations.id"), primary_key=True, index=True
    )


class CaseNumberCounter(Base):
    """The last case number handed out per year (numbers look like C-2026-000123)."""

    __tablename__ = "case_number_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(default=0)


class Activity(Base):
    """The durable activity log: one row per change, written in the change's transaction.

    Ids are assigned in commit order (see shared_records/feed.py), so a reader asking for
    everything after id N never skips a row. Visibility is decided when the log is read or
    delivered, through the case (and, for timeline entries, the entry's audience).
    """

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    type: Mapped[str] = mapped_column(sa.String(30))
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("timeline_entries.id"))
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    actor_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    at: Mapped[dt.datetime]
    summary: Mapped[str] = mapped_column(sa.String(300))
    # Small JSON object with the type's details (changed fields, holder, receiver).
    data: Mapped[str] = mapped_column(sa.Text, default="{}")


class Notification(Base):
    """An in-app notification for one user (so far: being @mentioned on a case)."""

    __tablename__ = "notifications"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(sa.String(20), default="mention")
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"))
    entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("timeline_entries.id"))
    actor_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    summary: Mapped[str] = mapped_column(sa.String(300))
    created_at: Mapped[created_at_col]
    read_at: Mapped[dt.datetime | None]

    __table_args__ = (sa.Index("ix_notifications_user_unread", "user_id", "read_at", "id"),)


class Consent(Base):
    """A contact permission a customer (or one of its contacts) gave or withdrew.

    Never rewritten: a withdrawal is a new row with `granted` false; the newest row per
    channel and purpose is the one in force.
    """

    __tablename__ = "consents"

    id: Mapped[intpk]
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(20))
    purpose: Mapped[str] = mapped_column(sa.String(30))
    granted: Mapped[bool] = mapped_column(default=True)
    # Where it was given: form, capture (on the phone), import, api.
    source: Mapped[str] = mapped_column(sa.String(20))
    recorded_at: Mapped[created_at_col]
    recorded_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))

    recorded_by: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (_in("channel", ConsentChannel), _in("purpose", ConsentPurpose))


class CustomerMerge(Base):
    """One merge: `merged` was folded into `survivor`; `moved` counts what moved (JSON)."""

    __tablename__ = "customer_merges"

    id: Mapped[intpk]
    survivor_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    merged_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), unique=True)
    merged_name: Mapped[str] = mapped_column(sa.String(200))
    merged_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    merged_at: Mapped[created_at_col]
    moved: Mapped[str] = mapped_column(sa.Text, default="{}")

    merged_by: Mapped[User | None] = relationship(lazy="joined")


class SearchDocument(Base):
    """One searchable record (customer, contact or case) in folded form.

    Rewritten whenever its record changes (shared_records/search_index.py). The engines
    index `names`, `details` and `sounds`: SQLite through the FTS5 table `search_fts`,
    PostgreSQL through full-text and trigram indexes (migration 0006). Visibility is not
    stored here: every search joins the policy's conditions on `customer_id` / `case_id`.
    """

    __tablename__ = "search_documents"

    id: Mapped[intpk]
    ref: Mapped[str] = mapped_column(sa.String(40), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(10))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"))
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(300))
    # Folded words anyone who sees the record may search (names, case number and subject).
    names: Mapped[str] = mapped_column(sa.Text, default="")
    # Folded words only for those who see contact details (postal code, city).
    details: Mapped[str] = mapped_column(sa.Text, default="")
    # Kölner Phonetik codes of the names, each prefixed "k" (typo tolerance).
    sounds: Mapped[str] = mapped_column(sa.Text, default="")

    __table_args__ = (
        sa.CheckConstraint(sa.column("kind").in_(["customer", "contact", "case"]), name="kind"),
    )


class Call(Base):
    """A telephone call reported by an organisation's telephone system (CTI)."""

    __tablename__ = "calls"

    id: Mapped[intpk]
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"))
    # The telephone system's own id of the call.
    call_id: Mapped[str] = mapped_column(sa.String(100))
    agent_user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    number: Mapped[str] = mapped_column(sa.String(20))
    dialed: Mapped[str | None] = mapped_column(sa.String(40))
    state: Mapped[str] = mapped_column(sa.String(10))
    ringing_at: Mapped[dt.datetime | None]
    answered_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    duration_seconds: Mapped[int | None]
    # JSON list of the customer ids the agent was shown on ringing.
    matches: Mapped[str] = mapped_column(sa.Text, default="[]")
    logged_entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("timeline_entries.id"))
    created_at: Mapped[created_at_col]

    agent: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (
        sa.UniqueConstraint("organization_id", "call_id"),
        sa.CheckConstraint(sa.column("state").in_(["ringing", "answered", "ended"]), name="state"),
        sa.Index("ix_calls_agent", "agent_user_id", "id"),
    )


# Whoever uses these models gets the listener that keeps the search documents current.
from shared_records import search_index as _search_index  # noqa: E402, F401
