"""Case and customer pages: read through the policy, write through the service.

Each POST parses its form with the pydantic schema of the API, calls one service operation
and redirects (PRG) with a message. Refusals (403) and invisible records (404) reach the
error pages; validation problems and conflicts re-render the page with the values typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from pydantic import BaseModel, ValidationError

from portal import ui
from portal.api import decode_id_cursor, encode_id_cursor
from portal.db import get_session
from portal.errors import BadRequest, Conflict, NotFound, ValidationFailed
from portal.ui import gettext as _
from shared_records import duplicates, policy, queries, service, ui_queries
from shared_records.policy import CaseView
from shared_records.schemas import (
    CaseCreate,
    CasePatch,
    ContactIn,
    CustomerCreate,
    CustomerPatch,
    EntryCreate,
    Handover,
    ShareCreate,
)
from shared_records.service import StaleVersion

bp = Blueprint("records", __name__)

CUSTOMER_PAGE_SIZE = 25
HISTORY_LIMIT = 100
EDIT_FIELDS = ("subject", "description", "kind", "priority")
FIELD_NAMES = {
    "subject": _l("Subject"),
    "description": _l("Description"),
    "kind": _l("Kind"),
    "priority": _l("Priority"),
    "status": _l("Status"),
}


class FormInvalid(Exception):
    """A form's values failed validation; carries the state to render again."""

    def __init__(self, state: ui.FormState) -> None:
        super().__init__(state.message)
        self.state = state


def _validate(
    model: type[BaseModel],
    data: dict[str, Any],
    values: dict[str, Any],
    model_messages: dict[str, str] | None = None,
) -> Any:
    """The validated model; FormInvalid with readable messages when the values do not fit."""
    try:
        return model.model_validate(data, strict=False)
    except ValidationError as exc:
        raise FormInvalid(
            ui.FormState(
                values,
                ui.validation_errors(exc, model_messages),
                _("Please correct the marked fields."),
                open=True,
            )
        ) from None


# --- case page -----------------------------------------------------------------------------


def _edit_values(view: CaseView) -> dict[str, Any]:
    case = view.case
    return {
        "version": case.version,
        "subject": case.subject,
        "description": case.description,
        "kind": case.kind,
        "priority": case.priority,
        "status": case.status,
    }


def _stale_rows(view: CaseView, typed: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, your value, current value) for every field that differs."""
    current = _edit_values(view)
    groups = {"kind": "case_kind", "priority": "case_priority", "status": "case_status"}
    rows = []
    for name in (*EDIT_FIELDS, "status"):
        if name not in typed or str(typed[name]) == str(current[name]):
            continue
        group = groups.get(name)
        yours = ui.label(group, typed[name]) if group else str(typed[name])
        theirs = ui.label(group, current[name]) if group else str(current[name])
        rows.append((str(FIELD_NAMES[name]), yours, theirs))
    return rows


def _case_page(
    case_id: int,
    forms: dict[str, ui.FormState] | None = None,
    *,
    status: int = 200,
    alert: str | None = None,
    stale: list[tuple[str, str, str]] | None = None,
) -> ResponseReturnValue:
    session = get_session()
    actor = current_user
    view = policy.get_visible_case(session, actor, case_id)
    actions = ui_queries.case_actions(actor, view)
    entries = session.scalars(policy.visible_entries(view)).all()
    shares = policy.visible_shares(view)
    people = ui_queries.user_names(session, [r.shared_by_user_id for r in view.reasons])
    org_names = ui_queries.organization_names(
        session, [r.shared_by_organization_id for r in view.reasons]
    )
    # A search among the value chain's partners (case page forms list a page of them).
    partner_q = request.args.get("partner_q", "").strip()[:100] or None
    share_targets, share_more = (
        ui_queries.share_target_page(session, view.case, partner_q)
        if actions.share
        else ([], False)
    )
    handover, handover_more = (
        ui_queries.handover_choices(session, view, partner_q) if actions.hand_over else ([], False)
    )
    all_forms = {
        "edit": ui.FormState(_edit_values(view)),
        "entry": ui.FormState({"kind": "note", "audience": "internal"}),
        "share": ui.FormState({"access": "read"}),
        "handover": ui.FormState(),
    }
    all_forms.update(forms or {})
    return (
        render_template(
            "records/case.html",
            view=view,
            case=view.case,
            actions=actions,
            entries=entries,
            shares=shares,
            people=people,
            org_names=org_names,
            audiences=ui_queries.entry_audiences(session, entries),
            audience_options=ui_queries.audience_options(session, view) if actions.comment else [],
            share_targets=share_targets,
            share_targets_more=share_more,
            handover=handover,
            handover_more=handover_more,
            partner_q=partner_q or "",
            find_for=request.args.get("find_for", ""),
            target_limit=ui_queries.TARGET_LIST_LIMIT,
            forms=all_forms,
            alert=alert,
            stale=stale or [],
        ),
        status,
    )


def _case_url(case_id: int, anchor: str = "") -> str:
    return url_for("records.case", case_id=case_id) + (f"#{anchor}" if anchor else "")


def _case_action(
    case_id: int,
    form_name: str,
    values: dict[str, Any],
    act: Callable[[], str | ResponseReturnValue],
    anchor: str = "",
) -> ResponseReturnValue:
    """Run one operation from the case page: PRG on success, the page again on a problem."""
    session = get_session()
    try:
        outcome = act()
    except FormInvalid as exc:
        return _case_page(case_id, {form_name: exc.state}, status=422)
    except StaleVersion:
        session.rollback()
        current = policy.get_visible_case(session, current_user, case_id)
        typed = {**_edit_values(current), **values, "version": current.case.version}
        message = _(
            "This case was changed meanwhile by someone else. Its current values are shown "
            "below; check them and save again if your change still applies."
        )
        state = ui.FormState(typed, message=message, open=True)
        return _case_page(case_id, {"edit": state}, status=409, stale=_stale_rows(current, typed))
    except ValidationFailed as exc:
        session.rollback()
        state = ui.FormState(values, ui.service_errors(exc), exc.message, open=True)
        return _case_page(case_id, {form_name: state}, status=422)
    except Conflict as exc:
        session.rollback()
        return _case_page(case_id, status=409, alert=exc.message)
    if isinstance(outcome, str):
        flash(outcome, "success")
        return redirect(_case_url(case_id, anchor))
    return outcome


@bp.get("/cases/<int:case_id>")
@login_required
def case(case_id: int) -> ResponseReturnValue:
    return _case_page(case_id)


@bp.post("/cases/<int:case_id>/status")
@login_required
def change_status(case_id: int) -> ResponseReturnValue:
    values = {"version": ui.form_text("version"), "status": ui.form_text("status")}

    def act() -> str:
        data = _validate(CasePatch, values, values)
        view = service.update_case(get_session(), current_user, case_id, data)
        return _("Status is now “%(status)s”.", status=ui.label("case_status", view.case.status))

    return _case_action(case_id, "edit", values, act)


@bp.post("/cases/<int:case_id>/edit")
@login_required
def edit_case(case_id: int) -> ResponseReturnValue:
    values: dict[str, Any] = {"version": ui.form_text("version")}
    for name in EDIT_FIELDS:
        if name in request.form:
            values[name] = ui.form_multiline(name) if name == "description" else ui.form_text(name)

    def act() -> str:
        data = _validate(CasePatch, values, values)
        service.update_case(get_session(), current_user, case_id, data)
        return _("The case was saved.")

    return _case_action(case_id, "edit", values, act)


@bp.post("/cases/<int:case_id>/entries")
@login_required
def add_entry(case_id: int) -> ResponseReturnValue:
    kind = ui.form_text("kind") or "note"
    mode = ui.form_text("audience")
    org_ids = request.form.getlist("audience_org")
    values: dict[str, Any] = {
        "kind": kind,
        "body": ui.form_multiline("body"),
        "audience": mode,
        "audience_org": org_ids,
        "channel": ui.form_text("channel"),
        "direction": ui.form_text("direction"),
    }
    data: dict[str, Any] = {
        "kind": kind,
        "body": values["body"],
        "audience": org_ids if mode == "organizations" else mode,
    }
    if kind == "interaction":
        for name in ("channel", "direction"):
            if values[name]:
                data[name] = values[name]

    def act() -> str:
        entry = _validate(
            EntryCreate,
            data,
            values,
            {"channel": _("An interaction needs a channel and a direction.")},
        )
        service.add_entry(get_session(), current_user, case_id, entry)
        return _("Your entry was added to the timeline.")

    return _case_action(case_id, "entry", values, act, anchor="timeline")


@bp.post("/cases/<int:case_id>/shares")
@login_required
def share(case_id: int) -> ResponseReturnValue:
    values = {
        "organization_id": ui.form_text("organization_id"),
        "access": ui.form_text("access"),
        "include_contact_details": "include_contact_details" in request.form,
    }

    def act() -> str:
        data = _validate(ShareCreate, values, values)
        shared = service.share_case(get_session(), current_user, case_id, data)
        return _(
            "Shared with %(org)s (%(access)s).",
            org=shared.organization.name,
            access=ui.label("access", shared.access),
        )

    return _case_action(case_id, "share", values, act, anchor="sharing")


@bp.post("/cases/<int:case_id>/shares/<int:organization_id>/revoke")
@login_required
def unshare(case_id: int, organization_id: int) -> ResponseReturnValue:
    def act() -> str:
        service.unshare_case(get_session(), current_user, case_id, organization_id)
        return _("The share was revoked.")

    return _case_action(case_id, "share", {}, act, anchor="sharing")


@bp.post("/cases/<int:case_id>/claim")
@login_required
def claim(case_id: int) -> ResponseReturnValue:
    def act() -> str:
        service.claim_case(get_session(), current_user, case_id)
        return _("You are now handling this case.")

    return _case_action(case_id, "handover", {}, act)


@bp.post("/cases/<int:case_id>/release")
@login_required
def release(case_id: int) -> ResponseReturnValue:
    def act() -> str:
        service.release_case(get_session(), current_user, case_id)
        return _("The case was released; anyone in the handling organisation can claim it.")

    return _case_action(case_id, "handover", {}, act)


@bp.post("/cases/<int:case_id>/handover")
@login_required
def hand_over(case_id: int) -> ResponseReturnValue:
    target = ui.form_text("target")
    values = {"target": target, "message": ui.form_multiline("message")}
    kind, _sep, target_id = target.partition(":")
    data: dict[str, Any] = {"message": values["message"]}
    if kind == "user":
        data["user_id"] = target_id
    elif kind == "org":
        data["organization_id"] = target_id

    def act() -> str | ResponseReturnValue:
        body = _validate(
            Handover, data, values, {"target": _("Choose a person or an organisation.")}
        )
        try:
            handed, after = service.hand_over_case(get_session(), current_user, case_id, body)
        except ValidationFailed as exc:
            # The service names user_id / organization_id; the form has one field, target.
            exc.fields = {"target": next(iter(exc.fields.values()), exc.message)}
            raise
        get_session().refresh(handed)  # the handler relationships as they are now
        receiver = handed.handling_user.name if handed.handling_user else None
        org_name = handed.handling_organization.name
        text = (
            _("Handed over to %(name)s (%(org)s).", name=receiver, org=org_name)
            if receiver
            else _("Handed over to %(org)s.", org=org_name)
        )
        if after is None:
            flash(text + " " + _("Your organisation no longer sees this case."), "success")
            return redirect(url_for("portal.inbox"))
        return text

    return _case_action(case_id, "handover", values, act)


# --- new case ------------------------------------------------------------------------------


def _new_case_page(form: ui.FormState, status: int = 200) -> ResponseReturnValue:
    session = get_session()
    customer = None
    customer_id = str(form.value("customer_id", ""))
    if customer_id.isdigit():
        try:
            customer = policy.get_visible_customer(session, current_user, int(customer_id))
        except NotFound:  # an unknown id just means "choose a customer"
            customer = None
    q = request.args.get("q", "").strip()[:200]
    found: list[policy.CustomerView] = []
    if customer is None:
        found, _next = queries.customer_page(session, current_user, q or None, 10)
    return (
        render_template(
            "records/case_new.html", form=form, customer=customer, q=q, candidates=found
        ),
        status,
    )


@bp.get("/cases/new")
@login_required
def new_case() -> ResponseReturnValue:
    policy.require_worker(current_user)
    values = {
        "customer_id": request.args.get("customer_id", ""),
        "kind": "inquiry",
        "priority": "normal",
    }
    return _new_case_page(ui.FormState(values))


@bp.post("/cases/new")
@login_required
def create_case() -> ResponseReturnValue:
    values = {name: ui.form_text(name) for name in ("customer_id", "subject", "kind", "priority")}
    values["description"] = ui.form_multiline("description")
    try:
        data = _validate(CaseCreate, values, values)
        view = service.create_case(get_session(), current_user, data)
    except FormInvalid as exc:
        return _new_case_page(exc.state, 422)
    except ValidationFailed as exc:
        get_session().rollback()
        return _new_case_page(ui.FormState(values, ui.service_errors(exc), exc.message), 422)
    flash(_("Case %(number)s was opened.", number=view.case.number), "success")
    return redirect(_case_url(view.case.id))


# --- customers -----------------------------------------------------------------------------


@bp.get("/customers")
@login_required
def customers() -> ResponseReturnValue:
    q = request.args.get("q", "").strip()[:200] or None
    notice = None
    after = None
    cursor = request.args.get("cursor")
    if cursor:
        try:
            after = decode_id_cursor(cursor[:200])
        except BadRequest:
            notice = _("This page link is no longer valid; showing the first page instead.")
    views, next_id = queries.customer_page(
        get_session(), current_user, q, CUSTOMER_PAGE_SIZE, after
    )
    args: dict[str, Any] = {"q": q} if q else {}
    return render_template(
        "records/customers.html",
        views=views,
        q=q or "",
        notice=notice,
        next_url=(
            url_for("records.customers", **args, cursor=encode_id_cursor(next_id))
            if next_id
            else None
        ),
        first_url=url_for("records.customers", **args) if after else None,
    )


def _customer_values() -> dict[str, Any]:
    values: dict[str, Any] = {
        name: ui.form_text(name)
        for name in ("name", "kind", "street", "postal_code", "city", "country")
    }
    values["phones"] = ui.form_lines("phones")
    values["emails"] = ui.form_lines("emails")
    return values


def _customer_data(values: dict[str, Any]) -> dict[str, Any]:
    """The schema's input: optional fields left out when empty (null is refused)."""
    data = {key: value for key, value in values.items() if value or key == "name"}
    data.setdefault("phones", [])
    data.setdefault("emails", [])
    return data


@bp.route("/customers/new", methods=["GET", "POST"])
@login_required
def new_customer() -> ResponseReturnValue:
    policy.require_worker(current_user)
    if request.method == "GET":
        return render_template("records/customer_new.html", form=ui.FormState({"kind": "person"}))
    values = _customer_values()
    try:
        data = _validate(CustomerCreate, _customer_data(values), values)
        key = duplicates.confirmation_key(data)
        if ui.form_text("confirm_duplicates") != key:
            report = duplicates.for_customer(get_session(), current_user, data)
            if report.found:
                # Warn first; "create anyway" sends the form again with the key.
                return render_template(
                    "records/customer_new.html",
                    form=ui.FormState(values),
                    duplicates=report,
                    confirm_key=key,
                )
        created = service.create_customer(get_session(), current_user, data)
    except FormInvalid as exc:
        return render_template("records/customer_new.html", form=exc.state), 422
    except ValidationFailed as exc:
        get_session().rollback()
        form = ui.FormState(values, ui.service_errors(exc), exc.message)
        return render_template("records/customer_new.html", form=form), 422
    flash(_("Customer %(name)s was created.", name=created.name), "success")
    return redirect(url_for("records.customer", customer_id=created.id))


def _customer_page(
    customer_id: int,
    forms: dict[str, ui.FormState] | None = None,
    *,
    status: int = 200,
    alert: str | None = None,
) -> ResponseReturnValue:
    session = get_session()
    actor = current_user
    view = policy.get_visible_customer(session, actor, customer_id)
    cases, _more = queries.case_page(
        session, actor, queries.CaseFilters(customer_id=customer_id), HISTORY_LIMIT
    )
    history = session.scalars(
        policy.visible_entries_of_customer(actor, customer_id).limit(HISTORY_LIMIT)
    ).all()
    customer = view.customer
    from shared_records import merge

    merges = merge.history(session, actor, view)
    from shared_records import consents

    permissions = (
        consents.in_force(consents.consents_of(session, actor, customer_id))
        if view.contact_details
        else []
    )
    all_forms = {
        "edit": ui.FormState(
            {
                "version": customer.version,
                "name": customer.name,
                "kind": customer.kind,
                "street": customer.street or "",
                "postal_code": customer.postal_code or "",
                "city": customer.city or "",
                "country": customer.country or "",
                "phones": [p.e164 for p in customer.phones],
                "emails": [e.email for e in customer.emails],
            }
        ),
        "contact": ui.FormState(),
    }
    all_forms.update(forms or {})
    return (
        render_template(
            "records/customer.html",
            view=view,
            customer=customer,
            cases=cases,
            cases_by_id={v.case.id: v.case for v in cases},
            history=history,
            audiences=ui_queries.entry_audiences(session, history),
            forms=all_forms,
            alert=alert,
            merges=merges,
            permissions=permissions,
            contact_names={c.id: c.name for c in customer.contacts},
            is_merged=customer.merged_into_id is not None,
            can_merge=customer.merged_into_id is None and policy.can_merge(actor, view),
        ),
        status,
    )


@bp.get("/customers/<int:customer_id>")
@login_required
def customer(customer_id: int) -> ResponseReturnValue:
    """A merged customer's page leads to the survivor; `?merged=1` shows the merged record
    itself (linked from the survivor's merge history)."""
    from shared_records import merge

    if not request.args.get("merged"):
        survivor = merge.visible_survivor(get_session(), current_user, customer_id)
        if survivor is not None:
            flash(_("This customer was merged into %(name)s.", name=survivor.customer.name), "info")
            return redirect(url_for("records.customer", customer_id=survivor.customer.id))
    return _customer_page(customer_id)


@bp.post("/customers/<int:customer_id>/edit")
@login_required
def edit_customer(customer_id: int) -> ResponseReturnValue:
    values = _customer_values()
    values["version"] = ui.form_text("version")
    data = {key: value for key, value in values.items() if key != "country" or value}
    session = get_session()
    try:
        patch = _validate(CustomerPatch, data, values)
        service.update_customer(session, current_user, customer_id, patch)
    except FormInvalid as exc:
        return _customer_page(customer_id, {"edit": exc.state}, status=422)
    except StaleVersion as exc:
        session.rollback()
        return _customer_page(customer_id, status=409, alert=exc.message)
    except ValidationFailed as exc:
        session.rollback()
        state = ui.FormState(values, ui.service_errors(exc), exc.message, open=True)
        return _customer_page(customer_id, {"edit": state}, status=422)
    flash(_("The customer was saved."), "success")
    return redirect(url_for("records.customer", customer_id=customer_id))


@bp.post("/customers/<int:customer_id>/contacts")
@login_required
def add_contact(customer_id: int) -> ResponseReturnValue:
    values: dict[str, Any] = {
        "name": ui.form_text("name"),
        "position_title": ui.form_text("position_title"),
        "phones": ui.form_lines("phones"),
        "emails": ui.form_lines("emails"),
    }
    data = {key: value for key, value in values.items() if value or key != "position_title"}
    session = get_session()
    try:
        contact = _validate(ContactIn, data, values)
        key = duplicates.confirmation_key(contact)
        if ui.form_text("confirm_duplicates") != key:
            view = policy.get_visible_customer(session, current_user, customer_id)
            policy.require_customer_edit(current_user, view)
            report = duplicates.for_contact(session, current_user, customer_id, contact)
            if report.found:
                return render_template(
                    "records/capture_contact_check.html",
                    customer=view.customer,
                    form=ui.FormState(values),
                    duplicates=report,
                    confirm_key=key,
                )
        created = service.add_contact(session, current_user, customer_id, contact)
    except FormInvalid as exc:
        return _customer_page(customer_id, {"contact": exc.state}, status=422)
    except ValidationFailed as exc:
        session.rollback()
        state = ui.FormState(values, ui.service_errors(exc), exc.message, open=True)
        return _customer_page(customer_id, {"contact": state}, status=422)
    flash(_("Contact %(name)s was added.", name=created.name), "success")
    return redirect(url_for("records.customer", customer_id=customer_id) + "#contacts")
