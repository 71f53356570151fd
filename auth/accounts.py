"""Local account operations: password change, password reset by emailed link, and the TOTP
second factor (pyotp). Each operation records an audit event."""

from __future__ import annotations

import datetime as dt

import pyotp
import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from auth import audit
from auth.crypto import decrypt, encrypt
from auth.models import PasswordReset, UserSession
from auth.passwords import hash_password, password_problem, verify_password
from auth.service import find_user
from auth.tokens import digest, new_secret
from partners.models import User
from portal.db import utcnow
from portal.errors import ValidationFailed

TOTP_ISSUER = "Wertkette"


def _check_new_password(user: User, new: str, confirm: str) -> None:
    if new != confirm:
        raise ValidationFailed(
            _("The passwords do not match."),
            fields={"confirm": _("Type the same new password twice.")},
        )
    problem = password_problem(new, email=user.email, name=user.name)
    if problem:
        raise ValidationFailed(
            _("This password cannot be used: %(rule)s.", rule=problem),
            fields={"new_password": _("This password cannot be used: %(rule)s.", rule=problem)},
        )


def _set_password(session: Session, user: User, new: str, profile: str) -> None:
    user.password_hash = hash_password(new, profile)
    user.password_changed_at = utcnow()


def change_password(
    session: Session,
    user: User,
    current: str,
    new: str,
    confirm: str,
    *,
    profile: str,
    keep_session_hash: str | None,
) -> None:
    """Change the own password; every other session of the user ends."""
    if not verify_password(user.password_hash, current, profile):
        audit.record_now(session, "password_change", user=user, method="password", success=False)
        raise ValidationFailed(
            _("The current password is wrong."),
            fields={"current_password": _("The current password is wrong.")},
        )
    _check_new_password(user, new, confirm)
    _set_password(session, user, new, profile)
    session.execute(
        sa.update(UserSession)
        .where(
            UserSession.user_id == user.id,
            UserSession.revoked_at.is_(None),
            UserSession.token_hash != (keep_session_hash or ""),
        )
        .values(revoked_at=utcnow())
    )
    audit.record(session, "password_change", user=user, method="password")
    session.commit()


def request_password_reset(
    session: Session, email: str, lifetime: dt.timedelta
) -> tuple[User, str] | None:
    """A reset link secret for an active person with a local password, else None (the
    caller answers the same either way, so accounts cannot be probed)."""
    user = find_user(session, email)
    if user is None or not user.is_active or user.kind != "person":
        audit.record_now(session, "password_reset_request", email=email[:254], success=False)
        return None
    secret = new_secret()
    now = utcnow()
    session.add(
        PasswordReset(
            user_id=user.id, token_hash=digest(secret), created_at=now, expires_at=now + lifetime
        )
    )
    audit.record(session, "password_reset_request", user=user)
    session.commit()
    return user, secret


def valid_reset(session: Session, secret: str) -> PasswordReset | None:
    reset = session.scalars(
        sa.select(PasswordReset).where(PasswordReset.token_hash == digest(secret))
    ).first()
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        return None
    if not reset.user.is_active:
        return None
    return reset


def reset_password(
    session: Session, reset: PasswordReset, new: str, confirm: str, *, profile: str
) -> User:
    """Set a new password from a reset link; the link is used up and every session ends."""
    user = reset.user
    _check_new_password(user, new, confirm)
    _set_password(session, user, new, profile)
    now = utcnow()
    reset.used_at = now
    session.execute(
        sa.update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    session.execute(
        sa.update(UserSession)
        .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    audit.record(session, "password_reset", user=user, method="password")
    session.commit()
    return user


# --- TOTP second factor ------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)


def _code_ok(secret: str, code: str) -> bool:
    digits = "".join(ch for ch in code if ch.isdigit())
    return len(digits) == 6 and pyotp.TOTP(secret).verify(digits, valid_window=1)


def enable_totp(session: Session, user: User, secret: str, code: str) -> None:
    """Turn on the second factor once the user proves their app shows the right code."""
    if not _code_ok(secret, code):
        raise ValidationFailed(
            _("The code is not valid."), fields={"code": _("Enter the current 6-digit code.")}
        )
    user.totp_secret_encrypted = encrypt(secret)
    user.totp_enabled = True
    audit.record(session, "totp_enabled", user=user, method="totp")
    session.commit()


def disable_totp(session: Session, user: User) -> None:
    if user.organization.require_totp:
        raise ValidationFailed(_("Your organisation requires a second factor."))
    user.totp_secret_encrypted = None
    user.totp_enabled = False
    audit.record(session, "totp_disabled", user=user, method="totp")
    session.commit()


def verify_totp(session: Session, user: User, code: str) -> bool:
    ok = bool(
        user.totp_enabled
        and user.totp_secret_encrypted
        and _code_ok(decrypt(user.totp_secret_encrypted), code)
    )
    audit.record_now(session, "login", user=user, method="totp", success=ok)
    return ok
