"""Merge tool and CSV import pages.

Merging (owner organisation's admins): from a customer's page, pick the customer to fold into
it (by name among the organisation's own customers, by id, or from the likely duplicates),
compare both side by side with what each brings, confirm. Import (agents and admins): upload
a CSV file, check the preview with its per-row errors and duplicate candidates, decide per
possible duplicate, import. The file's text travels back with the confirmation in the form
(size-capped), so nothing is kept on the server between the two steps.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from portal.db import get_session
from portal.errors import Conflict, Forbidden, PortalError, ValidationFailed
from portal.ui import gettext as _
from shared_records import imports, merge, policy

bp = Blueprint("merge", __name__)

CANDIDATE_LIMIT = 20
DECISIONS = frozenset(imports.DECISIONS)


# --- merge -----------------------------------------------------------------------------------


def _merge_page(
    customer_id: int,
    *,
    other: int | None = None,
    status: int = 200,
    problem: str | None = None,
) -> ResponseReturnValue:
    session = get_session()
    survivor = policy.get_visible_customer(session, current_user, customer_id)
    policy.require_merge(current_user, survivor, survivor)
    if survivor.customer.merged_into_id is not None:
        return redirect(url_for("records.customer", customer_id=customer_id))
    q = request.args.get("q", "").strip()[:200]
    preview = None
    if other is not None and problem is None:
        try:
            preview = merge.preview(session, current_user, customer_id, other)
        except (ValidationFailed, Conflict, Forbidden) as exc:
            session.rollback()
            problem, status = exc.message, exc.status
    found = merge.candidates(session, current_user, customer_id, q, CANDIDATE_LIMIT) if q else []
    return (
        render_template(
            "records/merge.html",
            survivor=survivor.customer,
            preview=preview,
            q=q,
            found=found,
            searched=bool(q),
            suggestions=merge.suggestions(session, current_user, survivor) if not preview else [],
            problem=problem,
        ),
        status,
    )


@bp.get("/customers/<int:customer_id>/merge")
@login_required
def merge_page(customer_id: int) -> ResponseReturnValue:
    other = request.args.get("other", "").strip().lstrip("#")
    if other and not (other.isdigit() and len(other) < 19):
        return _merge_page(
            customer_id, status=422, problem=_("Enter the number of a customer, e.g. 123.")
        )
    return _merge_page(customer_id, other=int(other) if other else None)


@bp.post("/customers/<int:customer_id>/merge")
@login_required
def merge_confirm(customer_id: int) -> ResponseReturnValue:
    raw = request.form.get("merged_id", "").strip()
    if not (raw.isdigit() and len(raw) < 19):
        return _merge_page(customer_id, status=422, problem=_("Choose the customer to merge."))
    session = get_session()
    try:
        record = merge.merge_customers(session, current_user, customer_id, int(raw))
    except (ValidationFailed, Conflict) as exc:
        session.rollback()
        return _merge_page(customer_id, status=exc.status, problem=exc.message)
    moved = merge.moved_counts(record)
    survivor = policy.get_visible_customer(session, current_user, customer_id).customer
    flash(
        _(
            "%(merged)s was merged into %(survivor)s. Moved: cases %(cases)s, contacts "
            "%(contacts)s, phone numbers %(phones)s, email addresses %(emails)s, contact "
            "permissions %(consents)s.",
            merged=record.merged_name,
            survivor=survivor.name,
            cases=moved["cases"],
            contacts=moved["contacts"],
            phones=moved["phones"],
            emails=moved["emails"],
            consents=moved["consents"],
        ),
        "success",
    )
    return redirect(url_for("records.customer", customer_id=customer_id))


# --- CSV import ------------------------------------------------------------------------------


def _decisions() -> dict[int, str]:
    """The decisions of the preview form (`decision-<row>` = create | skip)."""
    decisions: dict[int, str] = {}
    for key, value in request.form.items():
        name, _sep, number = key.partition("-")
        if name == "decision" and number.isdigit() and len(number) < 7 and value in DECISIONS:
            decisions[int(number)] = value
    return decisions


def _import_page(status: int = 200, problem: str | None = None) -> ResponseReturnValue:
    return (
        render_template(
            "records/import.html",
            problem=problem,
            max_kb=imports.MAX_CSV_BYTES // 1024,
            max_rows=imports.MAX_ROWS,
        ),
        status,
    )


def _preview_page(
    checked: imports.ImportPreview,
    text: str,
    *,
    status: int = 200,
    problem: str | None = None,
    source: str | None = None,
) -> ResponseReturnValue:
    return (
        render_template(
            "records/import_preview.html",
            checked=checked,
            summary=checked.summary(),
            csv_text=text,
            problem=problem,
            source=source,
        ),
        status,
    )


@bp.get("/customers/import")
@login_required
def import_page() -> ResponseReturnValue:
    policy.require_worker(current_user)
    return _import_page()


@bp.post("/customers/import")
@login_required
def import_preview() -> ResponseReturnValue:
    policy.require_worker(current_user)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _import_page(422, _("Choose a CSV file to upload."))
    raw = upload.stream.read(imports.MAX_CSV_BYTES + 1)
    session = get_session()
    try:
        text, encoding = imports.decode(raw)
        checked = imports.preview(session, current_user, text)
    except PortalError as exc:
        session.rollback()
        return _import_page(exc.status, exc.message)
    source = _("%(file)s, read as %(encoding)s", file=upload.filename, encoding=encoding)
    return _preview_page(checked, text, source=source)


@bp.post("/customers/import/confirm")
@login_required
def import_confirm() -> ResponseReturnValue:
    policy.require_worker(current_user)
    text = request.form.get("csv_text", "")
    decisions = _decisions()
    session = get_session()
    try:
        _checked, result = imports.run_import(session, current_user, text, decisions)
    except imports.ImportRefused as exc:
        session.rollback()
        checked = imports.preview(session, current_user, text, decisions)
        return _preview_page(checked, text, status=422, problem=exc.message)
    except PortalError as exc:
        session.rollback()
        return _import_page(exc.status, exc.message)
    flash(
        _(
            "Customers imported: %(created)s; rows skipped: %(skipped)s.",
            created=len(result.created),
            skipped=len(result.skipped),
        ),
        "success",
    )
    return redirect(url_for("records.customers"))
