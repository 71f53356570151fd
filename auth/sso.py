"""Single sign-on service (stub; being built): home-realm discovery and RP-initiated logout."""

from __future__ import annotations

from sqlalchemy.orm import Session

from auth.models import IdentityProvider, UserSession


def provider_for_email(session: Session, email: str) -> IdentityProvider | None:
    """The enabled provider of the organisation the email's domain belongs to, if any."""
    return None


def logout_redirect(
    session: Session, user_session: UserSession, post_logout_url: str
) -> str | None:
    """The provider's end-session URL for an SSO session (RP-initiated logout), if any."""
    return None
