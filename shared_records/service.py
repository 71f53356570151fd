"""Operations on shared records: the only code that writes customers, cases, timelines, shares.

Each operation takes the acting user, validates its input, asks the policy before it changes
anything, records the change on the case timeline in the same transaction and commits once.
A refused or failing operation leaves the database as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from partners.models import Organization, User
from portal.db import utcnow
from portal.enums import AudienceKind, EntryKind, UserRole
from portal.errors import Conflict, NotFound, ValidationFailed
from shared_records import feed, policy
from shared_records.events import ActivityType
from shared_records.events import build as build_activity
from shared_records.feed import NOTIFICATIONS_KEY
from shared_records.mentions import notify_mentions
from shared_records.models import (
    Case,
    CaseNumberCounter,
    CaseShare,
    Contact,
    Customer,
    EmailAddress,
    PhoneNumber,
    TimelineAudience,
    TimelineEntry,
)
from shared_records.normalize import InvalidValue, normalize_email, normalize_phone
from shared_records.policy import CaseView, CustomerView, Permission
from shared_records.schemas import (
    CaseCreate,
    CasePatch,
    ContactIn,
    CustomerCreate,
    CustomerPatch,
    EntryCreate,
    Handover,
    ShareCreate,
)


class StaleVersion(Conflict):
    """The client's version is not the current one; carries the current record."""

    code = "stale_version"

    def __init__(self, message: str, current: CaseView | CustomerView) -> None:
        super().__init__(message)
        self.current = current


class ClaimedByOther(Conflict):
    code = "claimed"

    def __init__(self, message: str, holder: User, since: dt.datetime | None) -> None:
        super().__init__(
            message,
            extra={
                "holder": {
                    "user_id": holder.id,
                    "name": holder.name,
                    "organization_id": holder.organization_id,
                    "organization_name": holder.organization.name,
                    "since": since.isoformat() if since else None,
                }
            },
        )


# --- customers ---------------------------------------------------------------------------


def _normalized(
    values: Sequence[str],
    normalize: Callable[[str], str],
    field: str,
    message: str,
) -> tuple[list[str], dict[str, str]]:
    """Normalise each value (duplicates dropped); invalid ones become field errors named like
    `phones.1`, with `message` formatted with the value."""
    result: list[str] = []
    errors: dict[str, str] = {}
    for index, raw in enumerate(values):
        try:
            value = normalize(raw)
        except InvalidValue:
            errors[f"{field}.{index}"] = message % {"value": raw}
            continue
        if value not in result:
            result.append(value)
    return result, errors


def _normalized_phones(
    values: Sequence[str], region: str, prefix: str
) -> tuple[list[str], dict[str, str]]:
    return _normalized(
        values,
        lambda raw: normalize_phone(raw, region),
        f"{prefix}phones",
        _("Not a valid phone number: %(value)s"),
    )


def _normalized_emails(values: Sequence[str], prefix: str) -> tuple[list[str], dict[str, str]]:
    return _normalized(
        values, normalize_email, f"{prefix}emails", _("Not a valid email address: %(value)s")
    )


def _replace_contact_points(
    session: Session,
    customer_id: int,
    contact_id: int | None,
    phones: list[str] | None,
    emails: list[str] | None,
) -> None:
    owner = sa.and_(
        PhoneNumber.customer_id == customer_id,
        PhoneNumber.contact_id.is_(None)
        if contact_id is None
        else PhoneNumber.contact_id == contact_id,
    )
    if phones is not None:
        session.execute(sa.delete(PhoneNumber).where(owner))
        session.add_all(
            PhoneNumber(customer_id=customer_id, contact_id=contact_id, e164=p, position=i)
            for i, p in enumerate(phones)
        )
    if emails is not None:
        email_owner = sa.and_(
            EmailAddress.customer_id == customer_id,
            EmailAddress.contact_id.is_(None)
            if contact_id is None
            else EmailAddress.contact_id == contact_id,
        )
        session.execute(sa.delete(EmailAddress).where(email_owner))
        session.add_all(
            EmailAddress(customer_id=customer_id, contact_id=contact_id, email=e, position=i)
            for i, e in enumerate(emails)
        )


def _require_live(session: Session, customer: Customer, field: str) -> None:
    """Refuse writes onto a merged customer; on PostgreSQL the customer row is share-locked
    so that a merge running at the same moment cannot leave a new record behind on it."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.select(Customer.id).where(Customer.id == customer.id).with_for_update(read=True)
        )
        session.refresh(customer, ["merged_into_id"])
    if customer.merged_into_id is not None:
        raise ValidationFailed(
            _("This customer was merged into another one."),
            code="customer_merged",
            fields={field: _("Merged into customer %(id)s.", id=customer.merged_into_id)},
            extra={"merged_into": customer.merged_into_id},
        )


def create_customer(
    session: Session, actor: User, data: CustomerCreate, *, commit: bool = True
) -> Customer:
    """Create a customer owned by the actor's organisation (with its contacts).

    With `commit=False` the customer is only flushed, for callers that write more in the same
    transaction (consents given on capture)."""
    policy.require_worker(actor)
    region = actor.organization.phone_region
    phones, errors = _normalized_phones(data.phones, region, "")
    emails, email_errors = _normalized_emails(data.emails, "")
    errors.update(email_errors)
    contacts: list[tuple[ContactIn, list[str], list[str]]] = []
    for index, contact in enumerate(data.contacts):
        c_phones, c_errors = _normalized_phones(contact.phones, region, f"contacts.{index}.")
        c_emails, ce_errors = _normalized_emails(contact.emails, f"contacts.{index}.")
        errors.update(c_errors)
        errors.update(ce_errors)
        contacts.append((contact, c_phones, c_emails))
    if errors:
        raise ValidationFailed(_("Some values are not valid."), fields=errors)
    customer = Customer(
        owner_organization_id=actor.organization_id,
        kind=str(data.kind),
        name=data.name,
        street=data.street or None,
        postal_code=data.postal_code or None,
        city=data.city or None,
        country=(data.country or region).upper(),
    )
    session.add(customer)
    session.flush()
    _replace_contact_points(session, customer.id, None, phones, emails)
    for contact_data, c_phones, c_emails in contacts:
        new_contact = Contact(
            customer_id=customer.id,
            name=contact_data.name,
            position_title=contact_data.position_title or None,
        )
        session.add(new_contact)
        session.flush()
        _replace_contact_points(session, customer.id, new_contact.id, c_phones, c_emails)
    if commit:
        session.commit()
    return customer


def add_contact(session: Session, actor: User, customer_id: int, data: ContactIn) -> Contact:
    view = policy.get_visible_customer(session, actor, customer_id)
    policy.require_customer_edit(actor, view)
    _require_live(session, view.customer, "customer_id")
    region = actor.organization.phone_region
    phones, errors = _normalized_phones(data.phones, region, "")
    emails, email_errors = _normalized_emails(data.emails, "")
    errors.update(email_errors)
    if errors:
        raise ValidationFailed(_("Some values are not valid."), fields=errors)
    contact = Contact(
        customer_id=customer_id, name=data.name, position_title=data.position_title or None
    )
    session.add(contact)
    session.flush()
    _replace_contact_points(session, customer_id, contact.id, phones, emails)
    session.commit()
    return contact


def update_customer(
    session: Session, actor: User, customer_id: int, data: CustomerPatch
) -> CustomerView:
    view = policy.get_visible_customer(session, actor, customer_id)
    policy.require_customer_edit(actor, view)
    customer = view.customer
    if data.version is not None and data.version != customer.version:
        raise StaleVersion(_("This customer was changed meanwhile."), view)
    region = actor.organization.phone_region
    errors: dict[str, str] = {}
    phones = emails = None
    if data.phones is not None:
        phones, errors = _normalized_phones(data.phones, region, "")
    if data.emails is not None:
        emails, email_errors = _normalized_emails(data.emails, "")
        errors.update(email_errors)
    if errors:
        raise ValidationFailed(_("Some values are not valid."), fields=errors)
    for name in ("name", "kind", "street", "postal_code", "city"):
        if name in data.model_fields_set:
            setattr(customer, name, getattr(data, name) or None)
    if "country" in data.model_fields_set and data.country:
        customer.country = data.country.upper()
    customer.updated_at = utcnow()
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise StaleVersion(
            _("This customer was changed meanwhile."),
            policy.get_visible_customer(session, actor, customer_id),
        ) from None
    _replace_contact_points(session, customer.id, None, phones, emails)
    session.commit()
    session.expire(customer, ["phones", "emails"])
    return policy.get_visible_customer(session, actor, customer_id)


# --- cases -------------------------------------------------------------------------------


def _next_case_number(session: Session, year: int) -> str:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(CaseNumberCounter).values(year=year, last_value=0).on_conflict_do_nothing()
    )
    value = session.execute(
        sa.update(CaseNumberCounter)
        .where(CaseNumberCounter.year == year)
        .values(last_value=CaseNumberCounter.last_value + 1)
        .returning(CaseNumberCounter.last_value)
    ).scalar_one()
    return f"C-{year}-{value:06d}"


def _change(
    case: Case,
    actor: User,
    field: str,
    old: object,
    new: object,
    *,
    audience: AudienceKind = AudienceKind.SHARED,
    at: dt.datetime,
) -> TimelineEntry:
    return TimelineEntry(
        case_id=case.id,
        kind=EntryKind.CHANGE.value,
        body="",
        audience=audience.value,
        author_user_id=actor.id,
        organization_id=actor.organization_id,
        field=field,
        old_value=None if old is None else str(old),
        new_value=None if new is None else str(new),
        created_at=at,
    )


def create_case(
    session: Session, actor: User, data: CaseCreate, *, commit: bool = True
) -> CaseView:
    """Open a case for a customer the actor can see; the actor's organisation owns it.

    With `commit=False` the case is only flushed, for callers that write more in the same
    transaction (logging a call on a new case)."""
    policy.require_worker(actor)
    try:
        customer = policy.get_visible_customer(session, actor, data.customer_id).customer
    except NotFound:
        raise ValidationFailed(
            _("Unknown customer."), fields={"customer_id": _("No such customer.")}
        ) from None
    _require_live(session, customer, "customer_id")
    now = utcnow()
    case = Case(
        number=_next_case_number(session, now.year),
        customer_id=data.customer_id,
        subject=data.subject,
        description=data.description,
        kind=str(data.kind),
        status=str(data.status),
        priority=str(data.priority),
        owner_organization_id=actor.organization_id,
        handling_organization_id=actor.organization_id,
        created_by_user_id=actor.id,
        created_at=now,
        updated_at=now,
        last_activity_at=now,
    )
    session.add(case)
    session.flush()
    feed.record(session, build_activity(ActivityType.CASE_CREATED, case, actor, now))
    if commit:
        session.commit()
    return policy.get_visible_case(session, actor, case.id)


_PATCHABLE = ("subject", "description", "kind", "status", "priority")


def update_case(session: Session, actor: User, case_id: int, data: CasePatch) -> CaseView:
    """Change a case's own fields; each change is recorded on the timeline.

    Raises StaleVersion (409) when `data.version` is not the current version.
    """
    view = policy.get_visible_case(session, actor, case_id)
    policy.require(actor, Permission.EDIT, view)
    case = view.case
    if data.version != case.version:
        raise StaleVersion(_("This case was changed meanwhile."), view)
    now = utcnow()
    entries = []
    for name in _PATCHABLE:
        if name not in data.model_fields_set:
            continue
        new = getattr(data, name)
        old = getattr(case, name)
        if new == old:
            continue
        setattr(case, name, new)
        shown_old, shown_new = (None, None) if name == "description" else (old, new)
        entries.append(_change(case, actor, name, shown_old, shown_new, at=now))
    if not entries:
        return view
    case.updated_at = now
    case.last_activity_at = now
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise StaleVersion(
            _("This case was changed meanwhile."), policy.get_visible_case(session, actor, case_id)
        ) from None
    session.add_all(entries)
    changed = {e.field: [e.old_value, e.new_value] for e in entries if e.field}
    feed.record(
        session,
        build_activity(ActivityType.CASE_UPDATED, case, actor, now, details={"fields": changed}),
    )
    session.commit()
    return policy.get_visible_case(session, actor, case_id)


def _touch(session: Session, case: Case, now: dt.datetime) -> None:
    """Move a case up in the inbox without bumping its version (comments do not
    invalidate an edit in progress)."""
    session.execute(sa.update(Case).where(Case.id == case.id).values(last_activity_at=now))
    set_committed_value(case, "last_activity_at", now)


def add_entry(
    session: Session,
    actor: User,
    case_id: int,
    data: EntryCreate,
    *,
    duration_seconds: int | None = None,
    activity: ActivityType = ActivityType.TIMELINE_ADDED,
    commit: bool = True,
) -> TimelineEntry:
    """Add a note or an interaction to a case's timeline, for the chosen audience.

    Logged phone calls come through here too, with their duration and as `call.logged`."""
    view = policy.get_visible_case(session, actor, case_id)
    policy.require(actor, Permission.COMMENT, view)
    audience_ids: list[int] = []
    if isinstance(data.audience, list):
        allowed = policy.audience_choices(session, view)
        unknown = policy.filter_audience(allowed, data.audience)
        if unknown:
            raise ValidationFailed(
                _("The audience may only name organisations that see this case."),
                fields={"audience": _("Not allowed: %(ids)s", ids=", ".join(map(str, unknown)))},
            )
        audience_ids = sorted(set(data.audience) | {actor.organization_id})
        audience = AudienceKind.ORGANIZATIONS.value
    else:
        audience = data.audience
    now = utcnow()
    entry = TimelineEntry(
        case_id=case_id,
        kind=data.kind,
        channel=data.channel,
        direction=data.direction,
        body=data.body,
        audience=audience,
        author_user_id=actor.id,
        organization_id=actor.organization_id,
        duration_seconds=duration_seconds,
        created_at=now,
    )
    session.add(entry)
    session.flush()
    session.add_all(TimelineAudience(entry_id=entry.id, organization_id=i) for i in audience_ids)
    session.flush()
    session.refresh(entry, ["audience_organizations"])
    notified = notify_mentions(session, view.case, entry, actor)
    if notified:
        session.info.setdefault(NOTIFICATIONS_KEY, []).extend(notified)
    _touch(session, view.case, now)
    feed.record(
        session,
        build_activity(
            activity,
            view.case,
            actor,
            now,
            entry=entry,
            details={
                "kind": entry.kind,
                "channel": entry.channel,
                "entry_id": entry.id,
                **({"duration_seconds": duration_seconds} if duration_seconds is not None else {}),
            },
        ),
    )
    if commit:
        session.commit()
    return entry


# --- shares ------------------------------------------------------------------------------


def share_case(session: Session, actor: User, case_id: int, data: ShareCreate) -> CaseShare:
    """Share a case with an organisation of the owner's value chain, or change that share."""
    # The case row lock serialises concurrent share changes of one case (no duplicate insert).
    view = policy.get_visible_case(session, actor, case_id, lock=True)
    policy.require(actor, Permission.SHARE, view)
    case = view.case
    if data.organization_id == case.owner_organization_id:
        raise ValidationFailed(
            _("The owner organisation already sees this case."),
            fields={"organization_id": _("This is the owner organisation.")},
        )
    if not policy.is_share_target(session, case, data.organization_id):
        raise ValidationFailed(
            _("Cases can only be shared within the owner's value chain."),
            fields={"organization_id": _("Not a partner in this value chain.")},
        )
    now = utcnow()
    share = session.scalars(
        sa.select(CaseShare).where(
            CaseShare.case_id == case_id, CaseShare.organization_id == data.organization_id
        )
    ).first()
    target = session.get(Organization, data.organization_id)
    assert target is not None
    # A suspended share (the two have no chain in common) counts as none; sharing needs a
    # chain in common, so it is in force again with the new terms.
    old = None if share is None or share.suspended else f"{target.name}: {share.access}"
    if share is None:
        share = CaseShare(
            case_id=case_id,
            organization_id=data.organization_id,
            created_at=now,
        )
        session.add(share)
    share.access = data.access
    share.include_contact_details = data.include_contact_details
    share.shared_by_user_id = actor.id
    share.updated_at = now
    new = f"{target.name}: {data.access}"
    session.flush()
    entry = _change(case, actor, "share", old, new, audience=AudienceKind.ORGANIZATIONS, at=now)
    session.add(entry)
    session.flush()
    session.add_all(
        TimelineAudience(entry_id=entry.id, organization_id=org_id)
        for org_id in sorted({case.owner_organization_id, data.organization_id})
    )
    _touch(session, case, now)
    feed.record(
        session,
        build_activity(
            ActivityType.CASE_SHARED,
            case,
            actor,
            now,
            entry=entry,
            details={
                "organization_id": target.id,
                "organization_name": target.name,
                "access": data.access,
            },
        ),
    )
    session.commit()
    return share


def unshare_case(session: Session, actor: User, case_id: int, organization_id: int) -> None:
    """Revoke a share; the organisation loses sight of the case unless it handles it."""
    view = policy.get_visible_case(session, actor, case_id, lock=True)
    policy.require(actor, Permission.SHARE, view)
    case = view.case
    share = session.scalars(
        sa.select(CaseShare).where(
            CaseShare.case_id == case_id, CaseShare.organization_id == organization_id
        )
    ).first()
    if share is None or share.suspended:
        raise NotFound(_("This case is not shared with that organisation."))
    now = utcnow()
    org_name = share.organization.name
    old = f"{org_name}: {share.access}"
    session.delete(share)
    entry = _change(case, actor, "share", old, None, audience=AudienceKind.ORGANIZATIONS, at=now)
    session.add(entry)
    session.flush()
    session.add_all(
        TimelineAudience(entry_id=entry.id, organization_id=org_id)
        for org_id in sorted({case.owner_organization_id, organization_id})
    )
    _touch(session, case, now)
    feed.record(
        session,
        build_activity(
            ActivityType.CASE_UNSHARED,
            case,
            actor,
            now,
            entry=entry,
            details={"organization_id": organization_id, "organization_name": org_name},
        ),
    )
    session.commit()


# --- who handles the case ----------------------------------------------------------------


def claim_idle() -> dt.timedelta:
    """How long a claim lasts without renewal (PORTAL_CLAIM_IDLE_MINUTES)."""
    minutes = current_app.config.get("CLAIM_IDLE_MINUTES", 30) if has_app_context() else 30
    return dt.timedelta(minutes=int(minutes))


def _claimed_by_other(case: Case, actor: User) -> ClaimedByOther | None:
    holder = case.handling_user
    if holder is None or holder.id == actor.id:
        return None
    if not policy.claim_active(case, claim_idle(), utcnow()):
        return None  # an expired claim no longer blocks anyone
    return ClaimedByOther(
        _(
            "%(name)s (%(org)s) is handling this case.",
            name=holder.name,
            org=holder.organization.name,
        ),
        holder,
        case.claimed_at,
    )


def _flush_or_conflict(session: Session, actor: User, case_id: int) -> None:
    """Flush a change to the case; a concurrent change turns into a 409 naming the holder."""
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        view = policy.get_visible_case(session, actor, case_id)
        conflict = _claimed_by_other(view.case, actor)
        if conflict is not None:
            raise conflict from None
        raise StaleVersion(_("This case was changed meanwhile."), view) from None


def claim_case(session: Session, actor: User, case_id: int) -> CaseView:
    """The actor handles the case from now on; 409 naming the holder when someone else does."""
    view = policy.get_visible_case(session, actor, case_id)
    policy.require(actor, Permission.HANDLE, view)
    case = view.case
    conflict = _claimed_by_other(case, actor)
    if conflict is not None:
        raise conflict
    now = utcnow()
    if case.handling_user_id == actor.id:
        # The holder renews the claim (it would otherwise expire after the idle time).
        case.claim_renewed_at = now
        _flush_or_conflict(session, actor, case_id)
        session.commit()
        session.expire(case)
        return policy.get_visible_case(session, actor, case_id)
    previous = case.handling_user.name if case.handling_user else None
    entries = [_change(case, actor, "handling_user", previous, actor.name, at=now)]
    if case.handling_organization_id != actor.organization_id:
        entries.append(
            _change(
                case,
                actor,
                "handling_organization",
                case.handling_organization.name,
                actor.organization.name,
                at=now,
            )
        )
    case.handling_user_id = actor.id
    case.handling_organization_id = actor.organization_id
    case.claimed_at = now
    case.claim_renewed_at = now
    case.updated_at = now
    case.last_activity_at = now
    _flush_or_conflict(session, actor, case_id)
    session.add_all(entries)
    feed.record(
        session,
        build_activity(
            ActivityType.CASE_CLAIMED,
            case,
            actor,
            now,
            details={
                "user_id": actor.id,
                "user_name": actor.name,
                "organization_id": actor.organization_id,
                "organization_name": actor.organization.name,
                "since": now.isoformat(),
            },
        ),
    )
    session.commit()
    session.expire(case)
    return policy.get_visible_case(session, actor, case_id)


def renew_claim(session: Session, actor: User, case_id: int) -> CaseView:
    """The holder keeps the claim alive (an open case page does this every few minutes);
    409 when the actor does not hold the claim, so a renewal never claims a case."""
    view = policy.get_visible_case(session, actor, case_id)
    policy.require(actor, Permission.HANDLE, view)
    case = view.case
    if case.handling_user_id != actor.id or not policy.claim_active(case, claim_idle(), utcnow()):
        raise Conflict(_("You do not hold the claim on this case."), code="not_claimed")
    case.claim_renewed_at = utcnow()
    _flush_or_conflict(session, actor, case_id)
    session.commit()
    session.expire(case)
    return policy.get_visible_case(session, actor, case_id)


def release_case(session: Session, actor: User, case_id: int) -> CaseView:
    """Give up the claim; the owner organisation's admins may release anyone's claim."""
    view = policy.get_visible_case(session, actor, case_id)
    policy.require(actor, Permission.HANDLE, view)
    case = view.case
    holder = case.handling_user
    if holder is None:
        raise Conflict(_("Nobody has claimed this case."), code="not_claimed")
    if holder.id != actor.id and not policy.can(actor, Permission.OVERRIDE_CLAIM, view):
        conflict = _claimed_by_other(case, actor)
        assert conflict is not None
        raise conflict
    now = utcnow()
    entry = _change(case, actor, "handling_user", holder.name, None, at=now)
    case.handling_user_id = None
    case.claimed_at = None
    case.updated_at = now
    case.last_activity_at = now
    _flush_or_conflict(session, actor, case_id)
    session.add(entry)
    feed.record(
        session,
        build_activity(
            ActivityType.CASE_RELEASED, case, actor, now, details={"user_id": holder.id}
        ),
    )
    session.commit()
    session.expire(case)
    return policy.get_visible_case(session, actor, case_id)


def hand_over_case(
    session: Session, actor: User, case_id: int, data: Handover
) -> tuple[Case, CaseView | None]:
    """Pass the case to a user or an organisation of the owner's value chains, with a message
    for the receiver (and the owner). A claim held by someone else blocks it unless the actor
    may override claims. Returns the case and the actor's view after the hand-over (None
    when the actor's organisation no longer sees it)."""
    view = policy.get_visible_case(session, actor, case_id)
    policy.require(actor, Permission.HANDLE, view)
    case = view.case
    conflict = _claimed_by_other(case, actor)
    if conflict is not None and not policy.can(actor, Permission.OVERRIDE_CLAIM, view):
        raise conflict
    target_user: User | None = None
    target_org: Organization | None
    if data.user_id is not None:
        target_user = session.get(User, data.user_id)
        target_org = (
            None
            if target_user is None
            else policy.handover_target(session, case, target_user.organization_id)
        )
        if (
            target_user is None
            or target_org is None
            or not target_user.is_active
            or target_user.kind != "person"
        ):
            raise ValidationFailed(
                _("This person cannot take over the case."),
                fields={"user_id": _("Not a user of an organisation in this value chain.")},
            )
        if target_user.role == UserRole.VIEWER:
            raise ValidationFailed(
                _("Viewers cannot handle cases."),
                fields={"user_id": _("This user only has read access.")},
            )
    else:
        assert data.organization_id is not None
        target_org = policy.handover_target(session, case, data.organization_id)
        if target_org is None:
            raise ValidationFailed(
                _("Cases can only be handed over within the owner's value chain."),
                fields={"organization_id": _("Not a partner in this value chain.")},
            )
    now = utcnow()
    entries = []
    old_user = case.handling_user.name if case.handling_user else None
    new_user = target_user.name if target_user else None
    if old_user != new_user:
        entries.append(_change(case, actor, "handling_user", old_user, new_user, at=now))
    if case.handling_organization_id != target_org.id:
        entries.append(
            _change(
                case,
                actor,
                "handling_organization",
                case.handling_organization.name,
                target_org.name,
                at=now,
            )
        )
    case.handling_organization_id = target_org.id
    case.handling_user_id = target_user.id if target_user else None
    case.claimed_at = now if target_user else None
    case.updated_at = now
    case.last_activity_at = now
    _flush_or_conflict(session, actor, case_id)
    session.add_all(entries)
    if data.message:
        note = TimelineEntry(
            case_id=case.id,
            kind=EntryKind.NOTE.value,
            body=data.message,
            audience=AudienceKind.ORGANIZATIONS.value,
            author_user_id=actor.id,
            organization_id=actor.organization_id,
            field="handover",
            created_at=now,
        )
        session.add(note)
        session.flush()
        session.add_all(
            TimelineAudience(entry_id=note.id, organization_id=org_id)
            for org_id in sorted({actor.organization_id, target_org.id, case.owner_organization_id})
        )
    feed.record(
        session,
        build_activity(
            ActivityType.CASE_HANDED_OVER,
            case,
            actor,
            now,
            details={
                "to": target_user.name if target_user else target_org.name,
                "user_id": target_user.id if target_user else None,
                "organization_id": target_org.id,
                "organization_name": target_org.name,
            },
        ),
    )
    session.commit()
    session.expire(case)
    try:
        return case, policy.get_visible_case(session, actor, case_id)
    except NotFound:
        return case, None
