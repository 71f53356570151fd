"""The organisation admin page for single sign-on (`/admin/sso`): the organisation's OpenID
Connect provider, its email domains, the role mapping, just-in-time accounts and whether
local passwords stay allowed.

Saving checks the provider's discovery document first and refuses settings that cannot
work. The client secret is write-only: never shown again, kept when the field is left empty.
The rules live in auth/sso.py.
"""

# Flask-Login ships no type hints; its decorators would make every view untyped.
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from auth import sso
from auth.models import UserIdentity
from partners import user_admin
from partners.models import User
from portal import ui
from portal.db import get_session
from portal.errors import Conflict, ValidationFailed
from portal.ui import gettext as _

bp = Blueprint("sso_admin", __name__)


def _form_values(provider_settings: sso.Settings | None) -> dict[str, Any]:
    if provider_settings is None:
        return {
            "default_role": "agent",
            "allow_local_passwords": True,
            "enabled": True,
            "jit": False,
        }
    return {
        "issuer": provider_settings.issuer,
        "client_id": provider_settings.client_id,
        "domains": ", ".join(provider_settings.domains),
        "role_claim": provider_settings.role_claim or "",
        "role_map": sso.format_role_map(provider_settings.role_map),
        "default_role": provider_settings.default_role,
        "jit": provider_settings.jit,
        "allow_local_passwords": provider_settings.allow_local_passwords,
        "enabled": provider_settings.enabled,
    }


def _page(form: ui.FormState | None = None, status: int = 200) -> ResponseReturnValue:
    user_admin.require_admin(current_user)
    db = get_session()
    org = current_user.organization
    provider = sso.provider_of(db, org)
    linked = 0
    if provider is not None:
        linked = int(
            db.scalar(
                sa.select(sa.func.count(UserIdentity.id))
                .join(User, User.id == UserIdentity.user_id)
                .where(UserIdentity.provider_id == provider.id, User.organization_id == org.id)
            )
            or 0
        )
    if form is None:
        form = ui.FormState(values=_form_values(sso.settings_of(provider) if provider else None))
    return (
        render_template(
            "partners/sso.html",
            organization=org,
            provider=provider,
            form=form,
            linked=linked,
            redirect_uri=sso.redirect_uri(org.slug),
            backchannel_uri=sso.backchannel_logout_uri(org.slug),
            post_logout_uri=sso.post_logout_uri(),
            start_url=sso.public_url("sso.start", org_slug=org.slug),
        ),
        status,
    )


@bp.get("/admin/sso", endpoint="settings")
@login_required
def settings() -> ResponseReturnValue:
    return _page()


@bp.post("/admin/sso")
@login_required
def save() -> ResponseReturnValue:
    user_admin.require_admin(current_user)
    db = get_session()
    values: dict[str, Any] = {
        name: ui.form_text(name)
        for name in ("issuer", "client_id", "domains", "role_claim", "default_role")
    }
    values["role_map"] = ui.form_multiline("role_map")
    for flag in ("jit", "allow_local_passwords", "enabled"):
        values[flag] = request.form.get(flag) == "1"
    errors: dict[str, str] = {}
    try:
        role_map = sso.parse_role_map(values["role_map"])
    except ValueError as exc:
        role_map = {}
        errors["role_map"] = str(exc)
    settings_in = sso.Settings(
        issuer=values["issuer"],
        client_id=values["client_id"],
        client_secret=request.form.get("client_secret", "").strip() or None,
        domains=sso.parse_domains(values["domains"]),
        role_claim=values["role_claim"] or None,
        role_map=role_map,
        default_role=values["default_role"],
        jit=values["jit"],
        allow_local_passwords=values["allow_local_passwords"],
        enabled=values["enabled"],
    )
    existing = sso.provider_of(db, current_user.organization)
    try:
        sso.validate(settings_in, secret_required=existing is None)
    except ValidationFailed as exc:
        errors = {**ui.service_errors(exc), **errors}
    if errors:
        message = _("Some values are not valid.")
        return _page(ui.FormState(values, errors, message), 422)
    try:
        metadata = sso.check_discovery(settings_in.issuer)
        sso.save_settings(db, current_user.organization, settings_in, actor=current_user)
    except ValidationFailed as exc:
        return _page(ui.FormState(values, ui.service_errors(exc), exc.message), 422)
    except Conflict as exc:
        return _page(ui.FormState(values, ui.service_errors(exc), exc.message), 409)
    host = urlsplit(str(metadata["authorization_endpoint"])).netloc
    flash(
        _(
            "Single sign-on settings saved. The provider answered: its discovery document "
            "was found and its sign-in page is at %(host)s.",
            host=host,
        ),
        "success",
    )
    return redirect(url_for("sso_admin.settings"))
