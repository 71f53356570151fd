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
from werkzeug.wrappers.response import Response

from auth import accounts, audit, service, sso
from auth.api import TokenCreate
from auth.models import IdentityProvider, UserSession
from auth.tokens import digest
from partners import service as partners_service
from partners.models import User
from portal import realtime, ui
from portal.db import get_session
from portal.errors import ValidationFailed
from portal.mail import send_mail
from portal.ui import gettext as _

bp = Blueprint("auth", __name__)


def _login_page(
    step: str, email: str, next_url: str | None, error: str | None = None, status: int = 200
) -> ResponseReturnValue:
    return (
        render_template("auth/login.html", step=step, email=email, next_url=next_url, error=error),
        status,
    )


def _sso_redirect(provider: IdentityProvider, email: str, next_url: str | None) -> Response:
    return redirect(
        url_for(
            "sso.start",
            org_slug=provider.organization.slug,
            login_hint=email or None,
            next=next_url,
        )
    )


def _begin_session(user: User, *, pending: bool) -> None:
    secret = service.start_session(
        get_session(),
        user,
        dt.timedelta(hours=current_app.config["SESSION_LIFETIME_HOURS"]),
        request.user_agent.string,
        method="password",
        second_factor_pending=pending,
    )
    # A fresh session cookie: nothing from before the sign-in carries over.
    session.clear()
    session["sid"] = secret


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Sign-in starts with the email address: a domain with single sign-on goes to its
    provider, every other address gets the password step."""
    next_url = ui.safe_next(request.values.get("next"))
    if request.method == "GET":
        return _login_page("email", "", next_url)
    db = get_session()
    email = ui.form_text("email").lower()
    if not email:
        return _login_page("email", "", next_url, _("Enter your email address."), 422)
    provider = sso.provider_for_email(db, email)
    wants_password = request.form.get("method") == "password"
    if "password" not in request.form:
        if provider is not None and not (wants_password and provider.allow_local_passwords):
            return _sso_redirect(provider, email, next_url)
        return _login_page("password", email, next_url)
    if provider is not None and not provider.allow_local_passwords:
        return _sso_redirect(provider, email, next_url)
    profile = current_app.config["ARGON2_PROFILE"]
    user = service.authenticate(db, email, request.form.get("password", ""), profile)
    if user is not None and not sso.local_password_allowed(db, user):
        # The organisation signs in through its provider only, whatever the email domain.
        user = None
    if user is None:
        audit.record_now(db, "login", email=email, method="password", success=False)
        return _login_page("password", email, next_url, _("Email or password is wrong."), 401)
    pending = user.totp_enabled or user.organization.require_totp
    _begin_session(user, pending=pending)
    detail = "second factor owed" if pending else ""
    audit.record_now(db, "login", user=user, method="password", detail=detail)
    if pending:
        session["next"] = next_url
        return redirect(url_for("auth.second_factor"))
    login_user(user)
    return redirect(next_url or url_for("portal.inbox"))


def _pending_session() -> UserSession | None:
    secret = session.get("sid")
    if not secret:
        return None
    idle = dt.timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    row = service.live_session(get_session(), secret, idle)
    return row if row is not None and row.second_factor_pending else None


@bp.route("/login/second-factor", methods=["GET", "POST"])
def second_factor() -> ResponseReturnValue:
    """The TOTP step after the password; sets up the app first when the organisation
    requires a second factor and the user has none yet."""
    row = _pending_session()
    if row is None:
        return redirect(url_for("auth.login"))
    db = get_session()
    user = row.user
    setup = not user.totp_enabled
    if setup and "totp_setup" not in session:
        session["totp_setup"] = accounts.new_totp_secret()
    secret = str(session.get("totp_setup", ""))
    error = None
    status = 200
    if request.method == "POST":
        code = request.form.get("code", "")
        if setup:
            try:
                accounts.enable_totp(db, user, secret, code)
                ok = True
            except ValidationFailed:
                ok = False
        else:
            ok = accounts.verify_totp(db, user, code)
        if ok:
            service.complete_second_factor(db, row)
            next_url = ui.safe_next(session.pop("next", None))
            session.pop("totp_setup", None)
            login_user(user)
            return redirect(next_url or url_for("portal.inbox"))
        error = _("The code is not valid. Enter the current 6-digit code from your app.")
        status = 401
    return (
        render_template(
            "auth/second_factor.html",
            setup=setup,
            secret=secret if setup else None,
            uri=accounts.totp_uri(user, secret) if setup else None,
            error=error,
        ),
        status,
    )


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> ResponseReturnValue:
    """Ask for a reset link; the answer is the same whether or not the account exists."""
    if request.method == "GET":
        return render_template("auth/forgot.html", sent=False, email="")
    db = get_session()
    email = ui.form_text("email").lower()
    lifetime = dt.timedelta(hours=current_app.config["PASSWORD_RESET_HOURS"])
    provider = sso.provider_for_email(db, email) if email else None
    found = None
    if email and (provider is None or provider.allow_local_passwords):
        found = accounts.request_password_reset(db, email, lifetime)
    if found is not None:
        user, secret = found
        link = url_for("auth.reset_password", token=secret, _external=True)
        send_mail(
            user.email,
            _("Reset your Wertkette password"),
            _(
                "Hello %(name)s,\n\nopen this link within %(hours)d hours to choose a new "
                "password:\n\n%(link)s\n\nIf you did not ask for it, ignore this mail.",
                name=user.name,
                hours=current_app.config["PASSWORD_RESET_HOURS"],
                link=link,
            ),
        )
    # 202 for every address: throttling counts each request without revealing accounts.
    return render_template("auth/forgot.html", sent=True, email=email), 202


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> ResponseReturnValue:
    db = get_session()
    reset = accounts.valid_reset(db, token)
    if reset is None:
        message = _("This link is not valid any more. Ask for a new one.")
        return render_template("error.html", message=message, status=404), 404
    form = ui.FormState()
    if request.method == "POST":
        try:
            accounts.reset_password(
                db,
                reset,
                request.form.get("new_password", ""),
                request.form.get("confirm", ""),
                profile=current_app.config["ARGON2_PROFILE"],
            )
        except ValidationFailed as exc:
            form = ui.FormState(errors=ui.service_errors(exc), message=exc.message)
            return render_template("auth/reset.html", form=form, token=token), 422
        flash(_("Your password was changed. Please sign in."), "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form, token=token)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """Sign out here and, for a single sign-on session, at the provider too."""
    secret = session.get("sid")
    provider_logout = None
    db = get_session()
    if secret:
        row = service.live_session(db, secret, dt.timedelta(days=365))
        if row is not None:
            audit.record(db, "logout", user=row.user, method=row.method)
            if row.method == "sso":
                provider_logout = sso.logout_redirect(
                    db, row, url_for("auth.login", _external=True)
                )
        service.end_session(db, secret)
        realtime.disconnect_sockets(current_app, credential="session:" + digest(secret))
    logout_user()
    session.clear()
    flash(_("You have been signed out."), "info")
    return redirect(provider_logout or url_for("auth.login"))


def _profile_page(
    *,
    new_token: str | None = None,
    token_form: ui.FormState | None = None,
    password_form: ui.FormState | None = None,
    totp_form: ui.FormState | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    tokens = service.list_api_tokens(get_session(), current_user)
    if not current_user.totp_enabled and "totp_setup" not in session:
        session["totp_setup"] = accounts.new_totp_secret()
    return (
        render_template(
            "auth/profile.html",
            tokens=tokens,
            new_token=new_token,
            token_form=token_form or ui.FormState(),
            password_form=password_form or ui.FormState(),
            totp_form=totp_form or ui.FormState(),
            totp_secret=session.get("totp_setup"),
            sso_provider=sso.provider_of(get_session(), current_user.organization),
        ),
        status,
    )


@bp.post("/profile/password")
@login_required
def change_password() -> ResponseReturnValue:
    try:
        accounts.change_password(
            get_session(),
            current_user,
            request.form.get("current_password", ""),
            request.form.get("new_password", ""),
            request.form.get("confirm", ""),
            profile=current_app.config["ARGON2_PROFILE"],
            keep_session_hash=digest(str(session.get("sid", ""))),
        )
    except ValidationFailed as exc:
        form = ui.FormState(errors=ui.service_errors(exc), message=exc.message)
        return _profile_page(password_form=form, status=422)
    flash(_("Your password was changed; your other sessions have ended."), "success")
    return redirect(url_for("auth.profile"))


@bp.post("/profile/totp/enable")
@login_required
def enable_totp() -> ResponseReturnValue:
    secret = str(session.get("totp_setup", ""))
    try:
        accounts.enable_totp(get_session(), current_user, secret, request.form.get("code", ""))
    except ValidationFailed as exc:
        form = ui.FormState(errors=ui.service_errors(exc), message=exc.message)
        return _profile_page(totp_form=form, status=422)
    session.pop("totp_setup", None)
    flash(_("The second factor is on."), "success")
    return redirect(url_for("auth.profile") + "#second-factor")


@bp.post("/profile/totp/disable")
@login_required
def disable_totp() -> ResponseReturnValue:
    try:
        accounts.disable_totp(get_session(), current_user)
    except ValidationFailed as exc:
        flash(exc.message, "danger")
        return redirect(url_for("auth.profile"))
    flash(_("The second factor is off."), "info")
    return redirect(url_for("auth.profile") + "#second-factor")


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


@bp.post("/notifications/read")
@login_required
def read_notifications() -> ResponseReturnValue:
    from shared_records import notifications

    notifications.mark_all_read(get_session(), current_user)
    return redirect(ui.safe_next(request.form.get("next")) or url_for("portal.inbox"))
