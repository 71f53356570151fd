"""REST API of customer merges and the CSV import of customers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from flask import Response, url_for
from flask_babel import gettext as _
from flask_login import current_user
from pydantic import Field, StringConstraints

from auth.scopes import Scope
from portal.api import endpoint, json_response
from portal.db import get_session
from portal.errors import ValidationFailed
from shared_records import imports, merge, policy
from shared_records.schemas import CustomerOut, Id, Request
from shared_records.schemas import Response as ResponseModel
from shared_records.serializers import customer_json

TAG = "customers"


class MergeRequest(Request):
    merged_id: Annotated[Id, Field(description="the customer folded into the survivor")]


class MovedOut(ResponseModel):
    cases: int = Field(description="cases that moved, of those the caller's organisation sees")
    timeline_entries: int
    shares: int
    contacts: int
    phones: int
    phones_duplicate: int = Field(description="numbers the survivor already had (dropped)")
    emails: int
    emails_duplicate: int
    consents: int
    address: bool = Field(description="the survivor had no address and took the merged one's")


class MergeOut(ResponseModel):
    id: int
    survivor_id: int
    merged_id: int
    merged_name: str
    merged_by_user_id: int | None
    merged_at: str
    moved: MovedOut


class MergeResultOut(ResponseModel):
    survivor: CustomerOut
    merge: MergeOut


class CountsOut(ResponseModel):
    cases: int
    timeline_entries: int
    shares: int
    contacts: int
    phones: int
    emails: int
    consents: int


class MergePreviewOut(ResponseModel):
    survivor: CustomerOut
    merged: CustomerOut
    survivor_counts: CountsOut
    merged_counts: CountsOut
    duplicate_phones: list[str]
    duplicate_emails: list[str]


class ImportRequest(Request):
    csv: Annotated[
        str,
        StringConstraints(min_length=1, max_length=imports.MAX_CSV_BYTES),
        Field(description="the CSV text: header row, then one customer per row"),
    ]
    dry_run: Annotated[bool, Field(description="only preview (the default)")] = True
    decisions: Annotated[
        dict[
            Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,5}$")],
            Literal["create", "skip"],
        ],
        Field(max_length=imports.MAX_ROWS, description='row number -> "create" or "skip"'),
    ] = {}


class ImportPreviewOut(ResponseModel):
    dry_run: bool
    delimiter: str
    ignored_columns: list[str]
    summary: dict[str, int]
    rows: list[dict[str, Any]]


class ImportResultOut(ResponseModel):
    dry_run: bool
    created: list[dict[str, Any]]
    skipped: list[int]
    summary: dict[str, int]


def merged_pointer(customer_id: int, survivor: policy.CustomerView, *, status: int) -> Response:
    """The answer for a merged customer's id: where it lives on (`Location`, `merged_into`)."""
    survivor_id = survivor.customer.id
    response = json_response(
        {
            "error": {
                "code": "merged",
                "message": _(
                    "Customer %(id)s was merged into customer %(survivor)s.",
                    id=customer_id,
                    survivor=survivor_id,
                ),
                "merged_into": survivor_id,
            }
        },
        status=status,
    )
    response.headers["Location"] = url_for(
        "api.shared_records_get_customer", customer_id=survivor_id
    )
    return response


@endpoint(
    "/customers/<int:customer_id>/merge/preview",
    "POST",
    scope=Scope.CUSTOMERS_WRITE,
    summary="What merging another customer into this one would move (writes nothing)",
    tag=TAG,
    body=MergeRequest,
    responses={200: MergePreviewOut},
)
def merge_preview(customer_id: int, body: MergeRequest) -> Response:
    result = merge.preview(get_session(), current_user, customer_id, body.merged_id)
    return json_response(
        {
            "survivor": customer_json(result.survivor.customer, result.survivor.contact_details),
            "merged": customer_json(result.merged.customer, result.merged.contact_details),
            "survivor_counts": result.survivor_counts.as_json(),
            "merged_counts": result.merged_counts.as_json(),
            "duplicate_phones": result.duplicate_phones,
            "duplicate_emails": result.duplicate_emails,
        }
    )


@endpoint(
    "/customers/<int:customer_id>/merge",
    "POST",
    scope=Scope.CUSTOMERS_WRITE,
    summary="Merge another customer into this one (owner organisation's admins only)",
    tag=TAG,
    body=MergeRequest,
    responses={200: MergeResultOut, 409: None},
)
def merge_customer(customer_id: int, body: MergeRequest) -> Response:
    session = get_session()
    record = merge.merge_customers(session, current_user, customer_id, body.merged_id)
    view = policy.get_visible_customer(session, current_user, customer_id)
    return json_response(
        {
            "survivor": customer_json(view.customer, view.contact_details),
            "merge": merge.merge_json(record),
        }
    )


@endpoint(
    "/customers/import",
    "POST",
    scope=Scope.CUSTOMERS_WRITE,
    summary="Import customers from CSV: preview (dry_run) or create in one transaction",
    tag=TAG,
    body=ImportRequest,
    responses={200: ImportPreviewOut, 201: ImportResultOut, 413: None},
)
def import_customers(body: ImportRequest) -> Response:
    session = get_session()
    try:
        decisions = {int(row): decision for row, decision in body.decisions.items()}
    except ValueError:  # pragma: no cover - the pattern admits digits only
        raise ValidationFailed(_("Some values are not valid.")) from None
    if body.dry_run:
        checked = imports.preview(session, current_user, body.csv, decisions)
        return json_response({"dry_run": True, **checked.as_json()})
    _checked, result = imports.run_import(session, current_user, body.csv, decisions)
    return json_response({"dry_run": False, **result.as_json()}, status=201)
