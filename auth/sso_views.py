"""Single sign-on endpoints: start an organisation's sign-in (`/login/<org-slug>`), the
provider's callback (`/auth/callback/<org-slug>`, one redirect URI per organisation) and the
back-channel logout endpoint (`POST /auth/backchannel-logout/<org-slug>`); after the portal's
sign-out, `/logout/provider/<token>` forwards to the provider's logout page. A signed-in
person links an existing account to their company account with `POST /login/sso/link`.

The way to the provider goes through a small page that forwards the browser (see
`continue_to`), because the sign-in and sign-out forms may not redirect to another origin.

The pending sign-in (state, nonce, PKCE verifier, organisation, where to go next) is kept in
the signed session cookie, keyed by its state: a state is used once, only for the
organisation it was made for, and only in the browser that started the sign-in.
"""

# Flask-Login ships no type hints; its decorators would make every view untyped.
# mypy: disable-error-code="untyped-decorator"

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user

from auth import oidc, sso
from auth import service as auth_service
from auth.models import IdentityProvider
from portal import ui
from portal.db import get_session
from portal.extensions import csrf
from portal.ui import gettext as _

bp = Blueprint("sso", __name__)

PENDING_KEY = "sso_pending"
PENDING_MAX = 5  # sign-ins started in one browser and not finished yet
PENDING_SECONDS = 600  # a sign-in must come back within ten minutes


def _error(message: str, status: int = 400) -> ResponseReturnValue:
    return render_template("error.html", message=message, status=status), status


def continue_to(target: str, title: str) -> Response:
    """A page that sends the browser on to the provider (Refresh header, plus a link).

    Sign-in and sign-out start with a form sent to the portal; the Content-Security-Policy
    (form-action 'self') makes browsers refuse any redirect of that submission to another
    origin, so the way to the provider goes through this page instead of a 302."""
    page = render_template("auth/sso_continue.html", target=target, title=title)
    response = make_response(page, 200)
    response.headers["Refresh"] = f"0; url={target}"
    response.headers["Cache-Control"] = "no-store"
    return response


def _pending() -> dict[str, dict[str, Any]]:
    value = session.get(PENDING_KEY)
    if not isinstance(value, dict):
        return {}
    now = time.time()
    return {
        state: flow
        for state, flow in value.items()
        if isinstance(flow, dict) and now - float(flow.get("at", 0)) < PENDING_SECONDS
    }


def _remember(state: str, flow: dict[str, Any]) -> None:
    pending = _pending()
    pending[state] = flow
    newest = sorted(pending.items(), key=lambda item: float(item[1]["at"]))[-PENDING_MAX:]
    session[PENDING_KEY] = dict(newest)


def _take(state: str) -> dict[str, Any] | None:
    """The pending sign-in of this state, removed for good (a state works once)."""
    pending = _pending()
    flow = pending.pop(state, None) if state else None
    session[PENDING_KEY] = pending
    return flow


def _login_hint(value: str | None) -> str | None:
    if not value:
        return None
    hint = value.strip()
    if len(hint) > 254 or "@" not in hint or any(ord(ch) < 32 for ch in hint):
        return None
    return hint


def _unreachable_message() -> str:
    return _(
        "Your organisation's identity provider cannot be reached or is not set up correctly. "
        "Please try again later or tell your administrator."
    )


def _unverified_message() -> str:
    return _(
        "The answer of your identity provider could not be verified, so nobody was signed "
        "in. Please start the sign-in again."
    )


@bp.get("/login/<org_slug>", endpoint="start")
def start(org_slug: str) -> ResponseReturnValue:
    """Send the browser to the organisation's provider (authorization code flow + PKCE)."""
    db = get_session()
    provider = sso.enabled_provider_for_slug(db, org_slug)
    if provider is None:
        return _error(_("This organisation does not sign in with single sign-on."), 404)
    hint = _login_hint(request.args.get("login_hint"))
    try:
        metadata = sso.metadata_cache().discovery(provider.issuer)
    except oidc.OidcError as exc:
        current_app.logger.warning("SSO start for %s failed: %s", org_slug, exc)
        sso.record_failure(db, provider.organization_id, exc.reason, email=hint)
        return _error(_unreachable_message(), 400)
    return _go_to_provider(
        provider, org_slug, metadata, hint=hint, next_url=ui.safe_next(request.args.get("next"))
    )


def _go_to_provider(
    provider: IdentityProvider,
    org_slug: str,
    metadata: dict[str, Any],
    *,
    hint: str | None,
    next_url: str | None,
    link: int | None = None,
) -> Response:
    flow = oidc.PendingFlow.new()
    _remember(
        flow.state,
        {
            "org": org_slug,
            "provider": provider.id,
            "issuer": provider.issuer,
            "nonce": flow.nonce,
            "verifier": flow.code_verifier,
            "next": next_url,
            "hint": hint,
            "link": link,
            "at": time.time(),
        },
    )
    url = oidc.authorization_url(
        metadata,
        client_id=provider.client_id,
        redirect_uri=sso.redirect_uri(org_slug),
        flow=flow,
        login_hint=hint,
    )
    return continue_to(url, _("Taking you to your organisation's sign-in …"))


@bp.post("/login/sso/link", endpoint="link")
@login_required
def link() -> ResponseReturnValue:
    """A signed-in person links their company account to their portal account (for accounts
    that existed before single sign-on: they are never linked by email)."""
    db = get_session()
    org = current_user.organization
    provider = sso.enabled_provider_for_slug(db, org.slug)
    if provider is None:
        return _error(_("This organisation does not sign in with single sign-on."), 404)
    try:
        metadata = sso.metadata_cache().discovery(provider.issuer)
    except oidc.OidcError as exc:
        sso.record_failure(db, provider.organization_id, exc.reason, email=current_user.email)
        return _error(_unreachable_message(), 400)
    return _go_to_provider(
        provider, org.slug, metadata, hint=current_user.email, next_url=None, link=current_user.id
    )


@bp.get("/logout/provider/<token>", endpoint="leave")
def leave(token: str) -> ResponseReturnValue:
    """On to the provider's logout page (RP-initiated logout) after the portal's sign-out;
    `token` is the signed end-session URL made by auth.sso.logout_redirect."""
    target = sso.end_session_target(token)
    if target is None:
        return redirect(url_for("auth.login"))
    return continue_to(target, _("Signing you out at your organisation's provider …"))


class _Refusal(Exception):
    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message
        self.status = status


def _check_response(
    provider: IdentityProvider, org_slug: str, flow: dict[str, Any] | None
) -> dict[str, Any]:
    """The checks on the authorization response before anything is redeemed."""
    if flow is None:
        raise _Refusal(
            "state_unknown",
            _(
                "This sign-in has expired, was already used or was started in another "
                "browser. Please sign in again."
            ),
        )
    if flow.get("org") != org_slug:
        # Mix-up: an answer meant for one organisation's sign-in arrives at another's.
        raise _Refusal(
            "state_other_organization",
            _("This answer belongs to another organisation's sign-in and was refused."),
        )
    if flow.get("provider") != provider.id or flow.get("issuer") != provider.issuer:
        raise _Refusal(
            "provider_changed",
            _("The single sign-on settings changed during your sign-in. Please sign in again."),
        )
    iss = request.args.get("iss")
    if iss is not None and iss != provider.issuer:
        raise _Refusal(
            "iss_mismatch",
            _("This answer did not come from your organisation's identity provider."),
        )
    error = request.args.get("error")
    if error:
        if error == "access_denied":
            message = _("The sign-in was cancelled at your identity provider.")
        else:
            message = _(
                "Your identity provider did not sign you in (%(error)s).", error=error[:100]
            )
        raise _Refusal(f"provider_error: {error[:100]}", message)
    if not request.args.get("code"):
        raise _Refusal("code_missing", _unverified_message())
    try:
        metadata = sso.metadata_cache().discovery(provider.issuer)
    except oidc.OidcError as exc:
        raise _Refusal(exc.reason, _unreachable_message()) from exc
    if iss is None and metadata.get("authorization_response_iss_parameter_supported") is True:
        raise _Refusal(
            "iss_missing",
            _("This answer did not come from your organisation's identity provider."),
        )
    return metadata


@bp.get("/auth/callback/<org_slug>", endpoint="callback")
def callback(org_slug: str) -> ResponseReturnValue:
    """The provider's answer: check it, redeem the code, verify the ID token, sign in."""
    db = get_session()
    provider = sso.enabled_provider_for_slug(db, org_slug)
    if provider is None:
        return _error(_("This organisation does not sign in with single sign-on."), 404)
    flow = _take(request.args.get("state", ""))
    hint = flow.get("hint") if flow else None
    try:
        metadata = _check_response(provider, org_slug, flow)
        assert flow is not None
        try:
            token = oidc.exchange_code(
                metadata,
                client_id=provider.client_id,
                client_secret=sso.client_secret(provider),
                redirect_uri=sso.redirect_uri(org_slug),
                code=request.args["code"],
                code_verifier=str(flow["verifier"]),
            )
            raw_id_token = str(token["id_token"])
            claims = oidc.verify_id_token(
                raw_id_token,
                issuer=provider.issuer,
                client_id=provider.client_id,
                nonce=str(flow["nonce"]),
                metadata=metadata,
                cache=sso.metadata_cache(),
            )
        except oidc.OidcError as exc:
            current_app.logger.warning("SSO callback for %s refused: %s", org_slug, exc)
            raise _Refusal(exc.reason, _unverified_message()) from exc
        except sso.SsoRefused as exc:
            raise _Refusal(exc.reason, exc.message, exc.status) from exc
    except _Refusal as refusal:
        sso.record_failure(db, provider.organization_id, refusal.reason, email=hint)
        return _error(refusal.message, refusal.status)
    link_to = None
    if flow.get("link") is not None:
        # Linking needs the same person still signed in to the portal in this browser.
        if not current_user.is_authenticated or current_user.id != flow["link"]:
            sso.record_failure(db, provider.organization_id, "link_session_gone", email=hint)
            return _error(_("Please sign in to the portal again, then link your account."))
        link_to = current_user._get_current_object()
    try:
        user, secret = sso.complete_sign_in(
            db,
            provider,
            claims,
            raw_id_token,
            lifetime=dt.timedelta(hours=current_app.config["SESSION_LIFETIME_HOURS"]),
            user_agent=request.user_agent.string,
            link_to=link_to,
        )
    except sso.SsoRefused as exc:  # audited by the service
        return _error(exc.message, exc.status)
    # A fresh session cookie: nothing from before the sign-in carries over, and a session
    # this browser had before (another account) ends.
    previous = session.get("sid")
    if previous:
        auth_service.end_session(db, previous)
    session.clear()
    session["sid"] = secret
    login_user(user)
    return redirect(ui.safe_next(flow.get("next")) or url_for("portal.inbox"))


@bp.post("/auth/backchannel-logout/<org_slug>", endpoint="backchannel_logout")
@csrf.exempt
def backchannel_logout(org_slug: str) -> ResponseReturnValue:
    """OpenID Connect Back-Channel Logout: the provider names a user (sub) and/or one of its
    sessions (sid); their portal sessions from this provider end. Answers 200 or 400."""
    db = get_session()
    org = sso.organization_by_slug(db, org_slug)
    provider = sso.provider_of(db, org) if org is not None else None
    token = request.form.get("logout_token", "")
    headers = {"Cache-Control": "no-store"}
    if provider is None or not token:
        body = {"error": "invalid_request", "error_description": "unknown organisation or no token"}
        return jsonify(body), 400, headers
    try:
        ended = sso.backchannel_logout(db, provider, token)
    except oidc.OidcError as exc:
        current_app.logger.warning("back-channel logout for %s refused: %s", org_slug, exc)
        sso.record_failure(
            db, provider.organization_id, f"back-channel logout: {exc.reason}", kind="logout"
        )
        return jsonify({"error": "invalid_request", "error_description": exc.reason}), 400, headers
    return jsonify({"ended_sessions": ended}), 200, headers
