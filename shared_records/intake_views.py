"""Customer intake pages: duplicate warnings, capture on the phone (vCard or short form).

`/capture` is laid out for a phone first: a business card (`.vcf`) or a short form fills in
the would-be customer, the duplicate check runs before anything is stored, and the contact
permissions given on the spot are stored with the customer in one transaction (or, with
"use this one", on the customer that already exists).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from pydantic import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from portal import ui
from portal.db import get_session
from portal.enums import ConsentChannel, ConsentPurpose
from portal.errors import PortalError, ValidationFailed
from portal.ui import gettext as _
from shared_records import consents, duplicates, policy, vcard
from shared_records.duplicates import DuplicateReport
from shared_records.schemas import CaptureCreate, ConsentIn

bp = Blueprint("intake", __name__)

CHANNEL_LABELS = {
    ConsentChannel.EMAIL: _l("Email"),
    ConsentChannel.PHONE: _l("Phone"),
    ConsentChannel.SMS: _l("SMS"),
    ConsentChannel.POST: _l("Post"),
    ConsentChannel.MESSENGER: _l("Messenger"),
}
PURPOSE_LABELS = {
    ConsentPurpose.SERVICE: _l("Service"),
    ConsentPurpose.MARKETING: _l("Marketing"),
    ConsentPurpose.NEWSLETTER: _l("Newsletter"),
    ConsentPurpose.SURVEYS: _l("Surveys"),
}
TEXT_FIELDS = ("name", "company", "position_title", "street", "postal_code", "city", "country")


def _page(
    form: ui.FormState,
    *,
    status: int = 200,
    report: DuplicateReport | None = None,
    confirm_key: str = "",
    upload_error: str | None = None,
    notice: str | None = None,
) -> ResponseReturnValue:
    return (
        render_template(
            "records/capture.html",
            form=form,
            duplicates=report if report is not None and report.found else None,
            confirm_key=confirm_key,
            upload_error=upload_error,
            notice=notice,
            channels=CHANNEL_LABELS,
            purposes=PURPOSE_LABELS,
            max_kb=vcard.MAX_VCARD_BYTES // 1024,
        ),
        status,
    )


def _form_values() -> dict[str, Any]:
    values: dict[str, Any] = {name: ui.form_text(name) for name in TEXT_FIELDS}
    values["phones"] = ui.form_lines("phones")
    values["emails"] = ui.form_lines("emails")
    values["consents"] = [c for c in request.form.getlist("consent") if c][:40]
    return values


def _consent_items(keys: list[str]) -> list[dict[str, str]]:
    items = []
    for key in keys:
        channel, _sep, purpose = key.partition(":")
        items.append({"channel": channel, "purpose": purpose})
    return items


def _capture_data(values: dict[str, Any]) -> CaptureCreate:
    data: dict[str, Any] = {k: v for k, v in values.items() if k in TEXT_FIELDS and v}
    data["name"] = values["name"]
    data["phones"] = values["phones"]
    data["emails"] = values["emails"]
    data["consents"] = _consent_items(values["consents"])
    try:
        return CaptureCreate.model_validate(data, strict=False)
    except ValidationError as exc:
        errors = ui.validation_errors(exc)
        if "consents" in errors:
            errors["consents"] = _("Please choose only the offered permissions.")
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors) from None


def _report(data: CaptureCreate) -> DuplicateReport:
    return duplicates.find_duplicates(
        get_session(),
        current_user,
        name=data.company or data.name,
        phones=data.phones,
        emails=data.emails,
        postal_code=data.postal_code,
        city=data.city,
    )


@bp.get("/capture")
@login_required
def capture() -> ResponseReturnValue:
    policy.require_worker(current_user)
    return _page(ui.FormState())


@bp.post("/capture/vcard")
@login_required
def capture_vcard() -> ResponseReturnValue:
    """Read a business card into the form (nothing is stored yet) and check for duplicates."""
    policy.require_worker(current_user)
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        message = _(
            "The file is too large (at most %(size)s KB).", size=vcard.MAX_VCARD_BYTES // 1024
        )
        return _page(ui.FormState(), status=413, upload_error=message)
    if upload is None or not upload.filename:
        return _page(ui.FormState(), status=422, upload_error=_("Please choose a .vcf file."))
    try:
        card = vcard.parse_vcard(upload.stream.read(vcard.MAX_VCARD_BYTES + 1))
    except PortalError as exc:
        return _page(ui.FormState(), status=exc.status, upload_error=exc.message)
    values: dict[str, Any] = {**card.as_json(), "consents": []}
    values = {k: ("" if v is None else v) for k, v in values.items()}
    try:
        data = _capture_data(values)
    except ValidationFailed as exc:
        # A card may hold more than the form allows (a very long name); show it to correct.
        return _page(ui.FormState(values, exc.fields, exc.message), status=422)
    report = _report(data)
    return _page(
        ui.FormState(values),
        report=report,
        confirm_key=duplicates.confirmation_key(data) if report.found else "",
        notice=card.notice,
    )


@bp.post("/capture")
@login_required
def capture_create() -> ResponseReturnValue:
    """Create the captured customer with its consents, after the duplicate check; or, with
    `use_customer_id`, record the consents on that existing customer instead."""
    policy.require_worker(current_user)
    values = _form_values()
    session = get_session()
    try:
        data = _capture_data(values)
    except ValidationFailed as exc:
        return _page(ui.FormState(values, exc.fields, exc.message), status=422)
    use_id = ui.form_text("use_customer_id")
    if use_id:
        return _use_existing(use_id, data)
    key = duplicates.confirmation_key(data)
    if ui.form_text("confirm_duplicates") != key:
        report = _report(data)
        if report.found:
            return _page(ui.FormState(values), report=report, confirm_key=key)
    try:
        customer = consents.capture_customer(session, current_user, data)
    except ValidationFailed as exc:
        session.rollback()
        return _page(ui.FormState(values, ui.service_errors(exc), exc.message), status=422)
    flash(_("Customer %(name)s was created.", name=customer.name), "success")
    return redirect(url_for("records.customer", customer_id=customer.id))


def _use_existing(use_id: str, data: CaptureCreate) -> ResponseReturnValue:
    session = get_session()
    if not use_id.isdigit() or len(use_id) > 18:
        return redirect(url_for("intake.capture"))
    customer_id = int(use_id)
    view = policy.get_visible_customer(session, current_user, customer_id)  # 404 if hidden
    if data.consents:
        items: list[ConsentIn] = list(data.consents)
        consents.record_consents(
            session,
            current_user,
            customer_id,
            items,
            source=consents.ConsentSource.CAPTURE,
        )
        flash(
            _(
                "Nothing new was created; the permissions were recorded for %(name)s.",
                name=view.customer.name,
            ),
            "success",
        )
    else:
        flash(_("Nothing new was created."), "info")
    return redirect(url_for("records.customer", customer_id=customer_id))
