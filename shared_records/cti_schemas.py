"""Request shapes of the telephony API: telephone-system events and call logging."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from shared_records.schemas import Id, Request, ShortText

CallId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class CtiEvent(Request):
    """One event of a call, as the telephone system reports it."""

    call_id: CallId
    event: Literal["ringing", "answered", "ended"]
    from_: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)] = (
        Field(alias="from")
    )
    to: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    agent: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
    # ISO 8601 text; strict mode elsewhere, but a timestamp always arrives as text.
    at: Annotated[dt.datetime, Field(strict=False)] | None = None

    @model_validator(mode="after")
    def _aware(self) -> CtiEvent:
        if self.at is not None and self.at.tzinfo is None:
            # Telephone systems that send local time without an offset are read as UTC.
            self.at = self.at.replace(tzinfo=dt.UTC)
        return self


class NewCallCase(Request):
    customer_id: Id
    subject: ShortText


class CallLog(Request):
    """Where to log a finished call: an existing case, or a new case for the caller."""

    case_id: Id | None = None
    new_case: NewCallCase | None = None
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)] = ""
    audience: Literal["internal", "shared"] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> CallLog:
        if (self.case_id is None) == (self.new_case is None):
            raise ValueError("give either case_id or new_case")
        return self
