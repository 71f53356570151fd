"""Local accounts that hold up: two-step sign-in, password rules, change and reset by mail,
throttling (in memory and in Redis), session timeouts, the __Host- cookie and TOTP."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import dispose_app, make_app
from tests.support.web import csrf_token, login

DEALER = "sales@berger.example"


def _form(client: FlaskClient, path: str, data: dict[str, str], page: str = "/login") -> object:
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page)})


def _sql(app: Flask, statement: str, **params: object) -> list[tuple[object, ...]]:
    from portal.db import get_session

    with app.app_context():
        session = get_session()
        result = session.execute(sa.text(statement), params)
        rows = [tuple(r) for r in result] if result.returns_rows else []
        session.commit()
        return rows


def test_sign_in_starts_with_the_email_address(client: FlaskClient) -> None:
    """POST /login with only the email shows the password step; then email+password signs in."""
    page = client.get("/login").get_data(as_text=True)
    assert 'name="email"' in page
    assert 'name="password"' not in page
    step = _form(client, "/login", {"email": DEALER})
    assert step.status_code == 200
    body = step.get_data(as_text=True)
    assert 'name="password"' in body
    assert DEALER in body
    done = login(client, DEALER)
    assert done.status_code == 302
    assert client.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("kurz", "at least 8 characters"),
        ("passwort123", "too common"),
        ("Sommer2024!", "too common"),
        ("x" * 129, "at most 128 characters"),
        ("sales@berger.example", "name or email"),
    ],
)
def test_weak_new_passwords_are_refused(client: FlaskClient, password: str, reason: str) -> None:
    """ASVS 5: at least 8, up to 128, no common or personal passwords; nothing changes."""
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(client, DEALER)
    answer = _form(
        client,
        "/profile/password",
        {"current_password": "demo", "new_password": password, "confirm": password},
        page="/profile",
    )
    assert answer.status_code == 422
    assert reason in answer.get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/profile")})
    assert login(client, DEALER).status_code == 302


def test_long_passphrases_without_composition_rules_are_fine(client: FlaskClient) -> None:
    login(client, DEALER)
    phrase = "korrekt pferd batterie heftklammer"
    answer = _form(
        client,
        "/profile/password",
        {"current_password": "demo", "new_password": phrase, "confirm": phrase},
        page="/profile",
    )
    assert answer.status_code == 302
    assert client.get("/api/v1/me").status_code == 200, "the current session stays"


def test_password_change_ends_other_sessions(app: Flask) -> None:
    """Changing the password ends every other session of the user; the old password fails."""
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, DEALER)
    login(phone, DEALER)
    wrong = _form(
        laptop,
        "/profile/password",
        {
            "current_password": "nope",
            "new_password": "ein neues langes",
            "confirm": "ein neues langes",
        },
        page="/profile",
    )
    assert wrong.status_code == 422
    ok = _form(
        laptop,
        "/profile/password",
        {
            "current_password": "demo",
            "new_password": "ein neues langes",
            "confirm": "ein neues langes",
        },
        page="/profile",
    )
    assert ok.status_code == 302
    assert laptop.get("/api/v1/me").status_code == 200
    assert phone.get("/api/v1/me").status_code == 401
    assert login(app.test_client(), DEALER, "demo").status_code == 401
    assert login(app.test_client(), DEALER, "ein neues langes").status_code == 302


def test_password_reset_by_mailed_link(app: Flask) -> None:
    """A reset link arrives by mail, sets a new password once, and ends every session;
    unknown addresses get the same answer and no mail."""
    outbox = app.extensions.setdefault("mail_outbox", [])
    signed_in = app.test_client()
    login(signed_in, DEALER)
    client = app.test_client()
    unknown = _form(client, "/password/forgot", {"email": "niemand@berger.example"})
    known = _form(client, "/password/forgot", {"email": DEALER})
    assert unknown.status_code == known.status_code == 202
    assert unknown.get_data(as_text=True).count("reset-sent") == 1
    assert len(outbox) == 1
    message = outbox[0]
    assert message["To"] == DEALER
    link = re.search(r"http://[^\s]+/password/reset/[\w-]+", message.get_content())
    assert link
    path = link.group(0).split("localhost", 1)[-1]
    assert client.get(path).status_code == 200
    mismatch = _form(
        client, path, {"new_password": "neues passwort hier", "confirm": "x"}, page=path
    )
    assert mismatch.status_code == 422
    done = _form(
        client,
        path,
        {"new_password": "neues passwort hier", "confirm": "neues passwort hier"},
        page=path,
    )
    assert done.status_code == 302
    assert signed_in.get("/api/v1/me").status_code == 401
    assert client.get(path).status_code == 404, "the link works once"
    assert login(app.test_client(), DEALER, "neues passwort hier").status_code == 302
    stored = _sql(app, "SELECT token_hash FROM password_resets")
    assert stored
    assert path.rsplit("/", 1)[1] not in str(stored)


def test_expired_reset_link_is_refused(app: Flask) -> None:
    outbox = app.extensions.setdefault("mail_outbox", [])
    client = app.test_client()
    _form(client, "/password/forgot", {"email": DEALER})
    path = "/password/reset/" + outbox[-1].get_content().split("/password/reset/")[1].split()[0]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    _sql(app, "UPDATE password_resets SET expires_at = :t", t=past)
    assert client.get(path).status_code == 404


def test_throttling_per_account_does_not_lock_out_others(demo_db_url: str) -> None:
    """After repeated failures one account is throttled (even with the right password), while
    another account from the same address still signs in."""
    app = make_app(
        demo_db_url, LOGIN_LIMIT_PER_ACCOUNT="3/minute", LOGIN_LIMIT_PER_ADDRESS="50/minute"
    )
    try:
        client = app.test_client()
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
        for _ in range(3):
            assert login(client, DEALER, "falsch").status_code == 401
        blocked = login(client, DEALER, "demo")
        assert blocked.status_code == 429
        assert "Too many attempts" in blocked.get_data(as_text=True)
        other = app.test_client()
        assert login(other, "agent@nordwerk.example", "demo").status_code == 302
        assert login(other, "agent@nordwerk.example", "demo").status_code == 302, (
            "successful sign-ins do not count"
        )
    finally:
        dispose_app(app)


def test_throttling_per_address(demo_db_url: str) -> None:
    """Many failures from one address throttle that address, not others."""
    app = make_app(
        demo_db_url, LOGIN_LIMIT_PER_ACCOUNT="50/minute", LOGIN_LIMIT_PER_ADDRESS="4/minute"
    )
    try:
        attacker = app.test_client()
        attacker.environ_base["REMOTE_ADDR"] = "10.9.9.9"
        for index in range(4):
            assert login(attacker, f"probe{index}@berger.example", "x").status_code == 401
        assert login(attacker, DEALER, "demo").status_code == 429
        colleague = app.test_client()
        colleague.environ_base["REMOTE_ADDR"] = "10.1.1.1"
        assert login(colleague, DEALER, "demo").status_code == 302
    finally:
        dispose_app(app)


@pytest.mark.redis
def test_throttling_counts_are_shared_through_redis(demo_db_url: str, redis_url: str) -> None:
    """With PORTAL_REDIS_URL two server processes (two apps here) share the counters."""
    prefix = "wk-test-" + secrets.token_hex(4)
    settings = {
        "REDIS_URL": redis_url,
        "LIMITER_KEY_PREFIX": prefix,
        "LOGIN_LIMIT_PER_ACCOUNT": "2/minute",
        "LOGIN_LIMIT_PER_ADDRESS": "50/minute",
    }
    first, second = make_app(demo_db_url, **settings), make_app(demo_db_url, **settings)
    try:
        assert login(first.test_client(), DEALER, "falsch").status_code == 401
        assert login(second.test_client(), DEALER, "falsch").status_code == 401
        assert login(first.test_client(), DEALER, "demo").status_code == 429
        assert login(second.test_client(), DEALER, "demo").status_code == 429
    finally:
        dispose_app(first)
        dispose_app(second)


def test_idle_and_absolute_timeouts(app: Flask) -> None:
    """A session idle for longer than the idle timeout, or past its lifetime, is over."""
    idle = app.test_client()
    login(idle, DEALER)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1)
    _sql(app, "UPDATE user_sessions SET last_seen_at = :t", t=old)
    assert idle.get("/api/v1/me").status_code == 401
    absolute = app.test_client()
    login(absolute, DEALER)
    assert absolute.get("/api/v1/me").status_code == 200
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    _sql(app, "UPDATE user_sessions SET expires_at = :t WHERE revoked_at IS NULL", t=past)
    assert absolute.get("/api/v1/me").status_code == 401


@pytest.fixture
def https_app(demo_db_url: str) -> Iterator[Flask]:
    app = make_app(demo_db_url, BASE_URL="https://portal.example")
    yield app
    dispose_app(app)


def test_host_prefixed_secure_cookie_outside_development(https_app: Flask) -> None:
    client = https_app.test_client()
    response = client.get("/login", base_url="https://portal.example")
    cookie = response.headers.get("Set-Cookie", "")
    assert cookie.startswith("__Host-wk_session=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Domain=" not in cookie
    assert "Path=/" in cookie


def test_new_session_identifier_at_sign_in(client: FlaskClient) -> None:
    """The cookie before sign-in is not the cookie after it (no session fixation)."""
    client.get("/login")
    before = client.get_cookie("wk_session")
    login(client, DEALER)
    after = client.get_cookie("wk_session")
    assert after is not None
    assert before is None or before.value != after.value


def _enable_totp(client: FlaskClient) -> str:
    page = client.get("/profile").get_data(as_text=True)
    secret = re.search(r'id="profile-totp-secret">([A-Z2-7]+)<', page)
    assert secret
    code = pyotp.TOTP(secret.group(1)).now()
    answer = _form(client, "/profile/totp/enable", {"code": code}, page="/profile")
    assert answer.status_code == 302
    return secret.group(1)


def test_totp_second_factor(app: Flask) -> None:
    """With TOTP on, the password alone does not sign in; a wrong code is refused and the
    right one completes the sign-in."""
    client = app.test_client()
    login(client, DEALER)
    secret = _enable_totp(client)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/profile")})
    step = login(client, DEALER)
    assert step.status_code == 302
    assert step.headers["Location"].endswith("/login/second-factor")
    assert client.get("/api/v1/me").status_code == 401, "no access before the second factor"
    wrong = _form(client, "/login/second-factor", {"code": "000000"}, page="/login/second-factor")
    assert wrong.status_code == 401
    right = _form(
        client,
        "/login/second-factor",
        {"code": pyotp.TOTP(secret).now()},
        page="/login/second-factor",
    )
    assert right.status_code == 302
    assert client.get("/api/v1/me").status_code == 200
    kinds = _sql(
        app, "SELECT method, success FROM auth_events WHERE kind = 'login' AND method = 'totp'"
    )
    assert (("totp", False) in kinds or ("totp", 0) in kinds) and len(kinds) == 2


def test_organisation_can_require_totp(app: Flask) -> None:
    """When the admin makes a second factor mandatory, a user without one sets it up during
    sign-in before reaching the portal."""
    admin = app.test_client()
    login(admin, "admin@berger.example")
    saved = _form(admin, "/admin/security", {"require_totp": "1"}, page="/admin")
    assert saved.status_code == 302
    client = app.test_client()
    login(client, DEALER)
    setup = client.get("/login/second-factor")
    page = setup.get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page)
    assert secret
    assert client.get("/api/v1/me").status_code == 401
    done = _form(
        client,
        "/login/second-factor",
        {"code": pyotp.TOTP(secret.group(1)).now()},
        page="/login/second-factor",
    )
    assert done.status_code == 302
    assert client.get("/api/v1/me").status_code == 200
    stored = _sql(app, "SELECT totp_secret_encrypted FROM users WHERE email = :e", e=DEALER)
    assert secret.group(1) not in str(stored[0][0]), "the seed is encrypted at rest"


def test_failed_sign_ins_are_audited(app: Flask) -> None:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    login(
        client,
        DEALER,
        "falsch",
    )
    login(client, DEALER)
    rows = _sql(
        app,
        "SELECT success, method, ip, user_agent, email FROM auth_events "
        "WHERE kind = 'login' ORDER BY id",
    )
    assert [bool(r[0]) for r in rows] == [False, True]
    assert rows[0][1] == "password"
    assert rows[0][2] == "192.0.2.7"
    assert rows[0][3]
    assert rows[0][4] == DEALER
