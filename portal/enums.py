"""Closed vocabularies shared by models, policy, API and UI (stored as their string values)."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class OrganizationKind(StrEnum):
    MANUFACTURER = "manufacturer"
    DEALER = "dealer"
    SUPPLIER = "supplier"
    AGENCY = "agency"


class PartnerRole(StrEnum):
    DEALER = "dealer"
    SUPPLIER = "supplier"
    AGENCY = "agency"


class UserRole(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    VIEWER = "viewer"


class CustomerKind(StrEnum):
    PERSON = "person"
    COMPANY = "company"


class CaseKind(StrEnum):
    INQUIRY = "inquiry"
    SERVICE = "service"
    COMPLAINT = "complaint"
    WARRANTY = "warranty"
    SALES = "sales"


class CaseStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING = "waiting"
    RESOLVED = "resolved"
    CLOSED = "closed"


class CasePriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class EntryKind(StrEnum):
    NOTE = "note"
    INTERACTION = "interaction"
    CHANGE = "change"


class Channel(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    LETTER = "letter"
    WEB = "web"
    VISIT = "visit"
    CHAT = "chat"
    FIELD_SERVICE = "field_service"


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class AudienceKind(StrEnum):
    INTERNAL = "internal"
    SHARED = "shared"
    ORGANIZATIONS = "organizations"


class Access(IntEnum):
    """What an organisation or user may do with a case; ordered so that min/max compose."""

    NONE = 0
    READ = 1
    COMMENT = 2
    EDIT = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Access:
        return cls[value.upper()]


SHARE_ACCESS_VALUES = ("read", "comment", "edit")


class ConsentChannel(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"
    POST = "post"
    MESSENGER = "messenger"


class ConsentPurpose(StrEnum):
    MARKETING = "marketing"
    SERVICE = "service"
    SURVEYS = "surveys"
    NEWSLETTER = "newsletter"
