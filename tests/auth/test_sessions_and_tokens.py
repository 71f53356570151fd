"""Sign-in, server-side sessions, CSRF and personal API tokens."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.support.api import Api
from tests.support.web import csrf_token, login


def test_session_sign_in_reaches_the_api(client: FlaskClient) -> None:
    """A signed-in browser session can read the API."""
    response = login(client, "sales@berger.example")
    assert response.status_code in (302, 303)
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    body = me.get_json()
    assert body["email"] == "sales@berger.example"
    assert body["role"] == "agent"
    assert body["organization"]["slug"] == "berger"
    assert set(body["organization"]) >= {"id", "name", "slug", "kind"}


def test_wrong_password_and_unknown_user_get_the_same_answer(client: FlaskClient) -> None:
    wrong = login(client, "sales@berger.example", "nope")
    unknown = login(client, "nobody@berger.example", "nope")
    assert wrong.status_code == unknown.status_code == 401
    assert client.get("/api/v1/me").status_code == 401


def test_unsafe_session_requests_need_the_csrf_header(client: FlaskClient, api: Api) -> None:
    """Cookie-authenticated writes without X-CSRFToken are refused and change nothing."""
    login(client, "agent@nordwerk.example")
    before = api.query("SELECT count(*) FROM customers")[0][0]
    refused = client.post("/api/v1/customers", json={"name": "Ohne Token"})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "csrf_failed"
    assert api.query("SELECT count(*) FROM customers")[0][0] == before
    token = csrf_token(client, "/login")
    accepted = client.post(
        "/api/v1/customers", json={"name": "Mit Token"}, headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 201, accepted.get_data(as_text=True)


def test_bearer_requests_need_no_csrf(api: Api) -> None:
    answer = api("agent@nordwerk.example").post("/customers", {"name": "Per Token"})
    assert answer.status == 201


def test_cookie_replayed_after_logout_is_dead(app: Flask) -> None:
    """A session cookie captured before sign-out does not work after it (server-side
    sessions)."""
    browser = app.test_client()
    login(browser, "sales@berger.example")
    cookie = browser.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    token = csrf_token(browser, "/login")
    browser.post("/logout", data={"csrf_token": token})
    assert browser.get("/api/v1/me").status_code == 401
    attacker = app.test_client()
    attacker.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie.value)
    assert attacker.get("/api/v1/me").status_code == 401


def _deactivate(app: Flask, email: str) -> None:
    from partners.models import User
    from partners.service import set_user_active
    from portal.db import get_session

    with app.test_request_context():
        session = get_session()
        admin_email = "admin@berger.example"
        admin = session.scalars(sa.select(User).where(User.email == admin_email)).one()
        target = session.scalars(sa.select(User).where(User.email == email)).one()
        set_user_active(session, admin, target.id, False)


def test_deactivation_ends_sessions_and_tokens_at_once(app: Flask, api: Api) -> None:
    """A deactivated user loses its open sessions and API tokens immediately and cannot sign
    in again."""
    browser = app.test_client()
    login(browser, "sales@berger.example")
    token_user = api("sales@berger.example")
    assert browser.get("/api/v1/me").status_code == 200
    assert token_user.get("/me").status == 200
    _deactivate(app, "sales@berger.example")
    assert browser.get("/api/v1/me").status_code == 401
    assert token_user.get("/me").status == 401
    assert login(app.test_client(), "sales@berger.example").status_code == 401


def test_revoked_and_invalid_tokens_are_401(api: Api) -> None:
    user = api("agent@nordwerk.example")
    created = user.post("/me/tokens", {"name": "Integration"})
    assert created.status == 201
    secret = created.body["token"]
    other = api("agent@nordwerk.example")
    other_token = other.token
    other.token = secret
    assert other.get("/me").status == 200
    listed = user.get("/me/tokens").body["items"]
    assert all("token" not in t for t in listed)
    assert user.delete(f"/me/tokens/{created.body['id']}").status == 204
    assert other.get("/me").status == 401
    other.token = "wk_not-a-real-token"
    answer = other.get("/me")
    assert answer.status == 401
    assert answer.body["error"]["code"] == "unauthorized"
    other.token = other_token


def test_tokens_are_stored_hashed(api: Api) -> None:
    secret = api("agent@nordwerk.example").token
    rows = api.query("SELECT token_hash FROM api_tokens")
    assert rows and all(secret not in row[0] for row in rows)


def test_api_without_credentials_is_401_json(client: FlaskClient) -> None:
    for path in ("/api/v1/me", "/api/v1/cases", "/api/v1/customers/1"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"


def test_openapi_is_generated_from_the_endpoints(client: FlaskClient) -> None:
    """The OpenAPI document lists every API route with its request schema."""
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path, method in [
        ("/api/v1/me", "get"),
        ("/api/v1/organizations", "get"),
        ("/api/v1/customers", "post"),
        ("/api/v1/customers/{customer_id}", "patch"),
        ("/api/v1/cases", "get"),
        ("/api/v1/cases/{case_id}", "patch"),
        ("/api/v1/cases/{case_id}/timeline", "post"),
        ("/api/v1/cases/{case_id}/shares", "post"),
        ("/api/v1/cases/{case_id}/shares/{organization_id}", "delete"),
        ("/api/v1/cases/{case_id}/claim", "post"),
        ("/api/v1/cases/{case_id}/release", "post"),
        ("/api/v1/cases/{case_id}/handover", "post"),
    ]:
        assert method in paths[path], (path, method)
    patch = paths["/api/v1/cases/{case_id}"]["patch"]
    ref = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "version" in schema["required"]
    assert schema.get("additionalProperties") is False
    from flask import current_app  # noqa: F401 - the app context is the client's

    rules = {
        r.rule
        for r in client.application.url_map.iter_rules()
        if r.rule.startswith("/api/v1/") and r.endpoint != "api.openapi_json"
    }
    documented = {p.replace("{", "<").replace("}", ">") for p in paths}
    normalised = {r.replace("<int:", "<") for r in rules}
    assert normalised == documented
