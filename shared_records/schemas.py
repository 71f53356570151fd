"""Request and response shapes of the shared-records API (pydantic), also used by the UI forms.

Requests are strict: unknown fields, wrong types and out-of-range values are refused before
anything is written. The same models feed the generated OpenAPI document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from portal.enums import (
    CaseKind,
    CasePriority,
    CaseStatus,
    Channel,
    ConsentChannel,
    ConsentPurpose,
    CustomerKind,
    Direction,
)

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=20000)]
Id = Annotated[int, Field(ge=1, le=2**62)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, use_enum_values=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        # A field is either left out or given a value; an explicit null is a client bug that
        # would otherwise silently mean "no change".
        if isinstance(data, dict):
            nulls = [key for key, value in data.items() if value is None]
            if nulls:
                raise ValueError(f"null is not allowed for: {', '.join(sorted(nulls))}")
        return data


class ContactIn(Request):
    name: ShortText
    position_title: OptionalText | None = None
    emails: Annotated[list[str], Field(max_length=10)] = []
    phones: Annotated[list[str], Field(max_length=10)] = []


class CustomerCreate(Request):
    name: ShortText
    kind: CustomerKind = CustomerKind.PERSON
    emails: Annotated[list[str], Field(max_length=10)] = []
    phones: Annotated[list[str], Field(max_length=10)] = []
    street: OptionalText | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = (
        None
    )
    city: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")] | None = None
    contacts: Annotated[list[ContactIn], Field(max_length=50)] = []


class CustomerPatch(Request):
    version: Id | None = None
    name: ShortText | None = None
    kind: CustomerKind | None = None
    emails: Annotated[list[str], Field(max_length=10)] | None = None
    phones: Annotated[list[str], Field(max_length=10)] | None = None
    street: OptionalText | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = (
        None
    )
    city: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")] | None = None


class CaseCreate(Request):
    customer_id: Id
    subject: ShortText
    description: LongText = ""
    kind: CaseKind = CaseKind.INQUIRY
    status: CaseStatus = CaseStatus.NEW
    priority: CasePriority = CasePriority.NORMAL


class CasePatch(Request):
    """Changes to a case. Owner, handling organisation and shares have their own endpoints."""

    version: Id
    subject: ShortText | None = None
    description: LongText | None = None
    kind: CaseKind | None = None
    status: CaseStatus | None = None
    priority: CasePriority | None = None


class EntryCreate(Request):
    kind: Literal["note", "interaction"] = "note"
    channel: Channel | None = None
    direction: Direction | None = None
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20000)]
    audience: (
        Literal["internal", "shared"] | Annotated[list[Id], Field(min_length=1, max_length=50)]
    )

    @model_validator(mode="after")
    def _interaction_needs_channel(self) -> EntryCreate:
        if self.kind == "interaction" and (self.channel is None or self.direction is None):
            raise ValueError("an interaction needs a channel and a direction")
        if self.kind == "note" and (self.channel is not None or self.direction is not None):
            raise ValueError("a note has no channel or direction")
        return self


class ShareCreate(Request):
    organization_id: Id
    access: Literal["read", "comment", "edit"] = "read"
    include_contact_details: bool = False


class Handover(Request):
    user_id: Id | None = None
    organization_id: Id | None = None
    message: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""

    @model_validator(mode="after")
    def _one_target(self) -> Handover:
        if (self.user_id is None) == (self.organization_id is None):
            raise ValueError("give exactly one of user_id and organization_id")
        return self


# --- responses (documentation of the fixed JSON shapes) -----------------------------------


class Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class OrganizationOut(Response):
    id: int
    name: str
    slug: str
    kind: str


class ContactOut(Response):
    id: int
    name: str
    position_title: str | None = None
    emails: list[str] | None = Field(None, description="absent when contact details are hidden")
    phones: list[str] | None = Field(None, description="absent when contact details are hidden")


class CustomerOut(Response):
    id: int
    name: str
    kind: str
    emails: list[str] | None = Field(None, description="absent when contact details are hidden")
    phones: list[str] | None = Field(None, description="E.164; absent when hidden")
    street: str | None = Field(None, description="absent when contact details are hidden")
    postal_code: str | None = Field(None, description="absent when contact details are hidden")
    city: str | None
    country: str | None
    owner_organization_id: int
    contact_details_visible: bool
    version: int
    contacts: list[ContactOut]


class VisibilityReasonOut(Response):
    kind: Literal["owner", "handler", "share"]
    access: Literal["read", "comment", "edit"]
    since: str
    shared_by_organization_id: int | None = None
    shared_by_user_id: int | None = None


class CaseOut(Response):
    id: int
    number: str
    customer_id: int
    subject: str
    description: str
    kind: str
    status: str
    priority: str
    owner_organization_id: int
    handling_organization_id: int
    handling_user_id: int | None
    claimed_at: str | None
    version: int
    created_at: str
    updated_at: str
    last_activity_at: str
    access: Literal["read", "comment", "edit"]
    visibility_reason: list[VisibilityReasonOut]


class CasePage(Response):
    items: list[CaseOut]
    next_cursor: str | None


class CustomerPage(Response):
    items: list[CustomerOut]
    next_cursor: str | None


class EntryOut(Response):
    id: int
    kind: Literal["note", "interaction", "change"]
    channel: str | None
    direction: str | None
    body: str
    audience: Literal["internal", "shared"] | list[int]
    author_user_id: int | None
    organization_id: int
    created_at: str
    field: str | None = None
    old_value: str | None = None
    new_value: str | None = None


class EntryList(Response):
    items: list[EntryOut]


class ShareOut(Response):
    organization_id: int
    access: Literal["read", "comment", "edit"]
    include_contact_details: bool
    shared_by_user_id: int | None
    created_at: str


class ShareList(Response):
    items: list[ShareOut]


class ActivityOut(Response):
    id: int
    type: str
    case_id: int
    organization_id: int
    actor_user_id: int | None
    at: str
    summary: str
    data: dict[str, Any]


class ActivityPage(Response):
    items: list[ActivityOut]
    last_id: int


# --- intake: duplicate check, business cards, consents ------------------------------------


class ConsentIn(Request):
    channel: ConsentChannel
    purpose: ConsentPurpose
    granted: bool = True


class ConsentsCreate(Request):
    """Contact permissions given (or withdrawn) by a customer, or by one of its contacts."""

    contact_id: Id | None = None
    items: Annotated[list[ConsentIn], Field(min_length=1, max_length=20)]


class CaptureCreate(Request):
    """A customer captured on the spot (short form or business card), with its consents.

    With a company, the company becomes the customer and the person one of its contacts
    (phones and emails are the person's); without one, the person is the customer."""

    name: ShortText
    company: OptionalText | None = None
    position_title: OptionalText | None = None
    emails: Annotated[list[str], Field(max_length=10)] = []
    phones: Annotated[list[str], Field(max_length=10)] = []
    street: OptionalText | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] | None = (
        None
    )
    city: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$")] | None = None
    consents: Annotated[list[ConsentIn], Field(max_length=20)] = []


class DuplicateCandidateOut(Response):
    customer_id: int
    name: str
    city: str | None
    reasons: list[Literal["phone", "email", "name_postal_code", "name_city"]]
    score: float = Field(description="0 to 100")


class DuplicateReportOut(Response):
    candidates: list[DuplicateCandidateOut] = Field(
        description="customers the caller may see, with their contact details, best first"
    )
    elsewhere_in_network: bool = Field(
        description="a likely duplicate exists in the value chain that the caller may not see"
    )
    message: str | None


class CustomerCreatedOut(CustomerOut):
    possible_duplicates: DuplicateReportOut


class ContactCreatedOut(ContactOut):
    possible_duplicates: DuplicateReportOut


class BusinessCardOut(Response):
    name: str
    company: str | None
    position_title: str | None
    phones: list[str]
    emails: list[str]
    street: str | None
    postal_code: str | None
    city: str | None
    country: str | None


class VcardOut(Response):
    card: BusinessCardOut
    cards: int = Field(description="cards in the file; only the first is read")
    notice: str | None
    possible_duplicates: DuplicateReportOut


class ConsentOut(Response):
    id: int
    customer_id: int
    contact_id: int | None
    channel: str
    purpose: str
    granted: bool
    source: str
    recorded_at: str
    recorded_by_user_id: int | None
    recorded_by_name: str | None
    organization_id: int


class ConsentList(Response):
    items: list[ConsentOut] = Field(description="newest first")
    in_force: list[ConsentOut] = Field(description="the newest row per contact, channel, purpose")
