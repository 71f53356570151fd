"""Interaction center pages: the screen pop panel, the agent's recent calls, logging a call
in one click and creating the caller as a customer when the number is unknown."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from pydantic import ValidationError

from portal import ui
from portal.db import get_session
from portal.errors import PortalError
from portal.ui import gettext as _
from shared_records import policy, service, telephony
from shared_records.cti_schemas import CallLog
from shared_records.models import Call, Case
from shared_records.schemas import CustomerCreate

bp = Blueprint("calls", __name__)

LAST_INTERACTIONS = 5


def _panel_context(call: Call, chosen: int | None) -> dict[str, Any]:
    session = get_session()
    actor = current_user
    matches = telephony.matches_of(session, actor, call)
    selected = next((m for m in matches if m.customer_id == chosen), None)
    if selected is None and len(matches) == 1:
        selected = matches[0]
    customer_view = cases = history = None
    if selected is not None:
        customer_view = policy.get_visible_customer(session, actor, selected.customer_id)
        cases = session.scalars(policy.open_cases_of(actor, [selected.customer_id]).limit(10)).all()
        history = session.scalars(
            policy.visible_entries_of_customer(actor, selected.customer_id).limit(LAST_INTERACTIONS)
        ).all()
    logged_case = telephony.logged_case(session, actor, call)
    return {
        "call": call,
        "matches": matches,
        "selected": selected,
        "customer_view": customer_view,
        "open_cases": cases or [],
        "history": history or [],
        "logged_case": logged_case,
        "duration": telephony.format_duration(call.duration_seconds),
    }


def _chosen() -> int | None:
    value = request.args.get("customer", "")
    return int(value) if value.isdigit() else None


@bp.get("/calls/<int:call_pk>/panel")
@login_required
def panel(call_pk: int) -> ResponseReturnValue:
    """The screen pop's content (an HTML fragment the page loads into its side panel)."""
    call = telephony.get_call(get_session(), current_user, call_pk)
    return render_template("records/_screen_pop.html", **_panel_context(call, _chosen()))


@bp.get("/calls")
@login_required
def calls() -> ResponseReturnValue:
    """The agent's recent calls; the newest one (or the one asked for) shown in full."""
    session = get_session()
    recent = telephony.recent_calls(session, current_user, 20)
    wanted = request.args.get("call", "")
    current = next((c for c in recent if str(c.id) == wanted), recent[0] if recent else None)
    context = _panel_context(current, _chosen()) if current is not None else {}
    return render_template("records/calls.html", recent=recent, current=current, **context)


def _back(call_pk: int) -> str:
    return ui.safe_next(request.form.get("next")) or url_for("calls.calls", call=call_pk)


@bp.post("/calls/<int:call_pk>/log")
@login_required
def log_call(call_pk: int) -> ResponseReturnValue:
    """Log the call on the case picked (one click) or on a new case for the caller."""
    data: dict[str, Any] = {"note": ui.form_multiline("note")}
    case_id = request.form.get("case_id", "")
    if case_id.isdigit():
        data["case_id"] = int(case_id)
    else:
        customer_id = request.form.get("customer_id", "")
        subject = ui.form_text("subject") or _("Phone call")
        if not customer_id.isdigit():
            abort(400)
        data["new_case"] = {"customer_id": int(customer_id), "subject": subject}
    try:
        body = CallLog.model_validate(data)
        entry = telephony.log_call(get_session(), current_user, call_pk, body)
    except ValidationError:
        flash(_("The call could not be logged: please check the note and the subject."), "danger")
        return redirect(_back(call_pk))
    except PortalError as error:
        if error.status == 404:
            raise
        flash(error.message, "danger")
        return redirect(_back(call_pk))
    case = get_session().get(Case, entry.case_id)
    flash(_("Call logged on %(number)s.", number=case.number if case else ""), "success")
    return redirect(_back(call_pk))


@bp.post("/calls/<int:call_pk>/customer")
@login_required
def create_caller(call_pk: int) -> ResponseReturnValue:
    """Quick-create the unknown caller as a customer of the agent's organisation."""
    session = get_session()
    call = telephony.get_call(session, current_user, call_pk)
    name = ui.form_text("name")
    try:
        customer = service.create_customer(
            session,
            current_user,
            CustomerCreate.model_validate({"name": name, "phones": [call.number]}),
        )
    except ValidationError:
        flash(_("Please enter the caller's name."), "danger")
        return redirect(_back(call_pk))
    except PortalError as error:
        flash(error.message, "danger")
        return redirect(_back(call_pk))
    telephony.remember_match(session, call, customer.id)
    flash(_("Customer %(name)s created.", name=customer.name), "success")
    return redirect(url_for("records.customer", customer_id=customer.id))
