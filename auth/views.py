"""Sign-in and sign-out pages (stub, being replaced by the full UI)."""

from __future__ import annotations

import datetime as dt

from flask import (
    Blueprint,
    current_app,
    redirect,
    render_template_string,
    request,
    session,
    url_for,
)
from flask_login import login_user, logout_user

from auth import service
from portal.db import get_session

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    if request.method == "POST":
        db = get_session()
        user = service.authenticate(
            db,
            request.form.get("email", ""),
            request.form.get("password", ""),
            current_app.config["ARGON2_PROFILE"],
        )
        if user is not None:
            secret = service.start_session(
                db,
                user,
                dt.timedelta(hours=current_app.config["SESSION_LIFETIME_HOURS"]),
                request.user_agent.string,
            )
            session.clear()
            session["sid"] = secret
            login_user(user)
            return redirect(url_for("portal.inbox"))
        return render_template_string("bad credentials"), 401
    return render_template_string("login")


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    secret = session.get("sid")
    if secret:
        service.end_session(get_session(), secret)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
