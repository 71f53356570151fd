"""REST API of customer intake: duplicate check, vCard capture and consents."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from auth.scopes import Scope
from portal.api import endpoint, json_response
from portal.db import get_session
from portal.errors import BadRequest
from shared_records import consents, duplicates, vcard
from shared_records.models import Consent
from shared_records.schemas import (
    ConsentList,
    ConsentsCreate,
    CustomerCreate,
    DuplicateReportOut,
    VcardOut,
)

TAG = "customers"


@endpoint(
    "/customers/duplicates",
    "POST",
    scope=Scope.CUSTOMERS_READ,
    summary="Customers a would-be customer may duplicate (only those the caller may see)",
    tag=TAG,
    body=CustomerCreate,
    responses={200: DuplicateReportOut},
)
def check_duplicates(body: CustomerCreate) -> Response:
    report = duplicates.for_customer(get_session(), current_user, body)
    return json_response(report.as_json())


def uploaded_file_bytes(field: str = "file") -> bytes:
    """The bytes of an uploaded file, read at most one byte beyond the vCard limit.

    Raises BadRequest without a file, VcardTooLarge for a file or body above the limits."""
    try:
        upload = request.files.get(field)
    except RequestEntityTooLarge:
        raise _too_large() from None
    if upload is None or not upload.filename:
        raise BadRequest(
            _("Send the vCard as a multipart upload in the field “file”."),
            code="file_missing",
            fields={field: _("No file was uploaded.")},
        )
    data = upload.stream.read(vcard.MAX_VCARD_BYTES + 1)
    if len(data) > vcard.MAX_VCARD_BYTES:
        raise _too_large()
    return data


def _too_large() -> vcard.VcardTooLarge:
    return vcard.VcardTooLarge(
        _("The file is too large (at most %(size)s KB).", size=vcard.MAX_VCARD_BYTES // 1024)
    )


@endpoint(
    "/customers/vcard",
    "POST",
    scope=Scope.CUSTOMERS_READ,
    summary=(
        "Read a business card (multipart field `file`, .vcf): the would-be customer and its "
        "duplicate check; nothing is stored"
    ),
    tag=TAG,
    responses={200: VcardOut, 413: None, 422: None},
)
def read_vcard() -> Response:
    card = vcard.parse_vcard(uploaded_file_bytes())
    report = duplicates.find_duplicates(
        get_session(),
        current_user,
        name=card.company or card.name,
        phones=card.phones,
        emails=card.emails,
        postal_code=card.postal_code or None,
        city=card.city or None,
    )
    return json_response(
        {
            "card": card.as_json(),
            "cards": card.cards,
            "notice": card.notice,
            "possible_duplicates": report.as_json(),
        }
    )


def consent_json(row: Consent) -> dict[str, Any]:
    return {
        "id": row.id,
        "customer_id": row.customer_id,
        "contact_id": row.contact_id,
        "channel": row.channel,
        "purpose": row.purpose,
        "granted": row.granted,
        "source": row.source,
        "recorded_at": row.recorded_at.isoformat(),
        "recorded_by_user_id": row.recorded_by_user_id,
        "recorded_by_name": row.recorded_by.name if row.recorded_by else None,
        "organization_id": row.organization_id,
    }


@endpoint(
    "/customers/<int:customer_id>/consents",
    "GET",
    scope=Scope.CUSTOMERS_READ,
    summary="Contact permissions the customer gave the caller's organisation",
    tag=TAG,
    responses={200: ConsentList},
)
def list_consents(customer_id: int) -> Response:
    rows = consents.consents_of(get_session(), current_user, customer_id)
    return json_response(
        {
            "items": [consent_json(r) for r in rows],
            "in_force": [consent_json(r) for r in consents.in_force(rows)],
        }
    )


@endpoint(
    "/customers/<int:customer_id>/consents",
    "POST",
    scope=Scope.CUSTOMERS_WRITE,
    summary="Record contact permissions given (or withdrawn) to the caller's organisation",
    tag=TAG,
    body=ConsentsCreate,
    responses={201: ConsentList},
)
def add_consents(customer_id: int, body: ConsentsCreate) -> Response:
    session = get_session()
    consents.record_consents(
        session,
        current_user,
        customer_id,
        body.items,
        source=consents.ConsentSource.API,
        contact_id=body.contact_id,
    )
    rows = consents.consents_of(session, current_user, customer_id)
    return json_response(
        {
            "items": [consent_json(r) for r in rows],
            "in_force": [consent_json(r) for r in consents.in_force(rows)],
        },
        status=201,
    )
