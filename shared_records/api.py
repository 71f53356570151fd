"""REST API v1 for customers, cases, timelines, shares and claims; thin over policy and
service."""

from __future__ import annotations

from typing import Annotated

from flask import Response
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field

from auth.scopes import Scope
from portal.api import (
    decode_cursor,
    decode_id_cursor,
    encode_cursor,
    encode_id_cursor,
    endpoint,
    json_response,
)
from portal.db import get_session
from portal.enums import CaseKind, CaseStatus
from shared_records import duplicates, feed, policy, queries, service
from shared_records.policy import InboxScope
from shared_records.schemas import (
    ActivityPage,
    CaseCreate,
    CaseOut,
    CasePage,
    CasePatch,
    ContactCreatedOut,
    ContactIn,
    CustomerCreate,
    CustomerCreatedOut,
    CustomerOut,
    CustomerPage,
    CustomerPatch,
    EntryCreate,
    EntryList,
    EntryOut,
    Handover,
    ShareCreate,
    ShareList,
    ShareOut,
)
from shared_records.serializers import (
    activity_json,
    case_json,
    customer_json,
    entry_json,
    share_json,
)
from shared_records.service import StaleVersion, claim_idle

TAG_CASES = "cases"
TAG_CUSTOMERS = "customers"


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=200, description="1 to 200, default 50")] = 50
    cursor: (
        Annotated[str, Field(max_length=200, description="next_cursor of the previous page")] | None
    ) = None
    q: Annotated[str, Field(max_length=200, description="text filter")] | None = None


class CaseListQuery(PageQuery):
    scope: Annotated[InboxScope, Field(description="all | mine | organization | shared")] = (
        InboxScope.ALL
    )
    status: CaseStatus | None = None
    kind: CaseKind | None = None
    owner_organization_id: Annotated[int, Field(ge=1)] | None = None
    handling_organization_id: Annotated[int, Field(ge=1)] | None = None
    customer_id: Annotated[int, Field(ge=1)] | None = None


def _stale(exc: StaleVersion) -> Response:
    current = exc.current
    record = (
        case_json(current)
        if isinstance(current, policy.CaseView)
        else customer_json(current.customer, current.contact_details)
    )
    return json_response(
        {"error": {"code": exc.code, "message": exc.message, "current": record}}, status=409
    )


# --- customers ---------------------------------------------------------------------------


@endpoint(
    "/customers",
    "GET",
    scope=Scope.CUSTOMERS_READ,
    summary="Customers the caller may see",
    tag=TAG_CUSTOMERS,
    query=PageQuery,
    responses={200: CustomerPage},
)
def list_customers(query: PageQuery) -> Response:
    after = decode_id_cursor(query.cursor) if query.cursor else None
    views, next_id = queries.customer_page(get_session(), current_user, query.q, query.limit, after)
    return json_response(
        {
            "items": [customer_json(v.customer, v.contact_details) for v in views],
            "next_cursor": encode_id_cursor(next_id) if next_id else None,
        }
    )


@endpoint(
    "/customers",
    "POST",
    scope=Scope.CUSTOMERS_WRITE,
    summary="Create a customer owned by the caller's organisation",
    tag=TAG_CUSTOMERS,
    body=CustomerCreate,
    responses={201: CustomerCreatedOut},
)
def create_customer(body: CustomerCreate) -> Response:
    """Creates even when duplicates are likely (a family may share a landline); the answer
    lists them in `possible_duplicates` (see POST /customers/duplicates)."""
    session = get_session()
    customer = service.create_customer(session, current_user, body)
    report = duplicates.for_customer(session, current_user, body, exclude_customer_id=customer.id)
    view = policy.get_visible_customer(session, current_user, customer.id)
    data = customer_json(view.customer, view.contact_details)
    data["possible_duplicates"] = report.as_json()
    return json_response(data, status=201)


@endpoint(
    "/customers/<int:customer_id>",
    "GET",
    scope=Scope.CUSTOMERS_READ,
    summary="One customer; contact details only where the policy allows",
    tag=TAG_CUSTOMERS,
    responses={200: CustomerOut, 301: None},
)
def get_customer(customer_id: int) -> Response:
    """A merged customer's id answers 301 with the survivor in `Location` and `merged_into`."""
    from shared_records import merge
    from shared_records.merge_api import merged_pointer

    session = get_session()
    survivor = merge.visible_survivor(session, current_user, customer_id)
    if survivor is not None:
        return merged_pointer(customer_id, survivor, status=301)
    view = policy.get_visible_customer(session, current_user, customer_id)
    return json_response(customer_json(view.customer, view.contact_details))


@endpoint(
    "/customers/<int:customer_id>",
    "PATCH",
    scope=Scope.CUSTOMERS_WRITE,
    summary="Change a customer (owner organisation only)",
    tag=TAG_CUSTOMERS,
    body=CustomerPatch,
    responses={200: CustomerOut, 409: None},
)
def patch_customer(customer_id: int, body: CustomerPatch) -> Response:
    """A merged customer is not changed: 409 `merged` names the survivor (`merged_into`)."""
    from shared_records import merge
    from shared_records.merge_api import merged_pointer

    survivor = merge.visible_survivor(get_session(), current_user, customer_id)
    if survivor is not None:
        return merged_pointer(customer_id, survivor, status=409)
    try:
        view = service.update_customer(get_session(), current_user, customer_id, body)
    except StaleVersion as exc:
        return _stale(exc)
    return json_response(customer_json(view.customer, view.contact_details))


@endpoint(
    "/customers/<int:customer_id>/contacts",
    "POST",
    scope=Scope.CUSTOMERS_WRITE,
    summary="Add a contact person to a company customer",
    tag=TAG_CUSTOMERS,
    body=ContactIn,
    responses={201: ContactCreatedOut},
)
def add_contact(customer_id: int, body: ContactIn) -> Response:
    """`possible_duplicates` lists other customers holding the contact's phones or emails."""
    session = get_session()
    contact = service.add_contact(session, current_user, customer_id, body)
    report = duplicates.for_contact(session, current_user, customer_id, body)
    view = policy.get_visible_customer(session, current_user, customer_id)
    created = next(
        c for c in customer_json(view.customer, True)["contacts"] if c["id"] == contact.id
    )
    created["possible_duplicates"] = report.as_json()
    return json_response(created, status=201)


# --- cases -------------------------------------------------------------------------------


@endpoint(
    "/cases",
    "GET",
    scope=Scope.CASES_READ,
    summary="Cases the caller may see, by last activity (keyset pages)",
    tag=TAG_CASES,
    query=CaseListQuery,
    responses={200: CasePage},
)
def list_cases(query: CaseListQuery) -> Response:
    after = decode_cursor(query.cursor) if query.cursor else None
    filters = queries.CaseFilters(
        scope=query.scope,
        status=query.status,
        kind=query.kind,
        owner_organization_id=query.owner_organization_id,
        handling_organization_id=query.handling_organization_id,
        customer_id=query.customer_id,
        q=query.q,
    )
    actor = current_user._get_current_object()  # read per row: the proxy costs
    views, next_key = queries.case_page(get_session(), actor, filters, query.limit, after)
    idle = claim_idle()
    return json_response(
        {
            "items": [case_json(v, idle) for v in views],
            "next_cursor": encode_cursor(*next_key) if next_key else None,
        }
    )


@endpoint(
    "/cases",
    "POST",
    scope=Scope.CASES_WRITE,
    summary="Open a case; the caller's organisation owns and handles it",
    tag=TAG_CASES,
    body=CaseCreate,
    responses={201: CaseOut},
)
def create_case(body: CaseCreate) -> Response:
    view = service.create_case(get_session(), current_user, body)
    return json_response(case_json(view), status=201)


@endpoint(
    "/cases/<int:case_id>",
    "GET",
    scope=Scope.CASES_READ,
    summary="One case, with what the caller may do and why they see it",
    tag=TAG_CASES,
    responses={200: CaseOut},
)
def get_case(case_id: int) -> Response:
    return json_response(case_json(policy.get_visible_case(get_session(), current_user, case_id)))


@endpoint(
    "/cases/<int:case_id>",
    "PATCH",
    scope=Scope.CASES_WRITE,
    summary="Change subject, description, kind, status or priority (needs the current version)",
    tag=TAG_CASES,
    body=CasePatch,
    responses={200: CaseOut, 409: None},
)
def patch_case(case_id: int, body: CasePatch) -> Response:
    try:
        view = service.update_case(get_session(), current_user, case_id, body)
    except StaleVersion as exc:
        return _stale(exc)
    return json_response(case_json(view))


@endpoint(
    "/cases/<int:case_id>/timeline",
    "GET",
    scope=Scope.CASES_READ,
    summary="The case timeline, filtered by audience",
    tag=TAG_CASES,
    responses={200: EntryList},
)
def list_timeline(case_id: int) -> Response:
    session = get_session()
    view = policy.get_visible_case(session, current_user, case_id)
    entries = session.scalars(policy.visible_entries(view)).all()
    return json_response({"items": [entry_json(e) for e in entries]})


@endpoint(
    "/cases/<int:case_id>/timeline",
    "POST",
    scope=Scope.CASES_WRITE,
    summary="Add a note or interaction for an audience",
    tag=TAG_CASES,
    body=EntryCreate,
    responses={201: EntryOut},
)
def add_timeline_entry(case_id: int, body: EntryCreate) -> Response:
    entry = service.add_entry(get_session(), current_user, case_id, body)
    return json_response(entry_json(entry), status=201)


@endpoint(
    "/cases/<int:case_id>/shares",
    "GET",
    scope=Scope.CASES_READ,
    summary="Shares of the case (partners see only their own)",
    tag=TAG_CASES,
    responses={200: ShareList},
)
def list_shares(case_id: int) -> Response:
    view = policy.get_visible_case(get_session(), current_user, case_id)
    return json_response({"items": [share_json(s) for s in policy.visible_shares(view)]})


@endpoint(
    "/cases/<int:case_id>/shares",
    "POST",
    scope=Scope.CASES_WRITE,
    summary="Share with an organisation of the value chain, or change its share",
    tag=TAG_CASES,
    body=ShareCreate,
    responses={200: ShareOut},
)
def create_share(case_id: int, body: ShareCreate) -> Response:
    share = service.share_case(get_session(), current_user, case_id, body)
    return json_response(share_json(share))


@endpoint(
    "/cases/<int:case_id>/shares/<int:organization_id>",
    "DELETE",
    scope=Scope.CASES_WRITE,
    summary="Revoke a share",
    tag=TAG_CASES,
    responses={204: None},
)
def delete_share(case_id: int, organization_id: int) -> Response:
    service.unshare_case(get_session(), current_user, case_id, organization_id)
    return Response(status=204)


@endpoint(
    "/cases/<int:case_id>/claim",
    "POST",
    scope=Scope.CASES_WRITE,
    summary="Claim the case: the caller handles it now (409 names the current holder)",
    tag=TAG_CASES,
    responses={200: CaseOut},
)
def claim(case_id: int) -> Response:
    return json_response(case_json(service.claim_case(get_session(), current_user, case_id)))


@endpoint(
    "/cases/<int:case_id>/claim/renew",
    "POST",
    scope=Scope.CASES_WRITE,
    summary="Keep the caller's claim alive (409 when the caller does not hold it)",
    tag=TAG_CASES,
    responses={200: CaseOut},
)
def renew(case_id: int) -> Response:
    return json_response(case_json(service.renew_claim(get_session(), current_user, case_id)))


@endpoint(
    "/cases/<int:case_id>/release",
    "POST",
    scope=Scope.CASES_WRITE,
    summary="Release the caller's claim",
    tag=TAG_CASES,
    responses={200: CaseOut},
)
def release(case_id: int) -> Response:
    return json_response(case_json(service.release_case(get_session(), current_user, case_id)))


@endpoint(
    "/cases/<int:case_id>/handover",
    "POST",
    scope=Scope.CASES_WRITE,
    summary="Hand the case over to a user or organisation, with a message",
    tag=TAG_CASES,
    body=Handover,
    responses={200: CaseOut},
)
def handover(case_id: int, body: Handover) -> Response:
    case, view = service.hand_over_case(get_session(), current_user, case_id, body)
    if view is None:
        return json_response(
            {
                "id": case.id,
                "number": case.number,
                "handling_organization_id": case.handling_organization_id,
                "handling_user_id": case.handling_user_id,
                "visible": False,
            }
        )
    return json_response(case_json(view))


class FeedQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after: Annotated[int, Field(ge=0, le=2**62, description="the last id the client has")] = 0
    limit: Annotated[int, Field(ge=1, le=500, description="1 to 500, default 100")] = 100


@endpoint(
    "/feed",
    "GET",
    scope=Scope.CASES_READ,
    summary="Activities the caller may see after an id, in id order (replay after a gap)",
    tag="feed",
    query=FeedQuery,
    responses={200: ActivityPage},
)
def activity_feed(query: FeedQuery) -> Response:
    session = get_session()
    items = feed.activities_after(session, current_user, query.after, query.limit)
    last_id = items[-1].id if items else query.after
    return json_response({"items": [activity_json(a) for a in items], "last_id": last_id})


class RecentQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=100, description="1 to 100, default 20")] = 20


@endpoint(
    "/feed/recent",
    "GET",
    scope=Scope.CASES_READ,
    summary="The newest activities the caller may see, newest first",
    tag="feed",
    query=RecentQuery,
    responses={200: ActivityPage},
)
def recent_feed(query: RecentQuery) -> Response:
    items = feed.recent_activities(get_session(), current_user, query.limit)
    last_id = items[0].id if items else 0
    return json_response({"items": [activity_json(a) for a in items], "last_id": last_id})
