"""Password hashing with argon2id (argon2-cffi)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _

MIN_PASSWORD_LENGTH = 10


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
    if not password_hash:
        hasher.hash(password)
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return str(_("at least %(count)d characters", count=MIN_PASSWORD_LENGTH))
    return None
