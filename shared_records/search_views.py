"""The search page behind the navbar's search box: the same grouped hits as GET /api/v1/search."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from portal.db import get_session
from portal.ui import gettext as _
from shared_records import search

bp = Blueprint("search", __name__)

PAGE_LIMIT = 20


@bp.get("/search")
@login_required
def search_page() -> ResponseReturnValue:
    q = " ".join(request.args.get("q", "").split())
    if len(q) > search.MAX_QUERY_LENGTH:
        message = _(
            "The search text is too long (at most %(max)s characters).",
            max=search.MAX_QUERY_LENGTH,
        )
        return render_template("records/search.html", q=q, results=None, message=message), 400
    results = search.search(get_session(), current_user, q, limit=PAGE_LIMIT) if q else None
    return render_template("records/search.html", q=q, results=results, message=None)
