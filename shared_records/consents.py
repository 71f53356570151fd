"""Contact permissions (consents) and capturing a customer on the spot.

A consent is given to an organisation: the one whose user records it. Rows are never
rewritten; a withdrawal is a new row with `granted` false, and the newest row per contact,
channel and purpose is the one in force. Recording needs a worker of an organisation that
sees the customer's contact details; each organisation reads only its own consents.

`capture_customer` creates the captured customer (through `service.create_customer`) and its
consents in one transaction: either all of it is stored or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from partners.models import User
from portal.db import utcnow
from portal.enums import CustomerKind
from portal.errors import Forbidden, ValidationFailed
from shared_records import policy, service
from shared_records.models import Consent, Contact, Customer
from shared_records.schemas import CaptureCreate, ConsentIn, ContactIn, CustomerCreate
from shared_records.textkeys import fold


class ConsentSource(StrEnum):
    FORM = "form"
    CAPTURE = "capture"
    IMPORT = "import"
    API = "api"


def _unique(items: Iterable[ConsentIn]) -> list[ConsentIn]:
    """One item per channel and purpose (the last one given wins)."""
    by_key = {(str(i.channel), str(i.purpose)): i for i in items}
    return list(by_key.values())


def _rows(
    actor: User,
    customer_id: int,
    contact_id: int | None,
    items: Sequence[ConsentIn],
    source: ConsentSource,
) -> list[Consent]:
    now = utcnow()
    return [
        Consent(
            customer_id=customer_id,
            contact_id=contact_id,
            channel=str(item.channel),
            purpose=str(item.purpose),
            granted=item.granted,
            source=source.value,
            recorded_at=now,
            recorded_by_user_id=actor.id,
            organization_id=actor.organization_id,
        )
        for item in _unique(items)
    ]


def _require_details(session: Session, actor: User, customer_id: int) -> policy.CustomerView:
    view = policy.get_visible_customer(session, actor, customer_id)
    if not view.contact_details:
        raise Forbidden(
            _(
                "Your organisation does not see this customer's contact details, so it cannot "
                "record or read contact permissions for it."
            )
        )
    return view


def record_consents(
    session: Session,
    actor: User,
    customer_id: int,
    items: Sequence[ConsentIn],
    *,
    source: ConsentSource,
    contact_id: int | None = None,
    commit: bool = True,
) -> list[Consent]:
    """Record permissions given (or withdrawn) to the actor's organisation.

    Raises NotFound for a customer the actor may not see, Forbidden for viewers and without
    contact details, ValidationFailed for a contact of another customer.
    """
    policy.require_worker(actor)
    _require_details(session, actor, customer_id)
    if contact_id is not None:
        owner = session.scalar(sa.select(Contact.customer_id).where(Contact.id == contact_id))
        if owner != customer_id:
            raise ValidationFailed(
                _("Unknown contact."),
                fields={"contact_id": _("This customer has no such contact.")},
            )
    rows = _rows(actor, customer_id, contact_id, items, source)
    session.add_all(rows)
    if commit:
        session.commit()
    else:
        session.flush()
    return rows


def consents_of(session: Session, actor: User, customer_id: int) -> list[Consent]:
    """The actor's organisation's consent rows of a customer, newest first."""
    _require_details(session, actor, customer_id)
    stmt = (
        sa.select(Consent)
        .where(
            Consent.customer_id == customer_id,
            Consent.organization_id == actor.organization_id,
        )
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
    )
    return list(session.scalars(stmt))


def in_force(rows: Iterable[Consent]) -> list[Consent]:
    """The newest row per contact, channel and purpose (from rows in any order)."""
    newest: dict[tuple[int | None, str, str], Consent] = {}
    for row in rows:
        key = (row.contact_id, row.channel, row.purpose)
        current = newest.get(key)
        if current is None or (row.recorded_at, row.id) > (current.recorded_at, current.id):
            newest[key] = row
    return sorted(newest.values(), key=lambda r: (r.contact_id or 0, r.channel, r.purpose))


# --- capture on the spot -------------------------------------------------------------------


def has_separate_company(data: CaptureCreate) -> bool:
    """Whether the capture names a company apart from the person (company plus contact)."""
    return bool(data.company) and fold(data.company or "") != fold(data.name)


def as_customer(data: CaptureCreate) -> CustomerCreate:
    """The customer a capture creates: the company with the person as its contact, or the
    person (or company) alone."""
    address = {
        key: value
        for key in ("street", "postal_code", "city", "country")
        if (value := getattr(data, key))
    }
    if has_separate_company(data):
        person = ContactIn.model_validate(
            {
                "name": data.name,
                "phones": data.phones,
                "emails": data.emails,
                **({"position_title": data.position_title} if data.position_title else {}),
            },
            strict=False,
        )
        return CustomerCreate.model_validate(
            {
                "name": data.company,
                "kind": CustomerKind.COMPANY.value,
                "contacts": [person.model_dump(exclude_none=True)],
                **address,
            },
            strict=False,
        )
    kind = CustomerKind.COMPANY if data.company else CustomerKind.PERSON
    return CustomerCreate.model_validate(
        {
            "name": data.name,
            "kind": kind.value,
            "phones": data.phones,
            "emails": data.emails,
            **address,
        },
        strict=False,
    )


def capture_customer(session: Session, actor: User, data: CaptureCreate) -> Customer:
    """Create the captured customer owned by the actor's organisation, with the consents
    given on the spot (on the contact person when there is one), in one transaction.

    Raises Forbidden for viewers and ValidationFailed for invalid phones or emails (field
    names as in the capture form: `phones.0`, `emails.1`).
    """
    customer_data = as_customer(data)
    try:
        customer = service.create_customer(session, actor, customer_data, commit=False)
    except ValidationFailed as exc:
        # The person's phones and emails sit on the contact; report them on the form's fields.
        exc.fields = {key.removeprefix("contacts.0."): text for key, text in exc.fields.items()}
        session.rollback()
        raise
    contact_id = None
    if has_separate_company(data):
        contact_id = session.scalar(
            sa.select(Contact.id).where(Contact.customer_id == customer.id).order_by(Contact.id)
        )
    session.add_all(_rows(actor, customer.id, contact_id, data.consents, ConsentSource.CAPTURE))
    session.commit()
    return customer
