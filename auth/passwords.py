"""Passwords: argon2id hashing (argon2-cffi) and the rules for new passwords (OWASP ASVS 5:
at least 8 characters, up to 128, no composition rules, no common or personal passwords)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _

from auth.common_passwords import is_common

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


@cache
def _hasher(profile: str) -> PasswordHasher:
    if profile == "fast":
        # Tests only: the same algorithm with the smallest parameters argon2 allows.
        return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    return PasswordHasher()  # argon2id, RFC 9106 low-memory profile


def hash_password(password: str, profile: str = "default") -> str:
    return _hasher(profile).hash(password)


def verify_password(password_hash: str | None, password: str, profile: str = "default") -> bool:
    """True when `password` matches; also spends the hashing time when there is no hash, so
    unknown and known accounts take about as long to refuse."""
    hasher = _hasher(profile)
    if len(password) > 4 * MAX_PASSWORD_LENGTH:
        return False
    if not password_hash:
        hasher.hash(password)
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why a new password is refused (a readable, translated reason), or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return str(_("at least %(count)d characters", count=MIN_PASSWORD_LENGTH))
    if len(password) > MAX_PASSWORD_LENGTH:
        return str(_("at most %(count)d characters", count=MAX_PASSWORD_LENGTH))
    if is_common(password):
        return str(_("this password is too common"))
    lowered = password.lower()
    personal = [email.lower(), email.lower().partition("@")[0], *name.lower().split()]
    if any(part and len(part) >= 4 and lowered == part for part in personal):
        return str(_("the password must not be your name or email address"))
    return None
