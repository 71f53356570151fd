"""Authentication operations: password sign-in, server-side sessions, personal API tokens."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from auth.models import ApiToken, UserSession
from auth.passwords import verify_password
from auth.tokens import API_TOKEN_PREFIX, digest, new_api_token, new_secret
from partners.models import User
from portal.db import utcnow

SESSION_TOUCH_INTERVAL = dt.timedelta(minutes=5)


def find_user(session: Session, email: str) -> User | None:
    """The user with this email address (compared as stored: trimmed, lower-case)."""
    return session.scalars(sa.select(User).where(User.email == email.strip().lower())).first()


def authenticate(session: Session, email: str, password: str, argon2_profile: str) -> User | None:
    """The active user with this email and password, or None (same answer for every failure)."""
    user = find_user(session, email)
    ok = verify_password(user.password_hash if user else None, password, argon2_profile)
    if user is None or not ok or not user.is_active or user.kind != "person":
        return None
    return user


def start_session(
    session: Session,
    user: User,
    lifetime: dt.timedelta,
    user_agent: str,
    *,
    method: str = "password",
    second_factor_pending: bool = False,
) -> str:
    """Record a new signed-in browser; returns the secret the browser keeps."""
    secret = new_secret()
    now = utcnow()
    session.add(
        UserSession(
            user_id=user.id,
            token_hash=digest(secret),
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            user_agent=user_agent[:300],
            method=method,
            second_factor_pending=second_factor_pending,
        )
    )
    session.commit()
    return secret


def live_session(session: Session, secret: str, idle: dt.timedelta) -> UserSession | None:
    """The session row of a browser, or None when revoked, past its absolute lifetime, idle
    for longer than `idle` (then revoked), or its user is disabled."""
    now = utcnow()
    row = session.scalars(
        sa.select(UserSession).where(UserSession.token_hash == digest(secret))
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if now - row.last_seen_at > idle:
        row.revoked_at = now
        session.commit()
        return None
    if not row.user.is_active:
        return None
    if now - row.last_seen_at > min(SESSION_TOUCH_INTERVAL, idle / 4):
        row.last_seen_at = now
        session.commit()
    return row


def user_for_session(
    session: Session, secret: str, idle: dt.timedelta = dt.timedelta(hours=1)
) -> User | None:
    """The user of a live, fully signed-in session (second factor done), or None."""
    row = live_session(session, secret, idle)
    if row is None or row.second_factor_pending:
        return None
    return row.user


def complete_second_factor(session: Session, row: UserSession) -> None:
    row.second_factor_pending = False
    session.commit()


def end_session(session: Session, secret: str) -> None:
    session.execute(
        sa.update(UserSession)
        .where(UserSession.token_hash == digest(secret), UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.commit()


def revoke_all_access(session: Session, user: User) -> None:
    """End every session and revoke every token of a user (no commit: part of the caller's
    transaction, e.g. deactivation)."""
    now = utcnow()
    session.execute(
        sa.update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def create_api_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new personal API token; the clear value is returned once and never stored."""
    secret = new_api_token()
    token = ApiToken(
        user_id=user.id,
        name=name.strip()[:100] or "API token",
        token_hash=digest(secret),
        prefix=secret[: len(API_TOKEN_PREFIX) + 6],
    )
    session.add(token)
    session.commit()
    return token, secret


def user_for_api_token(session: Session, secret: str) -> User | None:
    if not secret.startswith(API_TOKEN_PREFIX):
        return None
    # One statement for token, user and organisation: it runs on every API request.
    row = session.execute(
        sa.select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == digest(secret), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    token, user = row
    if not user.is_active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > SESSION_TOUCH_INTERVAL:
        token.last_used_at = now
        session.commit()
    return user


def list_api_tokens(session: Session, user: User) -> list[ApiToken]:
    stmt = (
        sa.select(ApiToken)
        .where(ApiToken.user_id == user.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc())
    )
    return list(session.scalars(stmt))


def revoke_api_token(session: Session, user: User, token_id: int) -> bool:
    """Revoke one of the user's tokens; live connections using it are closed at once."""
    token = session.scalars(
        sa.select(ApiToken).where(
            ApiToken.id == token_id, ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)
        )
    ).first()
    if token is None:
        return False
    token.revoked_at = utcnow()
    session.commit()
    close_live_connections(credential="token:" + token.token_hash)
    return True


def close_live_connections(*, user_id: int | None = None, credential: str | None = None) -> None:
    """Close the live (Socket.IO) connections of ended credentials, where an app runs."""
    if not has_app_context():
        return
    from portal.realtime import disconnect_sockets

    disconnect_sockets(current_app, user_id=user_id, credential=credential)
