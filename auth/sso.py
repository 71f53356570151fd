"""Single sign-on with each organisation's own OpenID Connect provider: the settings (admin
page and CLI), home-realm discovery, what a verified sign-in means for the portal (identity,
just-in-time accounts, roles), RP-initiated and back-channel logout.

The protocol itself (discovery, PKCE, token checks) is in auth/oidc.py; the endpoints are in
auth/sso_views.py. Rules kept here:
- a person is identified by (issuer, subject), never linked to an account by email alone;
- a just-in-time account needs a verified email in one of the provider's domains;
- the role follows the configured claim at every sign-in;
- a deactivated account, or one of another organisation, is refused whatever the provider
  says.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, has_request_context, request, url_for
from flask_babel import gettext as _
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from auth import audit, oidc
from auth import service as auth_service
from auth.crypto import DecryptionError, decrypt, encrypt
from auth.models import IdentityProvider, SsoDomain, UserIdentity, UserSession
from auth.tokens import digest
from partners.models import Organization, User
from portal.db import utcnow
from portal.enums import UserRole
from portal.errors import Conflict, PortalError, ValidationFailed

ROLE_RANK = {UserRole.VIEWER.value: 1, UserRole.AGENT.value: 2, UserRole.ADMIN.value: 3}
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]*$")
_CLAIM = re.compile(r"^[A-Za-z0-9_:/.\-]{1,100}$")


class SsoRefused(Exception):
    """A sign-in or logout that must not happen; `message` is shown to the person (already
    translated), `reason` goes to the audit log."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.status = status


# --- lookups -------------------------------------------------------------------------------


def email_domain(email: str) -> str | None:
    _local, sep, domain = email.strip().rpartition("@")
    return domain.lower().rstrip(".") if sep and domain else None


def provider_for_email(session: Session, email: str) -> IdentityProvider | None:
    """The enabled provider of the organisation the email's domain belongs to, if any."""
    domain = email_domain(email)
    if not domain:
        return None
    provider = session.scalars(
        sa.select(IdentityProvider)
        .join(SsoDomain, SsoDomain.provider_id == IdentityProvider.id)
        .where(SsoDomain.domain == domain, IdentityProvider.enabled.is_(True))
    ).first()
    if provider is None or not provider.organization.active:
        return None
    return provider


def provider_of(session: Session, organization: Organization) -> IdentityProvider | None:
    return session.scalars(
        sa.select(IdentityProvider).where(IdentityProvider.organization_id == organization.id)
    ).first()


def organization_by_slug(session: Session, slug: str) -> Organization | None:
    return session.scalars(sa.select(Organization).where(Organization.slug == slug)).first()


def enabled_provider_for_slug(session: Session, slug: str) -> IdentityProvider | None:
    org = organization_by_slug(session, slug)
    if org is None or not org.active:
        return None
    provider = provider_of(session, org)
    return provider if provider is not None and provider.enabled else None


def local_password_allowed(session: Session, user: User) -> bool:
    """False when the user's organisation signs in through its provider only."""
    provider = provider_of(session, user.organization)
    return provider is None or not provider.enabled or provider.allow_local_passwords


def client_secret(provider: IdentityProvider) -> str:
    try:
        return decrypt(provider.client_secret_encrypted)
    except DecryptionError as exc:
        raise SsoRefused(
            "secret_undecryptable",
            _(
                "The single sign-on settings of this organisation cannot be used (the client "
                "secret cannot be decrypted). Please tell your administrator."
            ),
        ) from exc


def role_map_of(provider: IdentityProvider) -> dict[str, str]:
    try:
        value = json.loads(provider.role_map or "{}")
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if str(v) in ROLE_RANK}


# --- URLs ----------------------------------------------------------------------------------


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute URL of the portal: PORTAL_BASE_URL when set, else the request's host."""
    base = str(current_app.config.get("BASE_URL") or "").rstrip("/")
    if not has_request_context():  # the CLI: URLs from PORTAL_BASE_URL
        with current_app.test_request_context(base_url=base or None):
            return public_url(endpoint, **values)
    if not base:
        return url_for(endpoint, _external=True, **values)
    path = url_for(endpoint, **values)
    root = request.script_root
    if root and path.startswith(root + "/"):
        path = path[len(root) :]
    return base + path


def redirect_uri(org_slug: str) -> str:
    """The one redirect URI of an organisation (register it at the provider)."""
    return public_url("sso.callback", org_slug=org_slug)


def backchannel_logout_uri(org_slug: str) -> str:
    return public_url("sso.backchannel_logout", org_slug=org_slug)


def post_logout_uri() -> str:
    return public_url("auth.login")


def metadata_cache() -> oidc.MetadataCache:
    cache = current_app.extensions.get("sso_metadata")
    if cache is None:
        cache = current_app.extensions.setdefault("sso_metadata", oidc.MetadataCache())
    return cache  # type: ignore[no-any-return]


# --- settings ------------------------------------------------------------------------------


@dataclass
class Settings:
    """What an admin (page or CLI) sets; `client_secret` None keeps the stored one."""

    issuer: str
    client_id: str
    client_secret: str | None
    domains: list[str]
    role_claim: str | None = None
    role_map: dict[str, str] = field(default_factory=dict)
    default_role: str = UserRole.AGENT.value
    jit: bool = False
    allow_local_passwords: bool = True
    enabled: bool = True

    def __post_init__(self) -> None:
        self.domains = parse_domains(",".join(self.domains))


def parse_domains(text: str) -> list[str]:
    """Comma-, space- or line-separated domains, lower case (as stored and looked up),
    without duplicates."""
    seen: list[str] = []
    for part in re.split(r"[\s,;]+", text.strip()):
        domain = part.strip().lower().lstrip("@").rstrip(".")
        if domain and domain not in seen:
            seen.append(domain)
    return seen


def parse_role_map(text: str) -> dict[str, str]:
    """`value=role` pairs, one per line or comma-separated. Raises ValueError (readable)."""
    mapping: dict[str, str] = {}
    for raw in re.split(r"[\n,]+", text):
        item = raw.strip()
        if not item:
            continue
        value, sep, role = item.rpartition("=")
        value, role = value.strip(), role.strip().lower()
        if not sep or not value:
            raise ValueError(
                _('"%(item)s" is not of the form value=role.', item=item[:100]),
            )
        if role not in ROLE_RANK:
            raise ValueError(
                _('"%(role)s" is not a role (admin, agent or viewer).', role=role[:40]),
            )
        mapping[value[:200]] = role
    return mapping


def format_role_map(mapping: Mapping[str, str]) -> str:
    return "\n".join(f"{value}={role}" for value, role in mapping.items())


def _ascii_domain(domain: str) -> str | None:
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def validate(settings: Settings, *, secret_required: bool) -> None:
    """Raise ValidationFailed with a message per field."""
    errors: dict[str, str] = {}
    issuer = settings.issuer
    parts = urlsplit(issuer)
    if not issuer or len(issuer) > 500 or parts.scheme not in {"http", "https"}:
        errors["issuer"] = _("Enter the issuer URL of your provider (https://…).")
    elif not parts.hostname or parts.query or parts.fragment:
        errors["issuer"] = _("The issuer is a URL without query or fragment.")
    elif not oidc.secure_url(issuer):
        errors["issuer"] = _("The issuer must use HTTPS.")
    if not settings.client_id or len(settings.client_id) > 255:
        errors["client_id"] = _("Enter the client ID the provider gave you.")
    if secret_required and not settings.client_secret:
        errors["client_secret"] = _("Enter the client secret the provider gave you.")
    if not settings.domains:
        errors["domains"] = _("Enter at least one email domain of your organisation.")
    else:
        bad = [d for d in settings.domains if not _DOMAIN.match(_ascii_domain(d) or "")]
        if bad:
            errors["domains"] = _("Not a domain: %(domains)s", domains=", ".join(bad[:5]))
    if settings.role_claim and not _CLAIM.match(settings.role_claim):
        errors["role_claim"] = _("A claim name has letters, digits and _ : / . - only.")
    if settings.role_map and not settings.role_claim:
        errors["role_claim"] = _("Name the claim the role mapping reads.")
    if settings.default_role not in ROLE_RANK:
        errors["default_role"] = _("Role must be admin, agent or viewer.")
    if errors:
        raise ValidationFailed(_("Some values are not valid."), fields=errors)


def check_discovery(issuer: str) -> dict[str, Any]:
    """Fetch the discovery document now (no cache); ValidationFailed on the issuer field
    when it cannot be fetched or names another issuer."""
    try:
        return oidc.fetch_discovery(issuer)
    except oidc.OidcError as exc:
        if exc.reason == "discovery_issuer_mismatch":
            message = _(
                "The provider's discovery document names another issuer. Enter the issuer "
                "exactly as the provider states it (%(url)s).",
                url=oidc.discovery_url(issuer),
            )
        elif exc.reason == "discovery_unreachable":
            message = _(
                "The discovery document %(url)s cannot be fetched. Check the issuer URL.",
                url=oidc.discovery_url(issuer),
            )
        else:
            message = _(
                "%(url)s is not a usable OpenID Connect discovery document.",
                url=oidc.discovery_url(issuer),
            )
        raise ValidationFailed(message, fields={"issuer": message}) from exc


def save_settings(
    session: Session,
    organization: Organization,
    settings: Settings,
    *,
    actor: User | None = None,
) -> IdentityProvider:
    """Create or update the organisation's provider and its domains, audit and commit.

    Raises ValidationFailed (field messages) or Conflict (a domain of another organisation).
    The caller checks discovery first (check_discovery) where the provider must be reachable.
    """
    provider = provider_of(session, organization)
    validate(settings, secret_required=provider is None)
    taken = session.execute(
        sa.select(SsoDomain.domain, Organization.name)
        .join(IdentityProvider, IdentityProvider.id == SsoDomain.provider_id)
        .join(Organization, Organization.id == IdentityProvider.organization_id)
        .where(
            SsoDomain.domain.in_(settings.domains),
            IdentityProvider.organization_id != organization.id,
        )
    ).all()
    if taken:
        message = _(
            "The domain %(domain)s belongs to another organisation already. A domain can "
            "sign in through one organisation only.",
            domain=taken[0][0],
        )
        raise Conflict(message, fields={"domains": message}, code="domain_taken")
    changed: list[str] = []
    if provider is None:
        provider = IdentityProvider(organization_id=organization.id, role_map="{}")
        session.add(provider)
        changed.append("created")
    new_values: dict[str, Any] = {
        "issuer": settings.issuer,
        "client_id": settings.client_id,
        "role_claim": settings.role_claim or None,
        "role_map": json.dumps(settings.role_map, sort_keys=True),
        "default_role": settings.default_role,
        "jit": settings.jit,
        "allow_local_passwords": settings.allow_local_passwords,
        "enabled": settings.enabled,
    }
    for name, value in new_values.items():
        if getattr(provider, name) != value:
            setattr(provider, name, value)
            changed.append(name)
    if settings.client_secret:
        provider.client_secret_encrypted = encrypt(settings.client_secret)
        changed.append("client_secret")
    old_domains = sorted(d.domain for d in provider.domains)
    if old_domains != sorted(settings.domains):
        provider.domains = [SsoDomain(domain=d) for d in settings.domains]
        changed.append("domains")
    provider.updated_at = utcnow()
    detail = json.dumps(
        {
            "changed": changed,
            "issuer": settings.issuer,
            "client_id": settings.client_id,
            "domains": settings.domains,
            "enabled": settings.enabled,
            "jit": settings.jit,
            "allow_local_passwords": settings.allow_local_passwords,
        },
        sort_keys=True,
    )
    audit.record(
        session,
        "sso_settings",
        organization_id=organization.id,
        actor=actor,
        user=None,
        method="sso",
        detail=detail,
    )
    try:
        session.commit()
    except sa.exc.IntegrityError as exc:
        session.rollback()
        message = _("One of these domains belongs to another organisation already.")
        raise Conflict(message, fields={"domains": message}, code="domain_taken") from exc
    metadata_cache().forget(settings.issuer)
    return provider


def settings_of(provider: IdentityProvider) -> Settings:
    return Settings(
        issuer=provider.issuer,
        client_id=provider.client_id,
        client_secret=None,
        domains=[d.domain for d in provider.domains],
        role_claim=provider.role_claim,
        role_map=role_map_of(provider),
        default_role=provider.default_role,
        jit=provider.jit,
        allow_local_passwords=provider.allow_local_passwords,
        enabled=provider.enabled,
    )


# --- sign-in -------------------------------------------------------------------------------


def _claim_values(claims: Mapping[str, Any], name: str) -> list[str]:
    """The values of a claim (string or list); a dotted name also reads nested objects
    (Keycloak's realm_access.roles)."""
    value: Any = claims.get(name)
    if value is None and "." in name:
        value = claims
        for part in name.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int)]
    return []


def role_from_claims(provider: IdentityProvider, claims: Mapping[str, Any]) -> str | None:
    """The highest mapped role, else the default role; None when no role claim is set
    (roles are then managed in the portal)."""
    if not provider.role_claim:
        return None
    mapping = role_map_of(provider)
    roles = [mapping[v] for v in _claim_values(claims, provider.role_claim) if v in mapping]
    if not roles:
        return provider.default_role
    return max(roles, key=lambda r: ROLE_RANK[r])


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in {"true", "1"})


def _email_verified(claims: Mapping[str, Any]) -> bool:
    """`email_verified`, or Microsoft Entra ID's optional claim `xms_edov` (the email's
    domain owner is verified; Entra sends no email_verified)."""
    return _true(claims.get("email_verified")) or _true(claims.get("xms_edov"))


def _display_name(claims: Mapping[str, Any], email: str) -> str:
    name = claims.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()[:200]
    given, family = claims.get("given_name"), claims.get("family_name")
    parts = [p.strip() for p in (given, family) if isinstance(p, str) and p.strip()]
    return " ".join(parts)[:200] or email.split("@")[0]


def _refuse(
    session: Session,
    provider: IdentityProvider,
    reason: str,
    message: str,
    *,
    status: int = 403,
    user: User | None = None,
    email: str | None = None,
) -> SsoRefused:
    session.rollback()
    audit.record_now(
        session,
        "login",
        user=user,
        organization_id=provider.organization_id,
        method="sso",
        success=False,
        email=email[:254] if email else None,
        detail=reason,
    )
    return SsoRefused(reason, message, status)


def record_failure(
    session: Session,
    organization_id: int | None,
    reason: str,
    *,
    email: str | None = None,
    kind: str = "login",
) -> None:
    """Audit a refused sign-in (or logout) that never reached an account."""
    session.rollback()
    audit.record_now(
        session,
        kind,
        organization_id=organization_id,
        method="sso",
        success=False,
        email=email[:254] if email else None,
        detail=reason[:2000],
    )


def _user_for_identity(
    session: Session, provider: IdentityProvider, claims: Mapping[str, Any]
) -> tuple[User, UserIdentity]:
    """The account of (issuer, subject), created just in time where allowed."""
    subject = str(claims["sub"])
    raw_email = claims.get("email")
    email = raw_email.strip().lower() if isinstance(raw_email, str) else ""
    identity = session.scalars(
        sa.select(UserIdentity).where(
            UserIdentity.issuer == provider.issuer, UserIdentity.subject == subject
        )
    ).first()
    if identity is not None:
        return identity.user, identity
    org_name = provider.organization.name
    if email and session.scalars(sa.select(User.id).where(User.email == email)).first():
        raise _refuse(
            session,
            provider,
            "email_taken_unlinked",
            _(
                "A portal account with the email address %(email)s exists already, but it is "
                "not linked to this company account. For your protection it is not linked "
                "automatically: sign in with your portal password once and link your company "
                "account in your profile, or ask your administrator.",
                email=email,
            ),
            email=email,
        )
    if not provider.jit:
        raise _refuse(
            session,
            provider,
            "no_account",
            _(
                "There is no portal account for this company account at %(org)s. Please ask "
                "your administrator to create one.",
                org=org_name,
            ),
            email=email or None,
        )
    if not email or not _email_verified(claims):
        raise _refuse(
            session,
            provider,
            "email_unverified",
            _(
                "Your identity provider has not confirmed your email address, so no portal "
                "account can be created for you. Please ask your administrator."
            ),
            email=email or None,
        )
    allowed = {d.domain.lower() for d in provider.domains}
    if email_domain(email) not in allowed:
        raise _refuse(
            session,
            provider,
            "domain_not_allowed",
            _(
                "The email address %(email)s does not belong to a domain of %(org)s, so no "
                "portal account can be created for it.",
                email=email,
                org=org_name,
            ),
            email=email,
        )
    from partners.service import create_user

    try:
        user = create_user(
            session,
            provider.organization,
            email=email,
            name=_display_name(claims, email),
            role=role_from_claims(provider, claims) or provider.default_role,
            password=None,
        )
    except PortalError as exc:
        raise _refuse(
            session, provider, f"jit_failed: {exc.code}", exc.message, email=email
        ) from exc
    identity = UserIdentity(
        user_id=user.id, provider_id=provider.id, issuer=provider.issuer, subject=subject
    )
    session.add(identity)
    session.flush()
    audit.record(session, "user_created", user=user, method="sso", detail="just in time")
    return user, identity


def link_identity(
    session: Session, provider: IdentityProvider, user: User, claims: Mapping[str, Any]
) -> None:
    """Link the company account of verified `claims` to `user`, who is signed in to the
    portal (so both accounts are proven by the same person). No commit; SsoRefused when the
    company account belongs to someone else or the user has another one linked."""
    if user.organization_id != provider.organization_id:
        raise _refuse(
            session,
            provider,
            "link_foreign_organization",
            _("Only accounts of %(org)s can be linked here.", org=provider.organization.name),
            user=user,
        )
    subject = str(claims["sub"])
    existing = session.scalars(
        sa.select(UserIdentity).where(
            UserIdentity.issuer == provider.issuer, UserIdentity.subject == subject
        )
    ).first()
    if existing is not None and existing.user_id != user.id:
        raise _refuse(
            session,
            provider,
            "link_taken",
            _("This company account is linked to another portal account already."),
            user=user,
        )
    if existing is not None:
        return
    other = session.scalars(
        sa.select(UserIdentity).where(
            UserIdentity.user_id == user.id, UserIdentity.issuer == provider.issuer
        )
    ).first()
    if other is not None:
        raise _refuse(
            session,
            provider,
            "link_other_subject",
            _("Your portal account is linked to another company account already."),
            user=user,
        )
    session.add(
        UserIdentity(
            user_id=user.id, provider_id=provider.id, issuer=provider.issuer, subject=subject
        )
    )
    session.flush()
    audit.record(session, "sso_linked", user=user, method="sso", detail=f"subject {subject}")


def complete_sign_in(
    session: Session,
    provider: IdentityProvider,
    claims: Mapping[str, Any],
    raw_id_token: str,
    *,
    lifetime: dt.timedelta,
    user_agent: str,
    link_to: User | None = None,
) -> tuple[User, str]:
    """Turn verified ID token claims into a portal session; returns (user, session secret).
    With `link_to` (the signed-in user who asked to link), the company account is linked to
    that user first.

    Raises SsoRefused (already audited and rolled back) when nobody may be signed in."""
    if link_to is not None:
        link_identity(session, provider, link_to, claims)
    user, identity = _user_for_identity(session, provider, claims)
    if user.organization_id != provider.organization_id:
        raise _refuse(
            session,
            provider,
            "foreign_organization",
            _(
                "This company account belongs to another organisation than %(org)s. Please "
                "sign in through your own organisation.",
                org=provider.organization.name,
            ),
            user=user,
        )
    if user.kind != "person" or not user.is_active:
        raise _refuse(
            session,
            provider,
            "account_disabled",
            _("Your portal account is deactivated. Please ask your administrator."),
            user=user,
        )
    role = role_from_claims(provider, claims)
    detail = ""
    if role is not None and role != user.role:
        detail = f"role {user.role} -> {role}"
        user.role = role
    identity.last_login_at = utcnow()
    if identity.provider_id != provider.id:
        identity.provider_id = provider.id
    session.commit()
    secret = auth_service.start_session(session, user, lifetime, user_agent, method="sso")
    row = session.scalars(
        sa.select(UserSession).where(UserSession.token_hash == digest(secret))
    ).one()
    row.method = "sso"
    row.provider_id = provider.id
    sid = claims.get("sid")
    row.provider_session_id = sid[:255] if isinstance(sid, str) and sid else None
    row.id_token_hint = raw_id_token
    audit.record(
        session,
        "login",
        user=user,
        organization_id=provider.organization_id,
        method="sso",
        detail=(detail or "ok") + f"; issuer {provider.issuer}",
    )
    session.commit()
    return user, secret


# --- logout --------------------------------------------------------------------------------


_LOGOUT_SALT = "wertkette-sso-logout"
LOGOUT_LINK_SECONDS = 300


def end_session_target(token: str) -> str | None:
    """The provider end-session URL signed into a logout link, if the link is genuine."""
    serializer = URLSafeTimedSerializer(current_app.secret_key or "", salt=_LOGOUT_SALT)
    try:
        value = serializer.loads(token, max_age=LOGOUT_LINK_SECONDS)
    except BadData:
        return None
    return value if isinstance(value, str) and oidc.secure_url(value) else None


def logout_redirect(
    session: Session, user_session: UserSession, post_logout_url: str
) -> str | None:
    """Where the browser goes after the portal's sign-out of an SSO session: a portal link
    (`sso.leave`) that forwards to the provider's end_session_endpoint with id_token_hint,
    post_logout_redirect_uri and client_id (RP-initiated logout); None for other sessions
    or when the provider advertises no end-session endpoint."""
    target = provider_logout_url(session, user_session, post_logout_url)
    if target is None:
        return None
    serializer = URLSafeTimedSerializer(current_app.secret_key or "", salt=_LOGOUT_SALT)
    return url_for("sso.leave", token=serializer.dumps(target))


def provider_logout_url(
    session: Session, user_session: UserSession, post_logout_url: str
) -> str | None:
    """The provider's end-session URL for an SSO session (RP-initiated logout), if any."""
    if user_session.method != "sso" or user_session.provider_id is None:
        return None
    provider = session.get(IdentityProvider, user_session.provider_id)
    if provider is None:
        return None
    try:
        metadata = metadata_cache().discovery(provider.issuer)
    except oidc.OidcError:
        current_app.logger.warning("RP-initiated logout skipped: %s unreachable", provider.issuer)
        return None
    return oidc.end_session_url(
        metadata,
        client_id=provider.client_id,
        id_token_hint=user_session.id_token_hint,
        post_logout_redirect_uri=post_logout_url,
    )


def backchannel_logout(session: Session, provider: IdentityProvider, logout_token: str) -> int:
    """Verify a logout token from the provider and end the sessions it names; returns how
    many ended. Raises oidc.OidcError when the token is not acceptable."""
    metadata = metadata_cache().discovery(provider.issuer)
    claims = oidc.verify_logout_token(
        logout_token,
        issuer=provider.issuer,
        client_id=provider.client_id,
        metadata=metadata,
        cache=metadata_cache(),
    )
    sub, sid = claims.get("sub"), claims.get("sid")
    conditions: list[Any] = [
        UserSession.provider_id == provider.id,
        UserSession.revoked_at.is_(None),
    ]
    if isinstance(sub, str) and sub:
        user_ids = sa.select(UserIdentity.user_id).where(
            UserIdentity.issuer == provider.issuer, UserIdentity.subject == sub
        )
        conditions.append(UserSession.user_id.in_(user_ids))
    if isinstance(sid, str) and sid:
        conditions.append(UserSession.provider_session_id == sid)
    result = session.execute(sa.update(UserSession).where(*conditions).values(revoked_at=utcnow()))
    ended = int(result.rowcount or 0)  # type: ignore[attr-defined]
    audit.record(
        session,
        "logout",
        organization_id=provider.organization_id,
        method="sso",
        detail=f"back-channel logout: {ended} session(s) ended"
        + (f"; sub {sub}" if sub else "")
        + (f"; sid {sid}" if sid else ""),
    )
    session.commit()
    return ended
