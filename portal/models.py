"""Imports every domain's models so that Alembic and the app see one complete metadata."""

from auth.models import ApiToken, UserSession
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
    "ApiToken",
    "Case",
    "CaseNumberCounter",
    "CaseShare",
    "Contact",
    "Customer",
    "EmailAddress",
    "Organization",
    "Partnership",
    "PhoneNumber",
    "TimelineAudience",
    "TimelineEntry",
    "User",
    "UserSession",
    "metadata",
]
