"""REST API of the telephone systems (CTI): POST /api/v1/cti/events and call logging.

The telephone system posts call events with a client-credentials token (scope `cti`); the
agent's screen pop leaves after the commit. Agents read their calls and log a finished one
on a case with their own session or token.
"""

from __future__ import annotations

from typing import Annotated, Any

from flask import Response, current_app
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field

from auth.scopes import Scope
from portal.api import endpoint, json_response
from portal.db import get_session
from portal.realtime import send_to_user
from shared_records import telephony
from shared_records.cti_schemas import CallLog, CtiEvent
from shared_records.serializers import entry_json

TAG_CTI = "telephony"


class CallMatchOut(BaseModel):
    customer_id: int
    name: str
    contact_ids: list[int]
    open_case_ids: list[int]


class CallOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    call_id: str
    number: str
    state: str
    agent_user_id: int
    duration_seconds: int | None
    matches: list[CallMatchOut]


class CallList(BaseModel):
    items: list[CallOut]


class RecentCallsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=50)] = 10


def screen_pop_payload(outcome: telephony.CallOutcome) -> dict[str, Any]:
    return outcome.as_json()


@endpoint(
    "/cti/events",
    "POST",
    scope=Scope.CTI,
    summary="A telephone-system call event (ringing, answered, ended); ringing pops the "
    "caller on the agent's screen",
    tag=TAG_CTI,
    body=CtiEvent,
    responses={200: CallOut},
)
def cti_event(body: CtiEvent) -> Response:
    outcome = telephony.handle_event(get_session(), current_user, body)
    payload = outcome.as_json()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if outcome.pop_to is not None:
        send_to_user(app, outcome.pop_to, "screen_pop", payload)
    elif outcome.update_to is not None:
        send_to_user(app, outcome.update_to, "call_update", payload)
    return json_response(payload)


@endpoint(
    "/calls",
    "GET",
    scope=Scope.CASES_READ,
    summary="The caller's own recent calls, newest first",
    tag=TAG_CTI,
    query=RecentCallsQuery,
    responses={200: CallList},
)
def recent_calls(query: RecentCallsQuery) -> Response:
    session = get_session()
    calls = telephony.recent_calls(session, current_user, query.limit)
    return json_response(
        {
            "items": [
                telephony.call_json(c, telephony.matches_of(session, current_user, c))
                for c in calls
            ]
        }
    )


@endpoint(
    "/calls/<int:call_pk>",
    "GET",
    scope=Scope.CASES_READ,
    summary="One of the caller's calls with the customers it matched",
    tag=TAG_CTI,
    responses={200: CallOut},
)
def get_call(call_pk: int) -> Response:
    session = get_session()
    call = telephony.get_call(session, current_user, call_pk)
    return json_response(
        telephony.call_json(call, telephony.matches_of(session, current_user, call))
    )


@endpoint(
    "/calls/<int:call_pk>/log",
    "POST",
    scope=Scope.CASES_WRITE,
    summary="Log the call as a phone interaction on a case (or on a new case)",
    tag=TAG_CTI,
    body=CallLog,
    responses={201: None},
)
def log_call(call_pk: int, body: CallLog) -> Response:
    entry = telephony.log_call(get_session(), current_user, call_pk, body)
    return json_response(entry_json(entry), status=201)
