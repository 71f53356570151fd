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
    Activity,
    Call,
    Case,
    CaseNumberCounter,
    CaseShare,
    CaseVisibility,
    Consent,
    Contact,
    Customer,
    CustomerMerge,
    EmailAddress,
    Notification,
    PhoneNumber,
    SearchDocument,
    TimelineAudience,
    TimelineEntry,
)

metadata = Base.metadata

__all__ = [
    "Activity",
    "ApiClient",
    "ApiToken",
    "AuthEvent",
    "Call",
    "Case",
    "CaseNumberCounter",
    "CaseShare",
    "CaseVisibility",
    "Consent",
    "Contact",
    "Customer",
    "CustomerMerge",
    "EmailAddress",
    "IdentityProvider",
    "Notification",
    "OAuthToken",
    "Organization",
    "Partnership",
    "PasswordReset",
    "PhoneNumber",
    "SearchDocument",
    "SsoDomain",
    "TimelineAudience",
    "TimelineEntry",
    "User",
    "UserIdentity",
    "UserSession",
    "metadata",
]
