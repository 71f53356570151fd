"""Random secrets for sessions and API tokens, and the hashes they are stored under."""

from __future__ import annotations

import hashlib
import secrets

API_TOKEN_PREFIX = "wk_"  # noqa: S105 - a public marker, not a secret


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 of a high-entropy secret: enough, since these are never guessable passwords."""
    return hashlib.sha256(secret.encode()).hexdigest()
