"""Sign-in, sign-out and the profile page (language and personal API tokens)."""

from __future__ import annotations

import datetime as dt

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from pydantic import ValidationError

from auth import service
from auth.api import TokenCreate
from partners import service as partners_service
from portal import ui
from portal.db import get_session
from portal.ui import gettext as _

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_url = ui.safe_next(request.values.get("next"))
    email = ""
    if request.method == "POST":
        db = get_session()
        email = ui.form_text("email")
        user = service.authenticate(
            db, email, request.form.get("password", ""), current_app.config["ARGON2_PROFILE"]
        )
        if user is not None:
            secret = service.start_session(
                db,
                user,
                dt.timedelta(hours=current_app.config["SESSION_LIFETIME_HOURS"]),
                request.user_agent.string,
            )
            # A fresh session cookie: nothing from before the sign-in carries over.
            session.clear()
            session["sid"] = secret
            login_user(user)
            return redirect(next_url or url_for("portal.inbox"))
        return (
            render_template(
                "auth/login.html",
                email=email,
                next_url=next_url,
                error=_("Email or password is wrong."),
            ),
            401,
        )
    return render_template("auth/login.html", email=email, next_url=next_url, error=None)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    secret = session.get("sid")
    if secret:
        service.end_session(get_session(), secret)
    logout_user()
    session.clear()
    flash(_("You have been signed out."), "info")
    return redirect(url_for("auth.login"))


def _profile_page(
    *, new_token: str | None = None, token_form: ui.FormState | None = None, status: int = 200
) -> ResponseReturnValue:
    tokens = service.list_api_tokens(get_session(), current_user)
    return (
        render_template(
            "auth/profile.html",
            tokens=tokens,
            new_token=new_token,
            token_form=token_form or ui.FormState(),
        ),
        status,
    )


@bp.get("/profile")
@login_required
def profile() -> ResponseReturnValue:
    return _profile_page()


@bp.post("/profile/language")
@login_required
def set_language() -> ResponseReturnValue:
    locale = request.form.get("locale", "")
    partners_service.set_locale(get_session(), current_user, locale or None)
    if current_user.locale:
        flash(_("Language saved."), "success")
    else:
        flash(_("The language now follows your browser."), "success")
    back = ui.safe_next(request.form.get("next"))
    return redirect(back or url_for("auth.profile"))


@bp.post("/profile/tokens")
@login_required
def create_token() -> ResponseReturnValue:
    name = request.form.get("name", "")
    try:
        data = TokenCreate.model_validate({"name": name}, strict=False)
    except ValidationError as exc:
        form = ui.FormState(values={"name": name}, errors=ui.validation_errors(exc))
        return _profile_page(token_form=form, status=422)
    _token, secret = service.create_api_token(get_session(), current_user, data.name)
    # Shown in this answer only (never put into the session cookie); no-store is set for
    # signed-in pages, so it is not cached either.
    return _profile_page(new_token=secret, status=201)


@bp.post("/profile/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> ResponseReturnValue:
    if service.revoke_api_token(get_session(), current_user, token_id):
        flash(_("The token was revoked."), "success")
    else:
        flash(_("This token does not exist or was revoked already."), "warning")
    return redirect(url_for("auth.profile") + "#tokens")
