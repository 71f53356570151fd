"""REST API of the search: GET /api/v1/search (see shared_records/search.py)."""

from __future__ import annotations

from typing import Annotated

from flask import Response, jsonify
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from auth.scopes import Scope
from portal.api import endpoint
from portal.db import get_session
from shared_records import search

TAG_SEARCH = "search"


class SearchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=search.MAX_QUERY_LENGTH),
        Field(description="name, phone number, email address, case number, city or postal code"),
    ]
    limit: Annotated[
        int,
        Field(
            ge=1,
            le=search.MAX_LIMIT,
            description=f"hits per group, 1 to {search.MAX_LIMIT}, default {search.DEFAULT_LIMIT}",
        ),
    ] = search.DEFAULT_LIMIT


class SearchHitOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int = Field(description="the customer's, contact's or case's id (by kind)")
    kind: str = Field(description="customer | contact | case")
    title: str
    customer_id: int
    case_id: int | None = None
    score: float = Field(description="0 to 100; hits are ordered by it")
    match: str = Field(description="name | sound | details | typo | phone | email | number")
    city: str | None = Field(
        None, description="customers only; null unless the caller sees contact details"
    )
    customer_name: str | None = Field(None, description="contacts and cases: their customer")
    number: str | None = Field(None, description="cases only")
    subject: str | None = Field(None, description="cases only")
    status: str | None = Field(None, description="cases only")


class SearchOut(BaseModel):
    query: str
    customers: list[SearchHitOut]
    contacts: list[SearchHitOut]
    cases: list[SearchHitOut]


@endpoint(
    "/search",
    "GET",
    scope=Scope.CUSTOMERS_READ,
    summary="Search the customers, contacts and cases the caller may see",
    tag=TAG_SEARCH,
    query=SearchQuery,
    responses={200: SearchOut},
)
def search_records(query: SearchQuery) -> Response:
    results = search.search(get_session(), current_user, query.q, limit=query.limit)
    return jsonify(results.as_dict())
