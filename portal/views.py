"""Inbox and dashboard pages; also registers the template globals every page uses."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import format_number
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from partners.user_admin import is_admin
from portal import ui
from portal.api import decode_cursor, encode_cursor
from portal.db import get_session
from portal.enums import CaseKind, CaseStatus
from portal.errors import BadRequest
from portal.ui import gettext as _
from shared_records import queries, ui_queries
from shared_records.policy import InboxScope

bp = Blueprint("portal", __name__)

PAGE_SIZE = 25
TABS = (
    (InboxScope.ALL, "bi-inboxes"),
    (InboxScope.MINE, "bi-person-check"),
    (InboxScope.ORGANIZATION, "bi-building"),
    (InboxScope.SHARED, "bi-share"),
)
TAB_LABELS = {
    InboxScope.ALL: _l("All cases"),
    InboxScope.MINE: _l("My work"),
    InboxScope.ORGANIZATION: _l("My organisation"),
    InboxScope.SHARED: _l("Shared with us"),
}


@bp.record_once
def _register_template_globals(state: BlueprintSetupState) -> None:
    # Globals (not a context processor) so that imported macros see them too.
    state.app.jinja_env.globals.update(ui.template_globals())


@bp.app_context_processor
def _page_globals() -> dict[str, object]:
    user = current_user
    return {
        "is_admin": bool(user and user.is_authenticated and is_admin(user)),
        "can_create": bool(user and user.is_authenticated and ui_queries.can_create(user)),
    }


def _choice(value: str | None, allowed: type[CaseStatus] | type[CaseKind]) -> str | None:
    return value if value in {member.value for member in allowed} else None


@bp.get("/")
@login_required
def inbox() -> str:
    scope_arg = request.args.get("scope", InboxScope.ALL.value)
    scope = InboxScope(scope_arg) if scope_arg in set(InboxScope) else InboxScope.ALL
    status = _choice(request.args.get("status"), CaseStatus)
    kind = _choice(request.args.get("kind"), CaseKind)
    q = request.args.get("q", "").strip()[:200] or None
    filters = queries.CaseFilters(scope=scope, status=status, kind=kind, q=q)
    notice = None
    after = None
    cursor = request.args.get("cursor")
    if cursor:
        try:
            after = decode_cursor(cursor[:200])
        except BadRequest:
            notice = _("This page link is no longer valid; showing the first page instead.")
    views, next_key = queries.case_page(get_session(), current_user, filters, PAGE_SIZE, after)
    base_args: dict[str, Any] = {
        key: value
        for key, value in {"scope": scope.value, "status": status, "kind": kind, "q": q}.items()
        if value
    }
    next_url = (
        url_for("portal.inbox", **base_args, cursor=encode_cursor(*next_key)) if next_key else None
    )
    tabs = [
        (
            tab.value,
            str(TAB_LABELS[tab]),
            icon,
            url_for("portal.inbox", **{**base_args, "scope": tab.value}),
        )
        for tab, icon in TABS
    ]
    return render_template(
        "portal/inbox.html",
        views=views,
        scope=scope.value,
        tabs=tabs,
        filters=filters,
        next_url=next_url,
        first_url=url_for("portal.inbox", **base_args) if after else None,
        notice=notice,
    )


def _count_label(number: int, capped: bool) -> str:
    text = format_number(number)
    return _("%(number)s+", number=text) if capped else text


@bp.get("/dashboard")
@login_required
def dashboard() -> str:
    session = get_session()
    counts = ui_queries.case_counts(session, current_user)
    recent, _next = queries.case_page(
        session, current_user, queries.CaseFilters(scope=InboxScope.MINE), 5
    )
    cards = [
        (
            scope.value,
            str(TAB_LABELS[scope]),
            icon,
            _count_label(ui_queries.open_count(counts[scope.value]), scope.value in counts.capped),
            url_for("portal.inbox", scope=scope.value),
        )
        for scope, icon in TABS
        if scope is not InboxScope.ALL
    ]
    return render_template(
        "portal/dashboard.html",
        counts=counts,
        cards=cards,
        recent=recent,
        statuses=[status.value for status in CaseStatus],
        count_cap=format_number(ui_queries.COUNT_CAP),
    )
