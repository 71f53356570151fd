"""API clients with OAuth 2.0 client credentials (stub; being built)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from partners.models import User


def user_for_oauth_token(session: Session, token: str) -> tuple[User, frozenset[str]] | None:
    """The service user and scopes of a live client-credentials token, or None."""
    return None
