"""Throttling of sign-in and password-reset attempts with Flask-Limiter, per account and per
client address. Only failed attempts count, so a person who types the right password is never
slowed down, and locking one account does not lock others.

Each app gets its own limiter; counters live in Redis when PORTAL_REDIS_URL is set (shared by
every server process), else in memory.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# Views whose failed attempts count, and the status codes that mean "failed".
THROTTLED_VIEWS = {
    "auth.login": (401,),
    "auth.second_factor": (401,),
    "auth.forgot_password": (202,),
    "oauth.token": (401,),
}


def _account_key() -> str:
    email = (request.form.get("email") or "").strip().lower()
    if request.endpoint == "oauth.token":
        client = request.authorization.username if request.authorization else None
        return "client:" + str(client or request.form.get("client_id") or "")[:80]
    if not email:
        # The second-factor step has no email field; its session stands for the account.
        from flask import session

        email = "session:" + str(session.get("sid", ""))[:16]
    return f"account:{email}"


def _failed(statuses: tuple[int, ...]):  # type: ignore[no-untyped-def]
    def deduct(response: Response) -> bool:
        return response.status_code in statuses

    return deduct


def init_throttling(app: Flask) -> Limiter:
    """Wrap the sign-in views of `app` with per-account and per-address limits."""
    redis_url = app.config.get("REDIS_URL") or ""
    limiter = Limiter(
        key_func=get_remote_address,
        storage_uri=redis_url or "memory://",
        strategy="moving-window",
        key_prefix=app.config.get("LIMITER_KEY_PREFIX", "wertkette"),
        headers_enabled=False,
    )
    limiter.init_app(app)
    for endpoint, statuses in THROTTLED_VIEWS.items():
        view: Any = app.view_functions.get(endpoint)
        if view is None:
            continue
        deduct = _failed(statuses)
        view = limiter.limit(
            lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
            key_func=_account_key,
            methods=["POST"],
            deduct_when=deduct,
        )(view)
        view = limiter.limit(
            lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
            methods=["POST"],
            deduct_when=deduct,
        )(view)
        app.view_functions[endpoint] = view
    app.extensions["portal_limiter"] = limiter
    return limiter
