"""Web plumbing shared by every blueprint: sign-in loaders, locale, CSRF, security headers,
error pages and JSON errors, template helpers and the front-end libraries from npm."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask_babel import format_datetime, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, generate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers.response import Response as WerkzeugResponse

from auth import service as auth_service
from auth.clients import user_for_oauth_token
from partners.models import User
from portal.config import PROJECT_ROOT
from portal.db import get_session
from portal.errors import PortalError, Unauthorized
from shared_records.normalize import format_phone

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Only these folders of node_modules are served (no source maps or package metadata).
VENDOR_DIRS = ("bootstrap/dist/", "bootstrap-icons/font/", "socket.io-client/dist/")


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def init_app(app: Flask) -> None:
    from portal.extensions import babel, csrf, login_manager

    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = None  # server-side sessions replace it
    login_manager.login_view = "auth.login"
    babel.init_app(app, locale_selector=_select_locale)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        # A request with an Authorization header authenticates by that header alone.
        if "Authorization" in request.headers:
            return None
        secret = session.get("sid")
        if not secret:
            return None
        idle = dt.timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
        user = auth_service.user_for_session(get_session(), secret, idle)
        if user is None or str(user.id) != user_id:
            session.clear()
            return None
        g.auth_method = "session"
        return user

    @login_manager.request_loader
    def load_user_from_request(_request: Any) -> User | None:
        token = bearer_token()
        if token is None:
            return None
        user = auth_service.user_for_api_token(get_session(), token)
        if user is not None:
            g.auth_method = "token"
            return user
        # Client tokens authenticate API requests only: on the server-rendered pages they are
        # worth nothing, so a client never reaches a person's pages (e.g. token creation).
        client = user_for_oauth_token(get_session(), token) if is_api_request() else None
        if client is None:
            return None
        g.auth_method = "client"
        g.auth_scopes = client[1]
        return client[0]

    @login_manager.unauthorized_handler
    def unauthorized() -> Response | WerkzeugResponse:
        if is_api_request():
            return _json_error(Unauthorized(_("Sign in or send a valid bearer token.")))
        flash(_("Please sign in."), "info")
        # After signing in, come back to the page, never to a POST-only URL.
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("auth.login", next=target))

    @app.before_request
    def csrf_unless_bearer() -> None:
        # Bearer requests carry no ambient credentials, so they need no CSRF token; every
        # other unsafe request does (form field csrf_token or header X-CSRFToken).
        if request.method in SAFE_METHODS or "Authorization" in request.headers:
            return
        # Views marked with csrf.exempt (POST /oauth/token: no cookie, the client secret is
        # the credential) are skipped.
        csrf.protect(apply_exemptions=True)

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
            "base-uri 'self'",
        )
        if request.path.startswith("/api/") or current_user.is_authenticated:
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    _register_error_handlers(app)
    _register_template_helpers(app)

    @app.get("/vendor/<path:filename>")
    def vendor(filename: str) -> Response:
        if not filename.startswith(VENDOR_DIRS) or filename.endswith(".map"):
            abort(404)
        return send_from_directory(PROJECT_ROOT / "node_modules", filename, max_age=86400)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})


def _select_locale() -> str:
    user = current_user
    if user and user.is_authenticated and user.locale:
        return str(user.locale)
    best = request.accept_languages.best_match(["de", "en"]) if request else None
    if best:
        return best
    return "en" if request and is_api_request() else "de"


def _json_error(error: PortalError) -> Response:
    from portal.api import error_response

    return error_response(error)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(PortalError)
    def portal_error(error: PortalError) -> Any:
        get_session().rollback()
        if is_api_request():
            return _json_error(error)
        return render_template("error.html", message=error.message, status=error.status), (
            error.status
        )

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> Any:
        message = _("The form has expired or lacks its security token. Reload and try again.")
        if is_api_request():
            return _json_error(PortalError(message, code="csrf_failed"))
        return render_template("error.html", message=message, status=400), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        status = error.code or 500
        if is_api_request():
            err = PortalError(error.description or error.name, code=_HTTP_CODES.get(status))
            err.status = status
            response = _json_error(err)
            if status == 405 and error.get_response().headers.get("Allow"):
                response.headers["Allow"] = error.get_response().headers["Allow"]
            return response
        messages = {
            404: _("This page does not exist, or you may not see it."),
            413: _("The upload is too large."),
            429: _("Too many attempts. Please wait a few minutes and try again."),
        }
        message = messages.get(status, error.description or error.name)
        return render_template("error.html", message=message, status=status), status

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Any:
        app.logger.exception("unhandled error")
        if app.config.get("TESTING") and app.config.get("PROPAGATE_UNEXPECTED", True):
            raise error
        message = _("Something went wrong on our side. Nothing was saved.")
        if is_api_request():
            err = PortalError(message, code="internal_error")
            err.status = 500
            return _json_error(err)
        return render_template("error.html", message=message, status=500), 500


def _register_template_helpers(app: Flask) -> None:
    # Globals (not context) so that imported macros see them too.
    app.jinja_env.globals.update(
        csrf_token=generate_csrf, current_locale=get_locale, claim_active=_claim_active
    )

    @app.context_processor
    def endpoints() -> dict[str, Any]:
        # Lets templates link to optional pages only where their blueprint is registered.
        return {
            "config_endpoints": app.view_functions,
            "feed_last_id": _feed_last_id,
            "mentions_for_header": _mentions_for_header,
        }

    @app.template_filter("when")
    def when(value: dt.datetime | None, style: str = "short") -> str:
        if value is None:
            return ""
        return str(format_datetime(value, style))

    @app.template_filter("phone")
    def phone(value: str) -> str:
        return format_phone(value)


def _feed_last_id() -> int:
    """The newest activity id when a page is rendered: the live client replays from here."""
    from shared_records.feed import latest_id

    return latest_id(get_session())


def _claim_active(case: Any) -> bool:
    from portal.db import utcnow
    from shared_records.policy import claim_active
    from shared_records.service import claim_idle

    return claim_active(case, claim_idle(), utcnow())


def _mentions_for_header() -> dict[str, Any]:
    from shared_records import notifications

    session = get_session()
    return {
        "unread": notifications.unread_count(session, current_user),
        "latest": notifications.latest(session, current_user, limit=10),
    }
