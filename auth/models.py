"""Typed models of authentication: server-side sessions, personal API tokens, single sign-on
providers and identities, API clients with their OAuth tokens, password resets and the audit
log of identity events.

Only hashes of session ids, tokens, client secrets and reset links are stored, so a database
dump cannot be replayed; SSO client secrets and TOTP seeds are encrypted (auth/crypto.py).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from partners.models import Organization, User
from portal.db import Base, created_at_col, intpk, utcnow


class UserSession(Base):
    """One signed-in browser; revoked at sign-out, deactivation, idle or absolute expiry."""

    __tablename__ = "user_sessions"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[created_at_col]
    last_seen_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    user_agent: Mapped[str | None] = mapped_column(sa.String(300))
    # How the session was started: "password", "sso" (then provider and its session id, for
    # back-channel logout), and whether a second factor is still owed.
    method: Mapped[str] = mapped_column(
        sa.String(20), default="password", server_default="password"
    )
    provider_id: Mapped[int | None] = mapped_column(sa.ForeignKey("identity_providers.id"))
    provider_session_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    id_token_hint: Mapped[str | None] = mapped_column(sa.Text)
    second_factor_pending: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A personal API token (Bearer); the clear value is shown once at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[created_at_col]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()


class IdentityProvider(Base):
    """An organisation's own OpenID Connect provider (one per organisation)."""

    __tablename__ = "identity_providers"

    id: Mapped[intpk]
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), unique=True)
    issuer: Mapped[str] = mapped_column(sa.String(500))
    client_id: Mapped[str] = mapped_column(sa.String(255))
    client_secret_encrypted: Mapped[str] = mapped_column(sa.Text)
    role_claim: Mapped[str | None] = mapped_column(sa.String(100))
    # JSON object: claim value -> portal role ("admin" | "agent" | "viewer").
    role_map: Mapped[str] = mapped_column(sa.Text, default="{}")
    default_role: Mapped[str] = mapped_column(sa.String(20), default="agent")
    jit: Mapped[bool] = mapped_column(default=False)
    allow_local_passwords: Mapped[bool] = mapped_column(default=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[created_at_col]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")
    domains: Mapped[list[SsoDomain]] = relationship(
        back_populates="provider", cascade="all, delete-orphan", order_by="SsoDomain.domain"
    )


class SsoDomain(Base):
    """An email domain that belongs to an organisation with SSO (home-realm discovery)."""

    __tablename__ = "sso_domains"

    domain: Mapped[str] = mapped_column(sa.String(253), primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        sa.ForeignKey("identity_providers.id", ondelete="CASCADE"), index=True
    )

    provider: Mapped[IdentityProvider] = relationship(back_populates="domains")


class UserIdentity(Base):
    """A user as known to a provider: (issuer, subject), never matched by email alone."""

    __tablename__ = "user_identities"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("identity_providers.id"), index=True)
    issuer: Mapped[str] = mapped_column(sa.String(500))
    subject: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[created_at_col]
    last_login_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()

    __table_args__ = (sa.UniqueConstraint("issuer", "subject"),)


class ApiClient(Base):
    """An integration (telephone system, dealer management system) of an organisation,
    authenticating with OAuth 2.0 client credentials and acting as its service user."""

    __tablename__ = "api_clients"

    id: Mapped[intpk]
    organization_id: Mapped[int] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    client_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64))
    scopes: Mapped[str] = mapped_column(sa.String(500))  # space-separated
    created_at: Mapped[created_at_col]
    created_by_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    revoked_at: Mapped[dt.datetime | None]

    organization: Mapped[Organization] = relationship(lazy="joined")
    user: Mapped[User] = relationship(foreign_keys=[user_id])


class OAuthToken(Base):
    """A short-lived bearer token issued to an API client."""

    __tablename__ = "oauth_tokens"

    id: Mapped[intpk]
    client_id: Mapped[int] = mapped_column(sa.ForeignKey("api_clients.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[str] = mapped_column(sa.String(500))
    issued_at: Mapped[created_at_col]
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]

    client: Mapped[ApiClient] = relationship(lazy="joined")


class PasswordReset(Base):
    """A one-time password reset link sent by email."""

    __tablename__ = "password_resets"

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[created_at_col]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()


class AuthEvent(Base):
    """The audit log of identity events: sign-in attempts, tokens, clients, settings."""

    __tablename__ = "auth_events"

    id: Mapped[intpk]
    organization_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organizations.id"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    actor_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(sa.String(40))
    method: Mapped[str | None] = mapped_column(sa.String(20))
    success: Mapped[bool] = mapped_column(default=True)
    email: Mapped[str | None] = mapped_column(sa.String(254))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(300))
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[created_at_col]

    user: Mapped[User | None] = relationship(foreign_keys=[user_id], lazy="joined")

    __table_args__ = (sa.Index("ix_auth_events_org_created", "organization_id", "created_at"),)
