"""API clients of organisations with OAuth 2.0 client credentials, and the audit log page.

An organisation admin (or the operator with `portal clients create`) creates a client with a
set of scopes (auth.scopes.CLIENT_SCOPES). Each client acts as its own service user
(`User.kind == "service"`, role agent) in the organisation, so the visibility policy treats it
like one of the organisation's agents; its bearer tokens carry exactly the granted scopes.

Only hashes are stored: the client secret (shown once at creation) and the short-lived
access tokens issued by POST /oauth/token (auth/oauth.py). Revoking a client ends its tokens
at once and deactivates its service user.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session, joinedload

from auth import audit
from auth.models import ApiClient, AuthEvent, OAuthToken
from auth.scopes import parse_scopes
from auth.service import close_live_connections, revoke_all_access
from auth.tokens import digest
from partners.models import Organization, User
from portal.db import utcnow
from portal.enums import UserRole
from portal.errors import Forbidden, NotFound, ValidationFailed

CLIENT_ID_PREFIX = "wkc_"
TOKEN_PREFIX = "wko_"  # noqa: S105 - a public marker, not a secret
SECRET_PREFIX = "wks_"  # noqa: S105 - a public marker, not a secret
SERVICE_EMAIL_DOMAIN = "clients.invalid"
DEFAULT_TOKEN_LIFETIME = 3600
MAX_NAME_LENGTH = 100
GRANT_TYPE = "client_credentials"

# Audit event kinds recorded here.
EVENT_CLIENT_CREATED = "client_created"
EVENT_CLIENT_REVOKED = "client_revoked"
# Success: a token was issued; failure: a token request was refused.
EVENT_OAUTH_TOKEN = "oauth_token"  # noqa: S105 - an event kind, not a secret

_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_CLIENT_ID = re.compile(r"^wkc_[A-Za-z0-9_-]{8,60}$")
# Compared against when a client id is unknown, so both paths hash and compare.
_NO_SECRET_HASH = digest("unknown client")


def new_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_urlsafe(12)  # 16 url-safe characters


def new_client_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_access_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def is_client_admin(actor: User) -> bool:
    return bool(
        actor.is_authenticated
        and actor.is_active
        and actor.kind == "person"
        and actor.role == UserRole.ADMIN
    )


def require_client_admin(actor: User) -> None:
    if not is_client_admin(actor):
        raise Forbidden(_("Only admins of the organisation manage API clients."))


def client_scopes(client: ApiClient) -> list[str]:
    return client.scopes.split()


# --- creating and revoking ------------------------------------------------------------------


def _validated(name: str, scopes: str | Iterable[str]) -> tuple[str, list[str]]:
    text = scopes if isinstance(scopes, str) else " ".join(scopes)
    valid, unknown = parse_scopes(text)
    errors: dict[str, str] = {}
    name = name.strip()
    if not name:
        errors["name"] = _("A name is required.")
    elif len(name) > MAX_NAME_LENGTH:
        errors["name"] = _(
            "This text is too long (at most %(max)s characters).", max=MAX_NAME_LENGTH
        )
    if unknown:
        errors["scopes"] = _("Unknown scope: %(names)s", names=", ".join(unknown))
    elif not valid:
        errors["scopes"] = _("Choose at least one scope.")
    if errors:
        raise ValidationFailed(_("Some values are not valid."), fields=errors)
    return name, valid


def create_client(
    session: Session, admin: User, name: str, scopes: str | Iterable[str]
) -> tuple[ApiClient, str]:
    """Create an API client of the admin's organisation and commit; returns the client and
    its secret, which is never stored in clear and cannot be shown again.

    Raises Forbidden (not an admin) or ValidationFailed (fields `name`, `scopes`)."""
    require_client_admin(admin)
    return create_client_for(session, admin.organization, name, scopes, actor=admin)


def create_client_for(
    session: Session,
    organization: Organization,
    name: str,
    scopes: str | Iterable[str],
    *,
    actor: User | None = None,
) -> tuple[ApiClient, str]:
    """Create an API client of `organization` (the operator's path: no admin check)."""
    name, valid = _validated(name, scopes)
    service_user = User(
        organization_id=organization.id,
        email=f"client-{secrets.token_hex(8)}@{SERVICE_EMAIL_DOMAIN}",
        name=name,
        role=UserRole.AGENT.value,
        kind="service",
        password_hash=None,
    )
    session.add(service_user)
    session.flush()
    secret = new_client_secret()
    client = ApiClient(
        organization_id=organization.id,
        user_id=service_user.id,
        name=name,
        client_id=new_client_id(),
        secret_hash=digest(secret),
        scopes=" ".join(valid),
        created_by_user_id=actor.id if actor is not None else None,
    )
    session.add(client)
    session.flush()
    audit.record(
        session,
        EVENT_CLIENT_CREATED,
        user=service_user,
        actor=actor,
        detail=f"{client.client_id} {name!r} scopes: {client.scopes}",
    )
    session.commit()
    return client, secret


def revoke_client(session: Session, admin: User, client_pk: int) -> ApiClient:
    """Revoke a client of the admin's organisation (by its row id) and commit."""
    require_client_admin(admin)
    client = session.get(ApiClient, client_pk)
    if client is None or client.organization_id != admin.organization_id:
        raise NotFound(_("API client not found."))
    revoke(session, client, actor=admin)
    return client


def revoke(session: Session, client: ApiClient, *, actor: User | None = None) -> bool:
    """Revoke a client: its tokens end at once and its service user is deactivated. Commits;
    False when it was revoked already (nothing changes, nothing is recorded)."""
    now = utcnow()
    result = session.execute(
        sa.update(ApiClient)
        .where(ApiClient.id == client.id, ApiClient.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        session.refresh(client)
        return False
    session.execute(
        sa.update(OAuthToken)
        .where(OAuthToken.client_id == client.id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    user = session.get(User, client.user_id)
    assert user is not None
    user.active = False
    user.deactivated_at = now
    revoke_all_access(session, user)
    audit.record(
        session,
        EVENT_CLIENT_REVOKED,
        user=user,
        actor=actor,
        detail=f"{client.client_id} {client.name!r}",
    )
    session.commit()
    session.refresh(client)
    close_live_connections(user_id=user.id)
    return True


def find_client(session: Session, client_id: str) -> ApiClient | None:
    """The client with this public client id (revoked ones included), or None."""
    if not _CLIENT_ID.match(client_id):
        return None
    return session.scalars(sa.select(ApiClient).where(ApiClient.client_id == client_id)).first()


def list_clients(session: Session, organization_id: int | None = None) -> list[ApiClient]:
    """Clients (of one organisation, or all): live ones first, newest first."""
    stmt = sa.select(ApiClient).order_by(
        ApiClient.revoked_at.is_not(None), ApiClient.created_at.desc(), ApiClient.id.desc()
    )
    if organization_id is not None:
        stmt = stmt.where(ApiClient.organization_id == organization_id)
    return list(session.scalars(stmt))


def clients_of(session: Session, admin: User) -> list[ApiClient]:
    require_client_admin(admin)
    return list_clients(session, admin.organization_id)


# --- the token endpoint ---------------------------------------------------------------------


def is_live(client: ApiClient) -> bool:
    """Not revoked, and its service user and organisation are active."""
    return client.revoked_at is None and client.user.kind == "service" and client.user.is_active


def live_client(session: Session, client_id: str) -> ApiClient | None:
    client = find_client(session, client_id)
    if client is None or not is_live(client):
        return None
    return client


def secret_matches(client: ApiClient | None, secret: str) -> bool:
    """Compare the hash of a presented secret with the stored one in constant time."""
    stored = client.secret_hash if client is not None else _NO_SECRET_HASH
    ok = hmac.compare_digest(digest(secret), stored)
    return ok and client is not None


def granted_scopes(client: ApiClient, requested: Iterable[str] | None) -> list[str] | None:
    """The scopes to grant: all of the client's when none are requested, the requested ones
    when they are a subset of the client's, else None (invalid_scope)."""
    own = set(client_scopes(client))
    if requested is None:
        return sorted(own)
    wanted = set(requested)
    if not wanted:
        return sorted(own)
    if not wanted <= own:
        return None
    return sorted(wanted)


def store_token(
    session: Session, client: ApiClient, access_token: str, scopes: Iterable[str], lifetime: int
) -> OAuthToken:
    """Store an issued access token (its hash only), record the issue and commit."""
    now = utcnow()
    scope_text = " ".join(sorted(set(scopes)))
    token = OAuthToken(
        client_id=client.id,
        token_hash=digest(access_token),
        scopes=scope_text,
        issued_at=now,
        expires_at=now + dt.timedelta(seconds=lifetime),
    )
    session.add(token)
    audit.record(
        session,
        EVENT_OAUTH_TOKEN,
        user=client.user,
        method=GRANT_TYPE,
        detail=f"{client.client_id} scopes: {scope_text} expires in {lifetime}s",
    )
    session.commit()
    return token


def record_refusal(session: Session, claimed_client_id: str | None, reason: str) -> None:
    """Record a refused token request (committed on its own). The event belongs to the
    claimed client's organisation when that client exists."""
    session.rollback()
    client = find_client(session, claimed_client_id) if claimed_client_id else None
    # Attacker-chosen text: printable ASCII only (PostgreSQL refuses NUL bytes).
    shown = _PRINTABLE.sub("?", (claimed_client_id or "-")[:64])
    reason = _PRINTABLE.sub("?", reason)
    audit.record_now(
        session,
        EVENT_OAUTH_TOKEN,
        user=client.user if client is not None else None,
        organization_id=client.organization_id if client is not None else None,
        method=GRANT_TYPE,
        success=False,
        detail=f"{shown}: {reason}"[:300],
    )


def user_for_oauth_token(session: Session, token: str) -> tuple[User, frozenset[str]] | None:
    """The service user and scopes of a live client-credentials token, or None.

    Live: known, unexpired and unrevoked, of an unrevoked client whose service user (and
    organisation) is active. Callers accept client tokens only for the API and the live
    connection, never for the pages of a person (portal/web.py, portal/realtime.py)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    # One statement for token, client, service user and organisations: it runs on every
    # request of a telephone system (the screen pop's path).
    row = session.scalars(
        sa.select(OAuthToken)
        .where(OAuthToken.token_hash == digest(token))
        .options(joinedload(OAuthToken.client).joinedload(ApiClient.user))
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    client = row.client
    if not is_live(client):
        return None
    scopes = frozenset(row.scopes.split()) & frozenset(client_scopes(client))
    return client.user, scopes


# --- the organisation's audit log -------------------------------------------------------------

AUDIT_PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditPage:
    events: list[AuthEvent]
    actors: dict[int, User]
    kinds: list[str]
    next_key: tuple[dt.datetime, int] | None


def audit_page(
    session: Session,
    admin: User,
    *,
    kind: str | None = None,
    before: tuple[dt.datetime, int] | None = None,
    limit: int = AUDIT_PAGE_SIZE,
) -> AuditPage:
    """Identity events of the admin's organisation, newest first, in keyset pages (never
    events of another organisation). Raises Forbidden for anyone but its admins."""
    if not is_client_admin(admin):
        raise Forbidden(_("Only admins of the organisation see its audit log."))
    org_id = admin.organization_id
    stmt = sa.select(AuthEvent).where(AuthEvent.organization_id == org_id)
    if kind:
        stmt = stmt.where(AuthEvent.kind == kind)
    if before is not None:
        at, row_id = before
        stmt = stmt.where(
            sa.or_(
                AuthEvent.created_at < at,
                sa.and_(AuthEvent.created_at == at, AuthEvent.id < row_id),
            )
        )
    stmt = stmt.order_by(AuthEvent.created_at.desc(), AuthEvent.id.desc()).limit(limit + 1)
    events = list(session.scalars(stmt))
    next_key = None
    if len(events) > limit:
        events = events[:limit]
        next_key = (events[-1].created_at, events[-1].id)
    actor_ids = {e.actor_user_id for e in events if e.actor_user_id is not None}
    actors = (
        {u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(actor_ids)))}
        if actor_ids
        else {}
    )
    kinds = list(
        session.scalars(
            sa.select(AuthEvent.kind)
            .where(AuthEvent.organization_id == org_id)
            .distinct()
            .order_by(AuthEvent.kind)
        )
    )
    return AuditPage(events, actors, kinds, next_key)
