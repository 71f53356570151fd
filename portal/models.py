"""Imports every domain's models so that Alembic and the app see one complete metadata."""

from auth.models import (
    ApiClient,
    ApiToken,
    AuthEvent,
    IdentityProvider,
    OAuthToken,
    PasswordReset,
    SsoDomain,
    UserIdentity,
    UserSession,
)
from partners.models import Organization, Partnership, User
from portal.db import Base
from shared_records.models import (
    Case,
    CaseNumberCounter,
    CaseShare,
    Contact,
    Customer,
    EmailAddress,
    PhoneNumber,
    TimelineAudience,
    TimelineEntry,
)

metadata = Base.metadata

__all__ = [
    "ApiClient",
    "ApiToken",
    "AuthEvent",
    "Case",
    "CaseNumberCounter",
    "CaseShare",
    "Contact",
    "Customer",
    "EmailAddress",
    "IdentityProvider",
    "OAuthToken",
    "Organization",
    "Partnership",
    "PasswordReset",
    "PhoneNumber",
    "SsoDomain",
    "TimelineAudience",
    "TimelineEntry",
    "User",
    "UserIdentity",
    "UserSession",
    "metadata",
]
