"""API clients with OAuth 2.0 client credentials: POST /oauth/token, scopes at the API, the
visibility of a client's organisation, revocation, expiry, hashed storage, the CLI and the
admin page."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.portal.test_cli import portal
from tests.support.api import Api, ApiUser
from tests.support.web import csrf_token, login

TOKEN_URL = "/oauth/token"


# --- helpers ----------------------------------------------------------------------------------


def make_client(
    app: Flask, scopes: str, org_admin: str = "admin@berger.example", name: str = "Telefonanlage"
) -> tuple[str, str]:
    """Create an API client as the organisation's admin: (client id, secret)."""
    from auth.clients import create_client
    from partners.models import User
    from portal.db import get_session

    with app.app_context():
        session = get_session()
        admin = session.scalars(sa.select(User).where(User.email == org_admin)).one()
        client, secret = create_client(session, admin, name, scopes)
        return client.client_id, secret


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def request_token(
    http: FlaskClient,
    client_id: str,
    secret: str,
    scope: str | None = None,
    *,
    form_auth: bool = False,
) -> TestResponse:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    if form_auth:
        data.update(client_id=client_id, client_secret=secret)
        return http.post(TOKEN_URL, data=data)
    return http.post(TOKEN_URL, data=data, headers=basic(client_id, secret))


def token_for(app: Flask, scopes: str, scope: str | None = None, **kwargs: Any) -> str:
    client_id, secret = make_client(app, scopes, **kwargs)
    response = request_token(app.test_client(), client_id, secret, scope)
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.get_json()["access_token"])


def as_client(app: Flask, token: str) -> ApiUser:
    return ApiUser(app.test_client(), token, "api-client")


def case_ids(user: ApiUser) -> list[int]:
    return sorted(item["id"] for item in user.all_pages("/cases"))


def revoke(app: Flask, client_id: str, admin_email: str = "admin@berger.example") -> None:
    from auth.clients import find_client, revoke_client
    from partners.models import User
    from portal.db import get_session

    with app.app_context():
        session = get_session()
        admin = session.scalars(sa.select(User).where(User.email == admin_email)).one()
        client = find_client(session, client_id)
        assert client is not None
        revoke_client(session, admin, client.id)


NEW_CASE = {"subject": "Rückruf Telefonanlage", "kind": "inquiry"}


def a_customer(api: Api) -> int:
    customers = api("sales@berger.example").get("/customers")
    assert customers.status == 200, customers.text
    return int(customers.body["items"][0]["id"])


# --- the token endpoint -------------------------------------------------------------------------


def test_token_with_basic_auth_and_with_form_params(app: Flask) -> None:
    """Both client authentication methods get a short-lived bearer token through real HTTP
    calls; the answer is not cached and sets no cookie, and no CSRF token is needed."""
    client_id, secret = make_client(app, "cases:read customers:read")
    http = app.test_client()
    for form_auth in (False, True):
        response = request_token(http, client_id, secret, form_auth=form_auth)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["token_type"] == "Bearer"
        assert body["access_token"].startswith("wko_")
        assert body["expires_in"] == 3600
        assert body["scope"] == "cases:read customers:read"
        assert "refresh_token" not in body
        assert response.headers["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in response.headers
        assert as_client(app, body["access_token"]).get("/cases").status == 200
    assert http.get_cookie("session") is None
    assert http.get_cookie("wk_session") is None


def test_token_endpoint_errors_are_rfc6749_json(app: Flask) -> None:
    client_id, secret = make_client(app, "cases:read")
    http = app.test_client()

    wrong_grant = http.post(
        TOKEN_URL, data={"grant_type": "password"}, headers=basic(client_id, secret)
    )
    assert wrong_grant.status_code == 400
    assert wrong_grant.get_json()["error"] == "unsupported_grant_type"

    no_grant = http.post(TOKEN_URL, data={}, headers=basic(client_id, secret))
    assert no_grant.status_code == 400
    assert "error" in no_grant.get_json()

    no_auth = http.post(TOKEN_URL, data={"grant_type": "client_credentials"})
    assert no_auth.status_code == 401
    assert no_auth.get_json()["error"] == "invalid_client"

    unknown = request_token(http, "wkc_doesnotexist00", secret)
    assert unknown.status_code == 401
    assert unknown.get_json()["error"] == "invalid_client"
    assert unknown.headers["WWW-Authenticate"].startswith("Basic")

    unknown_post = request_token(http, "wkc_doesnotexist00", secret, form_auth=True)
    assert unknown_post.status_code == 401
    assert unknown_post.get_json()["error"] == "invalid_client"

    # Not base64, and base64 of bytes that are not UTF-8: refused, never a 500.
    for header in ("Basic ###", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()):
        garbage = http.post(
            TOKEN_URL, data={"grant_type": "client_credentials"}, headers={"Authorization": header}
        )
        assert garbage.status_code == 401, garbage.get_data(as_text=True)
        assert garbage.get_json()["error"] == "invalid_client"

    # A client id with a NUL byte (PostgreSQL refuses those in strings): refused, no 500.
    nul = http.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": "wkc_\x00", "client_secret": "x"},
    )
    assert nul.status_code == 401

    # Credentials in the query string do not count.
    query = http.post(
        f"{TOKEN_URL}?client_id={client_id}&client_secret={secret}",
        data={"grant_type": "client_credentials"},
    )
    assert query.status_code == 401

    assert http.get(TOKEN_URL).status_code == 405


def test_wrong_secret_is_invalid_client_and_recorded(app: Flask, api: Api) -> None:
    client_id, secret = make_client(app, "cases:read")
    http = app.test_client()
    for form_auth in (False, True):
        response = request_token(http, client_id, secret + "x", form_auth=form_auth)
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_client"
        assert "access_token" not in response.get_json()
    events = api.query(
        "SELECT organization_id, success, detail FROM auth_events WHERE kind = 'oauth_token' "
        "ORDER BY id"
    )
    assert len(events) == 2
    berger = api.org_id("berger")
    for org_id, success, detail in events:
        assert org_id == berger
        assert not success
        assert client_id in detail
        assert "invalid_client" in detail
    assert api.query("SELECT count(*) FROM oauth_tokens")[0][0] == 0


def test_scope_beyond_the_clients_is_invalid_scope(app: Flask, api: Api) -> None:
    client_id, secret = make_client(app, "cases:read cases:write")
    http = app.test_client()
    for scope in ("customers:read", "cases:read customers:write", "admin", "account", "\x00"):
        response = request_token(http, client_id, secret, scope)
        assert response.status_code == 400, scope
        assert response.get_json()["error"] == "invalid_scope"
    failures = api.query(
        "SELECT count(*) FROM auth_events WHERE kind = 'oauth_token' AND success = :f", f=False
    )
    assert failures[0][0] == 5

    narrow = request_token(http, client_id, secret, "cases:read")
    assert narrow.status_code == 200
    assert narrow.get_json()["scope"] == "cases:read"
    reader = as_client(app, narrow.get_json()["access_token"])
    assert reader.get("/cases").status == 200
    refused = reader.post("/cases", {**NEW_CASE, "customer_id": a_customer(api)})
    assert refused.status == 403
    assert refused.error_code == "insufficient_scope"


# --- scopes and visibility at the API -------------------------------------------------------


def test_scopes_are_enforced_at_the_api(app: Flask, api: Api) -> None:
    customer_id = a_customer(api)
    cases_reader = as_client(app, token_for(app, "cases:read"))
    assert cases_reader.get("/cases").status == 200
    write = cases_reader.post("/cases", {**NEW_CASE, "customer_id": customer_id})
    assert write.status == 403
    assert write.error_code == "insufficient_scope"
    assert cases_reader.get("/customers").status == 403
    assert cases_reader.get(f"/customers/{customer_id}").error_code == "insufficient_scope"

    cases_writer = as_client(app, token_for(app, "cases:read cases:write"))
    created = cases_writer.post("/cases", {**NEW_CASE, "customer_id": customer_id})
    assert created.status == 201, created.text
    assert created.body["owner_organization_id"] == api.org_id("berger")

    customers_reader = as_client(app, token_for(app, "customers:read"))
    assert customers_reader.get("/customers").status == 200
    assert customers_reader.get("/cases").error_code == "insufficient_scope"
    assert customers_reader.post("/customers", {"name": "Per Client"}).status == 403

    customers_writer = as_client(app, token_for(app, "customers:read customers:write"))
    assert customers_writer.post("/customers", {"name": "Per Client"}).status == 201

    # Personal tokens are for people: every client is refused, whatever its scopes.
    everything = as_client(
        app, token_for(app, "cases:read cases:write customers:read customers:write cti")
    )
    for answer in (
        everything.get("/me/tokens"),
        everything.post("/me/tokens", {"name": "escalation"}),
        everything.delete("/me/tokens/1"),
    ):
        assert answer.status == 403
        assert answer.error_code == "insufficient_scope"


def test_client_sees_exactly_what_an_agent_of_its_organisation_sees(app: Flask, api: Api) -> None:
    for admin, agent in (
        ("admin@berger.example", "sales@berger.example"),
        ("admin@nordwerk.example", "agent@nordwerk.example"),
    ):
        client = as_client(app, token_for(app, "cases:read customers:read", org_admin=admin))
        agent_ids = case_ids(api(agent))
        assert agent_ids, agent
        assert case_ids(client) == agent_ids
        customers = sorted(c["id"] for c in client.all_pages("/customers"))
        assert customers == sorted(c["id"] for c in api(agent).all_pages("/customers"))
    # And a case the organisation cannot see stays hidden from its client.
    berger_cases = set(case_ids(api("sales@berger.example")))
    hidden = [i for i in case_ids(api("agent@suedstern.example")) if i not in berger_cases]
    assert hidden
    berger_client = as_client(app, token_for(app, "cases:read"))
    assert berger_client.get(f"/cases/{hidden[0]}").status == 404


def test_client_tokens_do_not_open_the_web_pages(app: Flask, api: Api) -> None:
    """A client's token authenticates API requests only: not the profile page, which would
    let it create a personal token holding every scope."""
    token = token_for(app, "cases:read")
    http = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get("/profile", headers=headers).status_code == 302
    created = http.post("/profile/tokens", data={"name": "escalation"}, headers=headers)
    assert created.status_code in (302, 400)
    assert api.query("SELECT count(*) FROM api_tokens WHERE name = 'escalation'")[0][0] == 0
    assert http.get("/api/v1/me", headers=headers).status_code == 200


# --- revocation and expiry ------------------------------------------------------------------


def test_revoked_client_is_refused_at_once(app: Flask, api: Api) -> None:
    client_id, secret = make_client(app, "cases:read")
    http = app.test_client()
    token = request_token(http, client_id, secret).get_json()["access_token"]
    user = as_client(app, token)
    assert user.get("/cases").status == 200

    revoke(app, client_id)

    assert user.get("/cases").status == 401
    again = request_token(http, client_id, secret)
    assert again.status_code == 401
    assert again.get_json()["error"] == "invalid_client"
    (revoked_at,) = api.query(
        "SELECT revoked_at FROM api_clients WHERE client_id = :c", c=client_id
    )[0]
    assert revoked_at is not None
    assert api.query("SELECT count(*) FROM oauth_tokens WHERE revoked_at IS NULL")[0][0] == 0
    active = api.query(
        "SELECT u.active FROM users u JOIN api_clients c ON c.user_id = u.id "
        "WHERE c.client_id = :c",
        c=client_id,
    )
    assert not active[0][0]
    kinds = [row[0] for row in api.query("SELECT kind FROM auth_events ORDER BY id")]
    assert kinds == ["client_created", "oauth_token", "client_revoked", "oauth_token"]


def test_expired_token_is_refused(app: Flask, api: Api) -> None:
    app.config["TOKEN_LIFETIME_SECONDS"] = 5
    client_id, secret = make_client(app, "cases:read")
    response = request_token(app.test_client(), client_id, secret)
    assert response.get_json()["expires_in"] == 5
    user = as_client(app, response.get_json()["access_token"])
    assert user.get("/cases").status == 200

    (issued_at, expires_at) = api.query("SELECT issued_at, expires_at FROM oauth_tokens")[0]
    assert _as_utc(expires_at) - _as_utc(issued_at) == dt.timedelta(seconds=5)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    _set_expiry(app, past)
    answer = user.get("/cases")
    assert answer.status == 401
    assert answer.error_code == "unauthorized"


def _as_utc(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _set_expiry(app: Flask, when: dt.datetime) -> None:
    from auth.models import OAuthToken
    from portal.db import get_session

    with app.app_context():
        session = get_session()
        session.execute(sa.update(OAuthToken).values(expires_at=when))
        session.commit()


# --- storage ----------------------------------------------------------------------------------


def test_secrets_and_tokens_are_stored_hashed(app: Flask, api: Api) -> None:
    client_id, secret = make_client(app, "cases:read")
    token = request_token(app.test_client(), client_id, secret).get_json()["access_token"]
    stored = api.query("SELECT secret_hash FROM api_clients WHERE client_id = :c", c=client_id)
    assert stored[0][0] == hashlib.sha256(secret.encode()).hexdigest()
    token_hash = api.query("SELECT token_hash FROM oauth_tokens")[0][0]
    assert token_hash == hashlib.sha256(token.encode()).hexdigest()
    for table in ("api_clients", "oauth_tokens", "auth_events", "users", "api_tokens"):
        dump = repr(api.query(f"SELECT * FROM {table}"))  # noqa: S608 - fixed table names
        assert secret not in dump, table
        assert token not in dump, table
        assert secret[4:20] not in dump, table
        assert token[4:20] not in dump, table


# --- service users ------------------------------------------------------------------------------


def test_service_users_are_not_people(app: Flask, api: Api) -> None:
    """The client's service user is absent from the user admin list and the hand-over
    choices, and cannot sign in."""
    make_client(app, "cases:read", name="Telefonanlage Zentrale")
    (email, kind, role, password_hash) = api.query(
        "SELECT u.email, u.kind, u.role, u.password_hash FROM users u "
        "JOIN api_clients c ON c.user_id = u.id"
    )[0]
    assert (kind, role, password_hash) == ("service", "agent", None)
    assert email.endswith("@clients.invalid")

    admin = app.test_client()
    login(admin, "admin@berger.example")
    page = admin.get("/admin").get_data(as_text=True)
    assert "Thomas Berger" in page
    assert "Telefonanlage Zentrale" not in page
    assert email not in page

    browser = app.test_client()
    refused = browser.post(
        "/login", data={"email": email, "password": "", "csrf_token": csrf_token(browser)}
    )
    assert refused.status_code in (200, 401)
    assert browser.get("/api/v1/me").status_code == 401

    from partners.models import User
    from portal.db import get_session
    from shared_records import policy, ui_queries

    case_id = case_ids(api("sales@berger.example"))[0]
    with app.app_context():
        session = get_session()
        agent = session.scalars(sa.select(User).where(User.email == "sales@berger.example")).one()
        view = policy.get_visible_case(session, agent, case_id)
        groups, _more = ui_queries.handover_choices(session, view)
        names = {u.name for group in groups for u in group.users}
    assert "Anna Berger" in names
    assert "Telefonanlage Zentrale" not in names


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_create_list_revoke(app: Flask, demo_db_url: str, api: Api) -> None:
    created = portal(
        demo_db_url, "clients", "create", "berger", "--name", "DMS", "--scopes", "cti cases:read"
    )
    assert created.returncode == 0, created.stderr
    last = created.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"wkc_\S+ \S+", last), last
    client_id, secret = last.split(" ")
    response = request_token(app.test_client(), client_id, secret)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["scope"] == "cases:read cti"

    listed = portal(demo_db_url, "clients", "list", "berger")
    assert listed.returncode == 0, listed.stderr
    assert client_id in listed.stdout
    assert "active" in listed.stdout
    assert secret not in listed.stdout

    bad_scope = portal(
        demo_db_url, "clients", "create", "berger", "--name", "X", "--scopes", "cases:read root"
    )
    assert bad_scope.returncode != 0
    assert "root" in bad_scope.stderr
    no_org = portal(demo_db_url, "clients", "create", "nirgendwo", "--name", "X", "--scopes", "cti")
    assert no_org.returncode != 0
    assert "nirgendwo" in no_org.stderr

    revoked = portal(demo_db_url, "clients", "revoke", client_id)
    assert revoked.returncode == 0, revoked.stderr
    token = response.get_json()["access_token"]
    assert as_client(app, token).get("/cases").status == 401
    assert request_token(app.test_client(), client_id, secret).status_code == 401
    unknown = portal(demo_db_url, "clients", "revoke", "wkc_unknownunknown")
    assert unknown.returncode != 0
    assert "No API client" in unknown.stderr
    events = api.query("SELECT kind, actor_user_id, user_agent FROM auth_events ORDER BY id")
    assert [e[0] for e in events][:1] == ["client_created"]
    assert events[0][1] is None
    assert events[0][2] == "cli"


# --- the admin page ----------------------------------------------------------------------------


def _signed_in(app: Flask, email: str) -> FlaskClient:
    browser = app.test_client()
    response = login(browser, email)
    assert response.status_code in (302, 303), response.get_data(as_text=True)
    return browser


def test_admin_creates_and_revokes_a_client_in_the_page(app: Flask, api: Api) -> None:
    browser = _signed_in(app, "admin@berger.example")
    page = browser.get("/admin/clients")
    assert page.status_code == 200
    token = csrf_token(browser, "/admin/clients")

    invalid = browser.post("/admin/clients", data={"csrf_token": token, "name": "Ohne Scopes"})
    assert invalid.status_code == 422
    unknown = browser.post(
        "/admin/clients", data={"csrf_token": token, "name": "X", "scopes": ["cases:read", "root"]}
    )
    assert unknown.status_code == 422
    assert "root" in unknown.get_data(as_text=True)
    assert api.query("SELECT count(*) FROM api_clients")[0][0] == 0

    created = browser.post(
        "/admin/clients",
        data={"csrf_token": token, "name": "Telefonanlage", "scopes": ["cti", "cases:read"]},
    )
    assert created.status_code == 201
    html = created.get_data(as_text=True)
    client_id = re.search(r'id="new-client-id" value="([^"]+)"', html)
    secret = re.search(r'id="new-client-secret" value="([^"]+)"', html)
    assert client_id and secret
    assert created.headers["Cache-Control"] == "no-store"
    response = request_token(app.test_client(), client_id.group(1), secret.group(1))
    assert response.status_code == 200
    assert response.get_json()["scope"] == "cases:read cti"

    # Shown once: not on the next visit, not in a flash message or the session.
    later = browser.get("/admin/clients").get_data(as_text=True)
    assert client_id.group(1) in later
    assert secret.group(1) not in later
    cookie = browser.get_cookie("session") or browser.get_cookie("wk_session")
    assert cookie is None or secret.group(1) not in cookie.value

    (pk,) = api.query("SELECT id FROM api_clients WHERE client_id = :c", c=client_id.group(1))[0]
    done = browser.post(f"/admin/clients/{pk}/revoke", data={"csrf_token": token})
    assert done.status_code in (302, 303)
    assert api.query("SELECT revoked_at FROM api_clients WHERE id = :i", i=pk)[0][0] is not None
    assert request_token(app.test_client(), client_id.group(1), secret.group(1)).status_code == 401

    # Another organisation's admin cannot revoke it (not found); non-admins are refused.
    other = _signed_in(app, "admin@nordwerk.example")
    foreign_pk = api.query("SELECT id FROM api_clients")[0][0]
    other_token = csrf_token(other, "/admin/clients")
    assert (
        other.post(
            f"/admin/clients/{foreign_pk}/revoke", data={"csrf_token": other_token}
        ).status_code
        == 404
    )
    assert client_id.group(1) not in other.get("/admin/clients").get_data(as_text=True)


@pytest.mark.parametrize("email", ["sales@berger.example", "viewer@nordwerk.example"])
def test_non_admins_cannot_manage_clients(app: Flask, api: Api, email: str) -> None:
    browser = _signed_in(app, email)
    assert browser.get("/admin/clients").status_code == 403
    token = csrf_token(browser, "/profile")
    refused = browser.post(
        "/admin/clients", data={"csrf_token": token, "name": "X", "scopes": ["cti"]}
    )
    assert refused.status_code == 403
    assert api.query("SELECT count(*) FROM api_clients")[0][0] == 0
    anonymous = app.test_client().get("/admin/clients")
    assert anonymous.status_code == 302
