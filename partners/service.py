"""Operations on organisations, partnerships and users (admin work and the CLI)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import phonenumbers
import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from auth.passwords import hash_password, password_problem
from auth.service import revoke_all_access
from partners.models import Organization, Partnership, User
from portal.db import utcnow
from portal.enums import OrganizationKind, PartnerRole, UserRole
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared_records.normalize import InvalidValue, normalize_email

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,78}[a-z0-9]$")


def create_organization(
    session: Session, *, name: str, slug: str, kind: str, phone_region: str = "DE"
) -> Organization:
    if kind not in {k.value for k in OrganizationKind}:
        raise ValidationFailed(_("Unknown organisation kind."), fields={"kind": kind})
    if not _SLUG.match(slug):
        raise ValidationFailed(_("Invalid slug."), fields={"slug": slug})
    org = Organization(name=name, slug=slug, kind=kind, phone_region=phone_region.upper())
    session.add(org)
    session.flush()
    return org


def add_partnership(
    session: Session, manufacturer: Organization, partner: Organization, role: str
) -> Partnership:
    if manufacturer.kind != OrganizationKind.MANUFACTURER:
        raise ValidationFailed(_("Only manufacturers have partners."))
    if role not in {r.value for r in PartnerRole}:
        raise ValidationFailed(_("Unknown partner role."), fields={"role": role})
    link = Partnership(manufacturer_id=manufacturer.id, partner_id=partner.id, role=role)
    session.add(link)
    session.flush()
    # A new chain in common may bring shares suspended earlier back into force.
    recalculate_shares(session, partner.id, suspend=False)
    return link


# --- leaving and rejoining a value chain -------------------------------------------------


@dataclass(frozen=True)
class ShareRecalculation:
    """How many shares a partnership change suspended and brought back into force."""

    suspended: int
    resumed: int


# Key of the PostgreSQL advisory lock on one organisation's chain membership: recalculating
# its shares holds it exclusively, the visibility triggers hold it shared for every
# organisation whose suspended pairs they read (migration 0009).
CHAIN_LOCK = 8001


def recalculate_shares(
    session: Session, partner_id: int, *, suspend: bool = True, resume: bool = True
) -> ShareRecalculation:
    """Suspend the shares between organisation `partner_id` and every organisation it no
    longer shares a value chain with, and bring back those between it and one it shares a
    chain with again. No commit.

    Suspensions are kept per pair of organisations (`ShareSuspension`), so no share row
    changes: suspending inserts the new pairs and deletes the visibility rows their shares
    granted; resuming deletes the pairs and inserts those rows again. Only this
    organisation's chains change when one of its partnerships does, so only pairs it is part
    of need a look; a partnership that ends can only suspend shares, one that begins or
    resumes only bring them back (`suspend` / `resume` pick the steps).
    """
    from shared_records.policy import chain_member_ids

    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(CHAIN_LOCK, partner_id)))
    together = list(session.scalars(chain_member_ids(partner_id)))
    params = {"partner": partner_id, "together": together}
    suspended = resumed = 0
    if suspend:
        if postgresql:
            suspended = int(session.execute(_SUSPEND_POSTGRESQL, params).scalar_one())
        else:
            suspended = _suspend_step_by_step(session, partner_id, together)
    if resume:
        if postgresql:
            resumed = int(session.execute(_RESUME_POSTGRESQL, params).scalar_one())
        else:
            resumed = _resume_step_by_step(session, partner_id, together)
    return ShareRecalculation(suspended=suspended, resumed=resumed)


def _partner_shares(owner: str, org: str, *, rows: bool) -> str:
    """SQL of the partner's shares in both directions (its cases shared with others, others'
    cases shared with it) with the counterpart meeting `owner` / `org`: (owner,
    organisation, case, whether the share is all that shows the case to the organisation)
    and, with `rows`, what a visibility row needs. Each branch starts from the partner's
    side (its shares, its cases), so both read along an index; without `rows` the share
    side is read from indexes alone."""
    extra = ", c.customer_id, c.last_activity_at, s.include_contact_details AS details"
    columns = (
        "c.owner_organization_id AS owner, s.organization_id AS org, c.id AS case_id, "
        "s.organization_id <> c.handling_organization_id AS share_only" + (extra if rows else "")
    )
    return f"""
    SELECT {columns}
    FROM case_shares AS s JOIN cases AS c ON c.id = s.case_id
    WHERE s.organization_id = :partner AND {owner}
    UNION ALL
    SELECT {columns}
    FROM cases AS c JOIN case_shares AS s ON s.case_id = c.id
    WHERE c.owner_organization_id = :partner AND {org}
"""  # noqa: S608 (constant fragments only; values are bound)


# PostgreSQL: the whole suspension in one statement, reading the partner's shares once: the
# new pairs (RETURNING only those not suspended before), the visibility rows only their
# shares granted, and how many shares they hold.
_SUSPEND_POSTGRESQL = sa.text(
    "WITH shared AS MATERIALIZED ("  # noqa: S608 (constant fragments; values are bound)
    + _partner_shares(
        "c.owner_organization_id <> ALL(:together)",
        "s.organization_id <> ALL(:together)",
        rows=False,
    )
    + """
    ), new AS (
        INSERT INTO share_suspensions (owner_organization_id, organization_id, created_at)
        SELECT DISTINCT owner, org, now() FROM shared
        ON CONFLICT DO NOTHING
        RETURNING owner_organization_id AS owner, organization_id AS org
    ), gone AS (
        DELETE FROM case_visibility AS cv
        USING shared JOIN new ON new.owner = shared.owner AND new.org = shared.org
        WHERE shared.share_only
          AND cv.organization_id = shared.org AND cv.case_id = shared.case_id
    )
    SELECT count(*) FROM shared JOIN new ON new.owner = shared.owner AND new.org = shared.org
    """
).bindparams(sa.bindparam("together", type_=ARRAY(sa.Integer())))

# PostgreSQL: the pairs between the partner and its chains again, deleted; the visibility
# rows their shares grant, inserted (a handler's row is there already); how many shares.
# All the partner's shares are read first (`mine`, planned on its own): joined with the
# deleted pairs inside one plan, PostgreSQL started from the pairs' side and read every case
# of 780 owners (8.7 s instead of 0.4 s at profile M).
_RESUME_POSTGRESQL = sa.text(
    "WITH back AS ("  # noqa: S608 (constant fragments; values are bound)
    """
        DELETE FROM share_suspensions
        WHERE (owner_organization_id = :partner AND organization_id = ANY(:together))
           OR (organization_id = :partner AND owner_organization_id = ANY(:together))
        RETURNING owner_organization_id AS owner, organization_id AS org
    ), mine AS MATERIALIZED ("""
    + _partner_shares("true", "true", rows=True)
    + """
    ), shared AS (
        SELECT mine.* FROM mine JOIN back ON back.owner = mine.owner AND back.org = mine.org
    ), came AS (
        INSERT INTO case_visibility
            (organization_id, case_id, customer_id, last_activity_at, details)
        SELECT org, case_id, customer_id, last_activity_at, details FROM shared
        WHERE share_only
        ON CONFLICT (organization_id, case_id) DO NOTHING
    )
    SELECT count(*) FROM shared
    """
).bindparams(sa.bindparam("together", type_=ARRAY(sa.Integer())))


def _partner_rows(session: Session, partner_id: int) -> list[sa.Row[Any]]:
    """All of the partner's shares as `_partner_shares` reads them, for SQLite (which has
    neither arrays nor data-modifying CTEs; its networks are small)."""
    from shared_records.models import CaseVisibility

    query = sa.text(_partner_shares("true", "true", rows=True)).columns(
        last_activity_at=CaseVisibility.last_activity_at.type
    )
    return list(session.execute(query, {"partner": partner_id}))


def _counterpart(row: sa.Row[Any], partner_id: int) -> int:
    return int(row.owner if row.org == partner_id else row.org)


def _suspend_step_by_step(session: Session, partner_id: int, together: list[int]) -> int:
    """`_SUSPEND_POSTGRESQL` for SQLite, one statement at a time."""
    from shared_records.models import CaseVisibility, ShareSuspension

    owner, org = ShareSuspension.owner_organization_id, ShareSuspension.organization_id
    known = {
        (o, g)
        for o, g in session.execute(
            sa.select(owner, org).where(sa.or_(owner == partner_id, org == partner_id))
        )
    }
    chain = set(together)
    rows = [
        row
        for row in _partner_rows(session, partner_id)
        if _counterpart(row, partner_id) not in chain and (row.owner, row.org) not in known
    ]
    if not rows:
        return 0
    now = utcnow()
    session.execute(
        sa.insert(ShareSuspension),
        [
            {"owner_organization_id": o, "organization_id": g, "created_at": now}
            for o, g in sorted({(row.owner, row.org) for row in rows})
        ],
    )
    gone = [{"o": row.org, "c": row.case_id} for row in rows if row.share_only]
    if gone:
        # A list of parameter sets: an executemany on the connection (the session has no
        # bulk DELETE).
        session.connection().execute(
            sa.delete(CaseVisibility).where(
                CaseVisibility.organization_id == sa.bindparam("o"),
                CaseVisibility.case_id == sa.bindparam("c"),
            ),
            gone,
        )
    return len(rows)


def _resume_step_by_step(session: Session, partner_id: int, together: list[int]) -> int:
    """`_RESUME_POSTGRESQL` for SQLite, one statement at a time."""
    from sqlalchemy.dialects.sqlite import insert

    from shared_records.models import CaseVisibility, ShareSuspension

    owner, org = ShareSuspension.owner_organization_id, ShareSuspension.organization_id
    back = {
        (o, g)
        for o, g in session.execute(
            sa.select(owner, org).where(
                sa.or_(
                    sa.and_(owner == partner_id, org.in_(together)),
                    sa.and_(org == partner_id, owner.in_(together)),
                )
            )
        )
    }
    if not back:
        return 0
    session.connection().execute(
        sa.delete(ShareSuspension).where(owner == sa.bindparam("o"), org == sa.bindparam("g")),
        [{"o": o, "g": g} for o, g in sorted(back)],
    )
    rows = [row for row in _partner_rows(session, partner_id) if (row.owner, row.org) in back]
    came = [
        {
            "organization_id": row.org,
            "case_id": row.case_id,
            "customer_id": row.customer_id,
            "last_activity_at": row.last_activity_at,
            "details": bool(row.details),
        }
        for row in rows
        if row.share_only
    ]
    if came:
        session.execute(insert(CaseVisibility).on_conflict_do_nothing(), came)
    return len(rows)


def _change_partnership(
    session: Session, link: Partnership, active: bool, actor: User | None
) -> ShareRecalculation:
    """Set the partnership's state, recalculate the partner's shares, record the change in
    both organisations' audit logs and commit: one transaction."""
    from auth import audit

    link.active = active
    session.flush()
    outcome = recalculate_shares(session, link.partner_id, suspend=not active, resume=active)
    detail = (
        f"manufacturer={link.manufacturer.slug} partner={link.partner.slug} "
        f"suspended_shares={outcome.suspended} resumed_shares={outcome.resumed}"
    )
    kind = "partnership_resumed" if active else "partnership_ended"
    for org_id in (link.manufacturer_id, link.partner_id):
        audit.record(session, kind, organization_id=org_id, actor=actor, detail=detail)
    session.commit()
    return outcome


def set_partnership_active(
    session: Session, admin: User, partnership_id: int, active: bool
) -> tuple[Partnership, ShareRecalculation]:
    """End (`active` false) or resume a partnership of the admin's manufacturer and commit.

    Ending suspends the shares between the partner and every organisation it no longer
    shares a value chain with (both directions); resuming brings them back with their
    access level and contact-details flag. Only the manufacturer's admins may do this; the
    partner's admins see the partnership but may not change it (Forbidden), anyone else
    gets NotFound. Changing a partnership to the state it is in changes nothing.
    """
    link = session.get(Partnership, partnership_id)
    if link is None or admin.organization_id not in (link.manufacturer_id, link.partner_id):
        raise NotFound(_("Partnership not found."))
    if not (admin.is_active and admin.role == UserRole.ADMIN):
        raise Forbidden(_("Only admins manage the value chain."))
    if admin.organization_id != link.manufacturer_id:
        raise Forbidden(_("Only the manufacturer's admins can end or resume a partnership."))
    if link.active == active:
        return link, ShareRecalculation(suspended=0, resumed=0)
    # The row lock serialises two admins changing the same partnership.
    session.refresh(link, with_for_update=True)
    if link.active == active:
        return link, ShareRecalculation(suspended=0, resumed=0)
    return link, _change_partnership(session, link, active, admin)


def end_partnership(
    session: Session, admin: User, partnership_id: int
) -> tuple[Partnership, ShareRecalculation]:
    """The partner leaves the admin's value chain (see `set_partnership_active`)."""
    return set_partnership_active(session, admin, partnership_id, False)


def resume_partnership(
    session: Session, admin: User, partnership_id: int
) -> tuple[Partnership, ShareRecalculation]:
    """The partner rejoins the admin's value chain (see `set_partnership_active`)."""
    return set_partnership_active(session, admin, partnership_id, True)


def operator_set_partnership_active(
    session: Session, manufacturer_slug: str, partner_slug: str, active: bool
) -> tuple[Partnership, ShareRecalculation]:
    """`set_partnership_active` for the operator (the `portal partnerships` CLI): no acting
    user; the partnership is named by the two organisations' slugs. Commits."""
    manufacturer = session.scalars(
        sa.select(Organization).where(Organization.slug == manufacturer_slug)
    ).first()
    if manufacturer is None:
        raise NotFound(_("No organisation %(slug)s.", slug=manufacturer_slug))
    partner = session.scalars(
        sa.select(Organization).where(Organization.slug == partner_slug)
    ).first()
    if partner is None:
        raise NotFound(_("No organisation %(slug)s.", slug=partner_slug))
    link = session.scalars(
        sa.select(Partnership)
        .where(Partnership.manufacturer_id == manufacturer.id, Partnership.partner_id == partner.id)
        .with_for_update()
    ).first()
    if link is None:
        raise NotFound(
            _(
                "%(partner)s is not a partner of %(manufacturer)s.",
                partner=partner_slug,
                manufacturer=manufacturer_slug,
            )
        )
    if link.active == active:
        return link, ShareRecalculation(suspended=0, resumed=0)
    return link, _change_partnership(session, link, active, None)


def create_user(
    session: Session,
    organization: Organization,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None,
    argon2_profile: str = "default",
    check_password: bool = True,
) -> User:
    """Create a user (no commit). Raises ValidationFailed / Conflict with field messages."""
    errors: dict[str, str] = {}
    try:
        email = normalize_email(email)
    except InvalidValue:
        errors["email"] = _("Not a valid email address.")
    if role not in {r.value for r in UserRole}:
        errors["role"] = _("Role must be admin, agent or viewer.")
    if not name.strip():
        errors["name"] = _("A name is required.")
    if password is not None and check_password:
        problem = password_problem(password, email=email, name=name)
        if problem:
            errors["password"] = _("This password cannot be used: %(rule)s.", rule=problem)
    if errors:
        raise ValidationFailed(_("Some values are not valid."), fields=errors)
    if session.scalars(sa.select(User.id).where(User.email == email)).first() is not None:
        raise Conflict(_("A user with this email address exists already."), code="email_taken")
    user = User(
        organization_id=organization.id,
        email=email,
        name=name.strip(),
        role=role,
        password_hash=hash_password(password, argon2_profile) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def _managed_user(session: Session, admin: User, user_id: int) -> User:
    if admin.role != UserRole.ADMIN:
        raise Forbidden(_("Only admins manage users."))
    user = session.get(User, user_id)
    # Service users of API clients are managed through their client, never as people.
    if user is None or user.organization_id != admin.organization_id or user.kind != "person":
        raise NotFound(_("User not found."))
    return user


def set_user_active(session: Session, admin: User, user_id: int, active: bool) -> User:
    """Activate or deactivate a user of the admin's organisation; deactivation ends every
    session and token of that user at once."""
    user = _managed_user(session, admin, user_id)
    if user.id == admin.id and not active:
        raise ValidationFailed(_("You cannot deactivate yourself."))
    user.active = active
    user.deactivated_at = None if active else utcnow()
    if not active:
        revoke_all_access(session, user)
    session.commit()
    if not active:
        from auth.service import close_live_connections

        close_live_connections(user_id=user.id)
    return user


def set_user_role(session: Session, admin: User, user_id: int, role: str) -> User:
    user = _managed_user(session, admin, user_id)
    if role not in {r.value for r in UserRole}:
        raise ValidationFailed(_("Role must be admin, agent or viewer."), fields={"role": role})
    if user.id == admin.id and role != UserRole.ADMIN:
        raise ValidationFailed(_("You cannot remove your own admin role."))
    user.role = role
    session.commit()
    return user


def organization_users(session: Session, organization_id: int) -> list[User]:
    """The people of an organisation (service users of API clients are managed as clients)."""
    stmt = (
        sa.select(User)
        .where(User.organization_id == organization_id, User.kind == "person")
        .order_by(User.name)
    )
    return list(session.scalars(stmt))


def partnerships_of(session: Session, org: Organization) -> list[Partnership]:
    stmt = (
        sa.select(Partnership)
        .where(sa.or_(Partnership.manufacturer_id == org.id, Partnership.partner_id == org.id))
        .order_by(Partnership.id)
    )
    return list(session.scalars(stmt))


def set_locale(session: Session, user: User, locale: str | None) -> None:
    user.locale = locale if locale in ("de", "en") else None
    session.commit()


def set_require_totp(session: Session, admin: User, required: bool) -> None:
    """Make a second factor mandatory (or optional) for the admin's organisation."""
    if admin.role != UserRole.ADMIN:
        raise Forbidden(_("Only admins manage users."))
    from auth import audit

    admin.organization.require_totp = required
    audit.record(
        session,
        "identity_settings",
        organization_id=admin.organization_id,
        actor=admin,
        detail=f"require_totp={'on' if required else 'off'}",
    )
    session.commit()


_EXTENSION = re.compile(r"^[0-9*#]{1,20}$")
_PREFIX = re.compile(r"^[0-9]{0,5}$")


def set_telephony(
    session: Session, admin: User, region: str, prefix: str, extensions: dict[int, str]
) -> None:
    """The organisation's telephone settings: default region for numbers, the outside-line
    prefix its telephone system adds, and each person's extension. All or nothing."""
    if admin.role != UserRole.ADMIN:
        raise Forbidden(_("Only admins manage users."))
    errors: dict[str, str] = {}
    region = region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        errors["phone_region"] = _("Not a country code for phone numbers: %(value)s", value=region)
    prefix = prefix.strip()
    if not _PREFIX.match(prefix):
        errors["outside_line_prefix"] = _("Up to five digits.")
    people = {u.id: u for u in organization_users(session, admin.organization_id)}
    wanted: dict[int, str | None] = {}
    seen: dict[str, int] = {}
    for user_id, raw in extensions.items():
        if user_id not in people:
            raise NotFound(_("User not found."))
        value = raw.strip()
        if value and not _EXTENSION.match(value):
            errors[f"ext-{user_id}"] = _("Digits, * and # only (up to 20).")
        elif value and value in seen:
            errors[f"ext-{user_id}"] = _("Extension %(value)s is given twice.", value=value)
        if value:
            seen[value] = user_id
        wanted[user_id] = value or None
    if errors:
        raise ValidationFailed(_("Some telephone settings are not valid."), fields=errors)
    org = admin.organization
    org.phone_region = region
    org.outside_line_prefix = prefix or None
    # Clear first, then set: swapping two extensions must not trip the unique constraint.
    changed = [uid for uid, value in wanted.items() if people[uid].phone_extension != value]
    for uid in changed:
        people[uid].phone_extension = None
    session.flush()
    for uid in changed:
        people[uid].phone_extension = wanted[uid]
    session.commit()
