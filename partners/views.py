"""The organisation admin page: users (create, role, active) and the value-chain partners
(a manufacturer's admins end and resume partnerships)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from partners import service, user_admin
from portal import ui
from portal.db import get_session
from portal.errors import Conflict, ValidationFailed
from portal.ui import gettext as _
from shared_records import policy

bp = Blueprint("partners", __name__)


def _admin_page(form: ui.FormState | None = None, status: int = 200) -> ResponseReturnValue:
    user_admin.require_admin(current_user)
    session = get_session()
    org = current_user.organization
    return (
        render_template(
            "partners/admin.html",
            organization=org,
            users=service.organization_users(session, org.id),
            partnerships=service.partnerships_of(session, org),
            chain=session.scalars(policy.chain_organizations(org)).all(),
            form=form or ui.FormState(values={"role": "agent"}),
        ),
        status,
    )


@bp.get("/admin")
@login_required
def admin() -> ResponseReturnValue:
    return _admin_page()


@bp.post("/admin/users")
@login_required
def create_user() -> ResponseReturnValue:
    values = {name: ui.form_text(name) for name in ("name", "email", "role")}
    try:
        user = user_admin.add_user(
            get_session(),
            current_user,
            email=values["email"],
            name=values["name"],
            role=values["role"],
            password=request.form.get("password", ""),
            argon2_profile=current_app.config["ARGON2_PROFILE"],
        )
    except ValidationFailed as exc:
        form = ui.FormState(values, ui.service_errors(exc), exc.message, open=True)
        return _admin_page(form, 422)
    except Conflict as exc:
        form = ui.FormState(values, {"email": exc.message}, exc.message, open=True)
        return _admin_page(form, 409)
    flash(_("%(name)s can now sign in.", name=user.name), "success")
    return redirect(url_for("partners.admin") + "#users")


@bp.post("/admin/users/<int:user_id>/role")
@login_required
def change_role(user_id: int) -> ResponseReturnValue:
    try:
        user = service.set_user_role(get_session(), current_user, user_id, ui.form_text("role"))
    except ValidationFailed as exc:
        get_session().rollback()
        flash(exc.message, "danger")
    else:
        flash(
            _(
                "%(name)s is now %(role)s.",
                name=user.name,
                role=ui.label("user_role", user.role),
            ),
            "success",
        )
    return redirect(url_for("partners.admin") + "#users")


@bp.post("/admin/users/<int:user_id>/active")
@login_required
def change_active(user_id: int) -> ResponseReturnValue:
    active = request.form.get("active") == "1"
    try:
        user = service.set_user_active(get_session(), current_user, user_id, active)
    except ValidationFailed as exc:
        get_session().rollback()
        flash(exc.message, "danger")
    else:
        message = (
            _("%(name)s was activated.", name=user.name)
            if active
            else _("%(name)s was deactivated and signed out everywhere.", name=user.name)
        )
        flash(message, "success")
    return redirect(url_for("partners.admin") + "#users")


@bp.post("/admin/security")
@login_required
def security() -> ResponseReturnValue:
    """Organisation-wide sign-in rules (a mandatory second factor for local accounts)."""
    service.set_require_totp(get_session(), current_user, request.form.get("require_totp") == "1")
    flash(_("Sign-in security saved."), "success")
    return redirect(url_for("partners.admin") + "#security")


@bp.post("/admin/telephony")
@login_required
def telephony() -> ResponseReturnValue:
    """Telephone settings: region, outside-line prefix and the people's extensions."""
    extensions = {
        int(key[4:]): value
        for key, value in request.form.items()
        if key.startswith("ext-") and key[4:].isdigit()
    }
    try:
        service.set_telephony(
            get_session(),
            current_user,
            request.form.get("phone_region", ""),
            request.form.get("outside_line_prefix", ""),
            extensions,
        )
    except ValidationFailed as exc:
        get_session().rollback()
        flash(exc.message + " " + " ".join(exc.fields.values()), "danger")
    else:
        flash(_("Telephone settings saved."), "success")
    return redirect(url_for("partners.admin") + "#telephony")


@bp.post("/admin/partnerships/<int:partnership_id>/active")
@login_required
def change_partnership(partnership_id: int) -> ResponseReturnValue:
    """End or resume a partnership of the admin's manufacturer (shares follow, see
    partners.service.set_partnership_active)."""
    active = request.form.get("active") == "1"
    link, outcome = service.set_partnership_active(
        get_session(), current_user, partnership_id, active
    )
    if active:
        message = _(
            "%(name)s is back in your value chain; %(count)s shares are in force again.",
            name=link.partner.name,
            count=outcome.resumed,
        )
    else:
        message = _(
            "%(name)s has left your value chain; %(count)s shares are suspended.",
            name=link.partner.name,
            count=outcome.suspended,
        )
    flash(message, "success")
    return redirect(url_for("partners.admin") + "#partners")
