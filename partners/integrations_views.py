"""Organisation admin pages for integrations: API clients (create, revoke) at /admin/clients
and the organisation's identity audit log at /admin/audit.

The rules (who may, validation, revocation, which events) live in auth/clients.py; a new
client's secret appears once, in the answer to the create form, and nowhere else (neither
flashed nor kept in the session).
"""

# Flask-Login ships no type hints; its decorators would make every view untyped.

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from auth import clients
from auth.models import ApiClient
from auth.scopes import CLIENT_SCOPES
from portal import ui
from portal.api import decode_cursor, encode_cursor
from portal.db import get_session
from portal.errors import ValidationFailed
from portal.ui import gettext as _

bp = Blueprint("integrations", __name__)

SCOPE_LABELS = {
    "cases:read": _l("Read cases"),
    "cases:write": _l("Create and change cases"),
    "customers:read": _l("Read customers"),
    "customers:write": _l("Create and change customers"),
    "cti": _l("Telephony (CTI)"),
}


def _scope_choices() -> list[tuple[str, str]]:
    return [(s.value, str(SCOPE_LABELS.get(s.value, s.value))) for s in CLIENT_SCOPES]


def _clients_page(
    form: ui.FormState | None = None,
    *,
    created: ApiClient | None = None,
    secret: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    rows = clients.clients_of(get_session(), current_user)
    return (
        render_template(
            "partners/clients.html",
            organization=current_user.organization,
            clients=rows,
            scope_choices=_scope_choices(),
            scope_labels=SCOPE_LABELS,
            form=form or ui.FormState(values={"scopes": []}),
            created=created,
            secret=secret,
        ),
        status,
    )


@bp.get("/admin/clients", endpoint="clients")
@login_required
def clients_page() -> ResponseReturnValue:
    return _clients_page()


@bp.post("/admin/clients")
@login_required
def create_client() -> ResponseReturnValue:
    name = ui.form_text("name")
    scopes = request.form.getlist("scopes")
    try:
        client, secret = clients.create_client(get_session(), current_user, name, scopes)
    except ValidationFailed as exc:
        get_session().rollback()
        form = ui.FormState(
            {"name": name, "scopes": scopes}, ui.service_errors(exc), exc.message, open=True
        )
        return _clients_page(form, status=422)
    # The secret is in this answer only (no-store is set for signed-in pages).
    return _clients_page(created=client, secret=secret, status=201)


@bp.post("/admin/clients/<int:client_pk>/revoke")
@login_required
def revoke_client(client_pk: int) -> ResponseReturnValue:
    client = clients.revoke_client(get_session(), current_user, client_pk)
    flash(_("%(name)s was revoked; its tokens no longer work.", name=client.name), "success")
    return redirect(url_for("integrations.clients"))


@bp.get("/admin/audit")
@login_required
def audit() -> ResponseReturnValue:
    kind = request.args.get("kind", "").strip()[:40] or None
    cursor = request.args.get("before")
    before = decode_cursor(cursor) if cursor else None
    page = clients.audit_page(get_session(), current_user, kind=kind, before=before)
    older = None
    if page.next_key is not None:
        older = url_for("integrations.audit", kind=kind, before=encode_cursor(*page.next_key))
    return render_template(
        "partners/audit.html",
        organization=current_user.organization,
        page=page,
        kind=kind,
        older=older,
        first_page=url_for("integrations.audit", kind=kind),
        paged=before is not None,
    )
