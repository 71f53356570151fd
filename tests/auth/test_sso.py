"""Single sign-on per organisation (OpenID Connect) against real providers on loopback.

Most tests use two `oidc-provider-mock` servers (one for Autohaus Berger, one for Autohaus
Kaya, in-thread and fast); the end-to-end test uses the certified npm `oidc-provider` (Node)
with RP-initiated and back-channel logout. Nothing of the portal is mocked: the browser is
Flask's test client (or `requests` against a live server), the providers are real.

Covered: home-realm discovery, just-in-time accounts, roles from claims at every sign-in,
no linking by email, refusals (unverified email, foreign domain, deactivated user, foreign
organisation on a shared issuer), mix-up (state or code of another organisation, wrong `iss`),
replayed state, wrong nonce, unknown signing key, rotated keys, discovery naming another
issuer, RP-initiated and back-channel logout, the admin page and the audit trail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.test import TestResponse

from auth import oidc, sso
from auth.crypto import decrypt
from auth.models import IdentityProvider
from portal.db import get_session
from tests.support.oidc import (
    ImpostorProvider,
    MockProvider,
    NodeProvider,
    path_and_query,
    query_of,
)
from tests.support.servers import ServerThread
from tests.support.web import csrf_token, login

# oidc-provider-mock (in this process) still calls authlib's deprecated get_jwt_config.
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")

PORTAL = "http://portal.test"  # BASE_URL of the test-client app (never contacted)

BERGER_PEOPLE = {
    "b-neu": {
        "email": "Neu@Berger.example",
        "email_verified": True,
        "name": "Nora Neu",
        "groups": ["sales"],
    },
    "b-chefin": {
        "email": "chefin@berger.example",
        "email_verified": True,
        "name": "Carla Chef",
        "groups": ["portal-admins", "sales"],
    },
    "b-anna": {"email": "sales@berger.example", "email_verified": True, "name": "Anna Berger"},
    "b-unverified": {"email": "wer@berger.example", "email_verified": False, "name": "Wer"},
    "b-outsider": {"email": "gast@kaya.example", "email_verified": True, "name": "Gast"},
    # Microsoft Entra ID sends no email_verified; its xms_edov claim says the same.
    "b-entra": {"email": "entra@berger.example", "xms_edov": True, "name": "Erik Entra"},
    "b-entra-unverified": {"email": "e2@berger.example", "xms_edov": False, "name": "E"},
}
KAYA_PEOPLE = {
    "k-neu": {"email": "neu@kaya.example", "email_verified": True, "name": "Kerem Neu"},
}


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def sso_app(app: Flask) -> Flask:
    app.config["BASE_URL"] = PORTAL
    return app


@pytest.fixture
def browser(sso_app: Flask) -> FlaskClient:
    """A browser without JavaScript (English pages)."""
    client = sso_app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def idp_berger() -> Iterator[MockProvider]:
    with MockProvider(BERGER_PEOPLE) as provider:
        yield provider


@pytest.fixture
def idp_kaya() -> Iterator[MockProvider]:
    with MockProvider(KAYA_PEOPLE) as provider:
        yield provider


def configure(app: Flask, slug: str, issuer: str, **options: Any) -> None:
    """Save an organisation's SSO settings through the service (as the admin page does)."""
    values: dict[str, Any] = {
        "issuer": issuer,
        "client_id": f"{slug}-portal",
        "client_secret": f"secret-of-{slug}",
        "domains": [f"{slug}.example"],
        **options,
    }
    with app.app_context():
        db = get_session()
        org = sso.organization_by_slug(db, slug)
        assert org is not None
        sso.save_settings(db, org, sso.Settings(**values))


def rows(app: Flask, sql: str, **params: Any) -> list[Any]:
    with app.app_context():
        return list(get_session().execute(sa.text(sql), params).all())


def forwarded(response: TestResponse | requests.Response) -> str:
    """Where a "continue to your provider" page sends the browser (Refresh header); the
    page's link goes to the same place."""
    assert response.status_code == 200, response.text[:500]
    refresh = response.headers["Refresh"]
    assert refresh.startswith("0; url="), refresh
    target = refresh.removeprefix("0; url=")
    assert f'href="{target.replace("&", "&amp;")}"' in response.text
    return target


def start(client: FlaskClient, slug: str, **params: str) -> str:
    """GET /login/<slug>; returns the provider's authorization URL."""
    return forwarded(client.get(f"/login/{slug}", query_string=params))


def finish(client: FlaskClient, callback_url: str) -> TestResponse:
    assert callback_url.startswith(PORTAL + "/auth/callback/"), callback_url
    return client.get(path_and_query(callback_url))


def sign_in(client: FlaskClient, provider: MockProvider, slug: str, sub: str) -> TestResponse:
    return finish(client, provider.authorize(start(client, slug), sub))


def whoami(client: FlaskClient) -> str | None:
    """The email of the signed-in user, or None."""
    answer = client.get("/api/v1/me")
    return answer.get_json()["email"] if answer.status_code == 200 else None


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def last_sso_event(app: Flask) -> Any:
    return rows(
        app,
        "SELECT kind, success, detail, email, organization_id FROM auth_events "
        "WHERE method = 'sso' ORDER BY id DESC LIMIT 1",
    )[0]


def with_params(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    params = {**query_of(url), **changes}
    return urlunsplit(parts._replace(query=urlencode(params)))


def org_id(app: Flask, slug: str) -> int:
    return int(rows(app, "SELECT id FROM organizations WHERE slug = :s", s=slug)[0][0])


# --- home-realm discovery and the authorization request ------------------------------------


def test_provider_for_email_by_domain(sso_app: Flask, idp_berger: MockProvider) -> None:
    configure(sso_app, "berger", idp_berger.issuer, domains=["berger.example", "autohaus-b.de"])
    with sso_app.app_context():
        db = get_session()
        found = sso.provider_for_email(db, "Jemand@BERGER.example")
        assert found is not None and found.organization.slug == "berger"
        assert sso.provider_for_email(db, "x@autohaus-b.de") is found
        assert sso.provider_for_email(db, "x@kaya.example") is None
        assert sso.provider_for_email(db, "not-an-email") is None
    configure(sso_app, "berger", idp_berger.issuer, enabled=False)
    with sso_app.app_context():
        assert sso.provider_for_email(get_session(), "x@berger.example") is None


def test_email_step_sends_sso_domains_to_their_provider(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    """POST /login with only an email of an SSO domain goes to /login/<org> and on to the
    provider with PKCE S256, state, nonce, login_hint and the organisation's redirect URI."""
    configure(sso_app, "berger", idp_berger.issuer, domains=["berger.example"])
    token = csrf_token(browser)
    answer = browser.post(
        "/login",
        data={"email": "neu@berger.example", "csrf_token": token, "next": "/customers"},
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login/berger?")
    assert query_of(answer.headers["Location"])["login_hint"] == "neu@berger.example"
    provider_url = forwarded(browser.get(answer.headers["Location"]))
    assert provider_url.startswith(idp_berger.issuer + "/oauth2/authorize?")
    params = query_of(provider_url)
    assert params["response_type"] == "code"
    assert params["client_id"] == "berger-portal"
    assert params["redirect_uri"] == PORTAL + "/auth/callback/berger"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 40 and len(params["nonce"]) >= 40
    assert params["login_hint"] == "neu@berger.example"
    assert "openid" in params["scope"].split()
    # Another sign-in gets its own state and nonce.
    again = query_of(start(browser, "berger"))
    assert again["state"] != params["state"] and again["nonce"] != params["nonce"]


def test_start_refuses_unknown_or_unreachable(sso_app: Flask, browser: FlaskClient) -> None:
    assert browser.get("/login/nowhere").status_code == 404
    assert browser.get("/login/kaya").status_code == 404  # no provider
    with MockProvider() as gone:
        issuer = gone.issuer
        configure(sso_app, "kaya", issuer)
    answer = browser.get("/login/kaya")
    assert answer.status_code == 400
    assert "cannot be reached" in text(answer)
    assert whoami(browser) is None


# --- successful sign-in, accounts and roles ------------------------------------------------


def test_just_in_time_sign_in(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    """First sign-in creates the account (verified email, own domain), the session is an SSO
    session (provider, id_token_hint) and the browser lands on `next`."""
    configure(
        sso_app,
        "berger",
        idp_berger.issuer,
        jit=True,
        role_claim="groups",
        role_map={"portal-admins": "admin", "sales": "agent"},
        default_role="viewer",
    )
    authorization = start(browser, "berger", next="/customers")
    answer = finish(browser, idp_berger.authorize(authorization, "b-neu"))
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/customers"
    assert whoami(browser) == "neu@berger.example"
    user = rows(
        sso_app,
        "SELECT u.name, u.role, o.slug, u.password_hash FROM users u "
        "JOIN organizations o ON o.id = u.organization_id WHERE u.email = 'neu@berger.example'",
    )
    assert [tuple(r) for r in user] == [("Nora Neu", "agent", "berger", None)]
    identity = rows(sso_app, "SELECT issuer, subject FROM user_identities")
    assert [tuple(r) for r in identity] == [(idp_berger.issuer, "b-neu")]
    session_row = rows(
        sso_app,
        "SELECT s.method, s.provider_id, s.id_token_hint FROM user_sessions s "
        "JOIN users u ON u.id = s.user_id WHERE u.email = 'neu@berger.example'",
    )[0]
    assert session_row[0] == "sso" and session_row[1] is not None
    assert session_row[2].count(".") == 2  # the raw ID token, for RP-initiated logout
    event = last_sso_event(sso_app)
    assert (event.kind, event.success, event.email) == ("login", True, "neu@berger.example")
    # The inbox opens; an unsafe `next` is ignored.
    assert browser.get("/").status_code == 200
    other = browser.application.test_client()
    url = idp_berger.authorize(start(other, "berger", next="https://evil.example/"), "b-neu")
    assert finish(other, url).headers["Location"] == "/"


def test_roles_follow_the_claim_at_every_sign_in(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    configure(
        sso_app,
        "berger",
        idp_berger.issuer,
        jit=True,
        role_claim="groups",
        role_map={"portal-admins": "admin", "sales": "agent"},
        default_role="viewer",
    )

    def role_after_sign_in(groups: Any) -> str:
        claims = {**BERGER_PEOPLE["b-chefin"], "groups": groups}
        idp_berger.set_user("b-chefin", claims)
        client = browser.application.test_client()
        assert sign_in(client, idp_berger, "berger", "b-chefin").status_code == 302
        found = rows(sso_app, "SELECT role FROM users WHERE email = 'chefin@berger.example'")
        return str(found[0][0])

    assert role_after_sign_in(["portal-admins", "sales"]) == "admin"  # highest wins
    assert role_after_sign_in(["sales"]) == "agent"  # demoted at the next sign-in
    assert role_after_sign_in([]) == "viewer"  # no mapped value: default role
    assert role_after_sign_in("portal-admins") == "admin"  # a string claim works too


def test_existing_account_is_not_linked_by_email(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    """A provider asserting the email of an existing local account does not get it."""
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    answer = sign_in(browser, idp_berger, "berger", "b-anna")
    assert answer.status_code == 403
    assert "ask your administrator" in text(answer)
    assert whoami(browser) is None
    assert rows(sso_app, "SELECT count(*) FROM user_identities")[0][0] == 0
    event = last_sso_event(sso_app)
    assert (event.success, event.detail) == (False, "email_taken_unlinked")


def test_signed_in_person_links_an_existing_account(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    """An account from before single sign-on is linked only by its owner: signed in with the
    password, then through the provider. Afterwards the provider alone signs them in; the
    same company account cannot be linked to a second portal account."""
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    assert login(browser, "sales@berger.example").status_code == 302
    page = browser.post("/login/sso/link", data={"csrf_token": csrf_token(browser, "/")})
    answer = finish(browser, idp_berger.authorize(forwarded(page), "b-anna"))
    assert answer.status_code == 302
    assert whoami(browser) == "sales@berger.example"
    linked = rows(
        sso_app,
        "SELECT u.email, i.subject FROM user_identities i JOIN users u ON u.id = i.user_id",
    )
    assert [tuple(r) for r in linked] == [("sales@berger.example", "b-anna")]
    assert rows(sso_app, "SELECT count(*) FROM auth_events WHERE kind = 'sso_linked'")[0][0] == 1
    later = sso_app.test_client()
    assert sign_in(later, idp_berger, "berger", "b-anna").status_code == 302
    assert whoami(later) == "sales@berger.example"
    # Thomas (admin of Berger) cannot take Anna's company account.
    thomas = sso_app.test_client()
    thomas.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(thomas, "admin@berger.example")
    page = thomas.post("/login/sso/link", data={"csrf_token": csrf_token(thomas, "/")})
    refused = finish(thomas, idp_berger.authorize(forwarded(page), "b-anna"))
    assert refused.status_code == 403
    assert "linked to another portal account" in text(refused)
    assert len(rows(sso_app, "SELECT id FROM user_identities")) == 1
    # Linking needs a signed-in person.
    assert sso_app.test_client().post("/login/sso/link").status_code in (302, 400)


def test_no_account_without_just_in_time(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    configure(sso_app, "berger", idp_berger.issuer, jit=False)
    answer = sign_in(browser, idp_berger, "berger", "b-neu")
    assert answer.status_code == 403
    assert "no portal account" in text(answer)
    assert whoami(browser) is None
    assert rows(sso_app, "SELECT count(*) FROM users WHERE email = 'neu@berger.example'")[0][0] == 0


@pytest.mark.parametrize(
    ("sub", "reason", "phrase"),
    [
        ("b-unverified", "email_unverified", "has not confirmed your email"),
        ("b-outsider", "domain_not_allowed", "does not belong to a domain"),
        ("b-entra-unverified", "email_unverified", "has not confirmed your email"),
    ],
)
def test_just_in_time_needs_verified_email_of_own_domain(
    sso_app: Flask,
    browser: FlaskClient,
    idp_berger: MockProvider,
    sub: str,
    reason: str,
    phrase: str,
) -> None:
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    answer = sign_in(browser, idp_berger, "berger", sub)
    assert answer.status_code == 403
    assert phrase in text(answer)
    assert whoami(browser) is None
    assert rows(sso_app, "SELECT count(*) FROM user_identities")[0][0] == 0
    event = last_sso_event(sso_app)
    assert (event.success, event.detail) == (False, reason)


def test_entra_domain_owner_verified_claim_counts_as_verified(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    assert sign_in(browser, idp_berger, "berger", "b-entra").status_code == 302
    assert whoami(browser) == "entra@berger.example"


def test_deactivated_user_is_refused_although_the_provider_says_yes(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    assert sign_in(browser, idp_berger, "berger", "b-neu").status_code == 302
    with sso_app.app_context():
        from partners.models import User
        from partners.service import set_user_active

        db = get_session()
        admin = db.scalars(sa.select(User).where(User.email == "admin@berger.example")).one()
        neu = db.scalars(sa.select(User).where(User.email == "neu@berger.example")).one()
        set_user_active(db, admin, neu.id, False)
    assert whoami(browser) is None  # deactivation ended the session
    again = sso_app.test_client()
    again.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    answer = sign_in(again, idp_berger, "berger", "b-neu")
    assert answer.status_code == 403
    assert "deactivated" in text(answer)
    assert whoami(again) is None
    assert last_sso_event(sso_app).detail == "account_disabled"


# --- two organisations: mix-up and foreign tenants -----------------------------------------


@pytest.fixture
def two_orgs(
    sso_app: Flask, idp_berger: MockProvider, idp_kaya: MockProvider
) -> tuple[MockProvider, MockProvider]:
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    configure(sso_app, "kaya", idp_kaya.issuer, jit=True)
    return idp_berger, idp_kaya


def nobody_new(app: Flask) -> bool:
    return rows(app, "SELECT count(*) FROM user_identities")[0][0] == 0


def test_state_of_one_organisation_refused_at_another(
    sso_app: Flask, browser: FlaskClient, two_orgs: tuple[MockProvider, MockProvider]
) -> None:
    """Berger's answer (code + state) delivered to Kaya's callback is refused (mix-up)."""
    idp_berger, _idp_kaya = two_orgs
    callback = idp_berger.authorize(start(browser, "berger"), "b-neu")
    params = query_of(callback)
    answer = browser.get("/auth/callback/kaya", query_string=params)
    assert answer.status_code == 400
    assert "another organisation" in text(answer)
    assert whoami(browser) is None and nobody_new(sso_app)
    assert last_sso_event(sso_app).detail == "state_other_organization"
    # The state was spent by the attempt: the genuine callback does not work either.
    assert finish(browser, callback).status_code == 400
    assert whoami(browser) is None


def test_code_from_another_provider_refused(
    sso_app: Flask, browser: FlaskClient, two_orgs: tuple[MockProvider, MockProvider]
) -> None:
    """A code issued by Berger's provider, injected into Kaya's sign-in (with Kaya's state),
    is redeemed at Kaya's provider only, which does not know it."""
    idp_berger, _idp_kaya = two_orgs
    kaya_state = query_of(start(browser, "kaya"))["state"]
    berger_code = query_of(idp_berger.authorize(start(browser, "berger"), "b-neu"))["code"]
    answer = browser.get(
        "/auth/callback/kaya", query_string={"code": berger_code, "state": kaya_state}
    )
    assert answer.status_code == 400
    assert whoami(browser) is None and nobody_new(sso_app)
    assert last_sso_event(sso_app).detail == "token_refused"


def test_iss_parameter_of_another_provider_refused(
    sso_app: Flask, browser: FlaskClient, two_orgs: tuple[MockProvider, MockProvider]
) -> None:
    """RFC 9207: an `iss` response parameter naming another issuer is refused."""
    idp_berger, idp_kaya = two_orgs
    callback = idp_kaya.authorize(start(browser, "kaya"), "k-neu")
    answer = finish(browser, with_params(callback, iss=idp_berger.issuer))
    assert answer.status_code == 400
    assert whoami(browser) is None and nobody_new(sso_app)
    assert last_sso_event(sso_app).detail == "iss_mismatch"
    # The same answer with the right iss would have worked (fresh sign-in).
    good = idp_kaya.authorize(start(browser, "kaya"), "k-neu")
    assert finish(browser, with_params(good, iss=idp_kaya.issuer)).status_code == 302
    assert whoami(browser) == "neu@kaya.example"


def test_foreign_tenant_on_a_shared_issuer_refused(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    """Two organisations on one multi-tenant issuer (as with Google or Entra ID across
    tenants): an identity of Berger cannot sign in to Kaya, and Kaya cannot create accounts
    for Berger's domain, although the provider's tokens are valid for Kaya's client."""
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    configure(sso_app, "kaya", idp_berger.issuer, jit=True, client_id="kaya-portal")
    assert sign_in(browser, idp_berger, "berger", "b-neu").status_code == 302
    other = sso_app.test_client()
    other.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    answer = sign_in(other, idp_berger, "kaya", "b-neu")
    assert answer.status_code == 403
    assert "another organisation" in text(answer)
    assert whoami(other) is None
    assert last_sso_event(sso_app).detail == "foreign_organization"
    chefin = sign_in(other, idp_berger, "kaya", "b-chefin")
    assert chefin.status_code == 403
    assert whoami(other) is None
    assert last_sso_event(sso_app).detail == "domain_not_allowed"
    assert (
        rows(sso_app, "SELECT count(*) FROM users WHERE email = 'chefin@berger.example'")[0][0] == 0
    )


# --- replay, nonce, keys, discovery --------------------------------------------------------


def test_replayed_state_refused(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    cookie_name = sso_app.config["SESSION_COOKIE_NAME"]
    callback = idp_berger.authorize(start(browser, "berger"), "b-neu")
    before = browser.get_cookie(cookie_name)
    assert before is not None
    assert finish(browser, callback).status_code == 302
    assert whoami(browser) == "neu@berger.example"
    browser.post("/logout", data={"csrf_token": csrf_token(browser, "/")})
    assert whoami(browser) is None
    # The same answer again: the state was used.
    replay = finish(browser, callback)
    assert replay.status_code == 400
    assert whoami(browser) is None
    # Even with the cookie from before the first callback (stolen), the code is spent.
    thief = sso_app.test_client()
    thief.set_cookie(cookie_name, before.value)
    assert finish(thief, callback).status_code == 400
    assert whoami(thief) is None
    assert last_sso_event(sso_app).detail == "token_refused"


def test_wrong_nonce_refused(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    """The provider signs a token with another nonce than ours (e.g. a token minted for
    someone else's request): refused."""
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    authorization = with_params(start(browser, "berger"), nonce="not-the-portals-nonce")
    answer = finish(browser, idp_berger.authorize(authorization, "b-neu"))
    assert answer.status_code == 400
    assert "could not be verified" in text(answer)
    assert whoami(browser) is None and nobody_new(sso_app)
    assert last_sso_event(sso_app).detail == "nonce_mismatch"


def test_token_not_signed_by_the_providers_keys_refused(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    idp_berger.publish_foreign_keys()
    answer = sign_in(browser, idp_berger, "berger", "b-neu")
    assert answer.status_code == 400
    assert whoami(browser) is None and nobody_new(sso_app)
    assert last_sso_event(sso_app).detail == "signature_invalid"


def test_rotated_signing_key_is_picked_up(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    assert sign_in(browser, idp_berger, "berger", "b-neu").status_code == 302  # keys cached
    idp_berger.rotate_key()
    # Keys are re-fetched for an unknown key at most every JWKS_REFRESH_INTERVAL seconds;
    # instead of waiting that long, the cache's clock runs ahead.
    cache = sso_app.extensions["sso_metadata"]
    cache.clock = lambda: time.monotonic() + oidc.JWKS_REFRESH_INTERVAL + 1
    other = sso_app.test_client()
    assert sign_in(other, idp_berger, "berger", "b-neu").status_code == 302
    assert whoami(other) == "neu@berger.example"


def test_discovery_naming_another_issuer_refused(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    """A provider whose discovery document names another issuer (here Berger's) is not
    used: neither at sign-in nor when an admin tries to save it."""
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    with ImpostorProvider(idp_berger.issuer) as impostor:
        configure(sso_app, "kaya", impostor.issuer, jit=True)  # stored without the check
        answer = browser.get("/login/kaya")
        assert answer.status_code == 400
        assert whoami(browser) is None
        assert last_sso_event(sso_app).detail == "discovery_issuer_mismatch"
        with sso_app.test_request_context(headers={"Accept-Language": "en"}):
            with pytest.raises(Exception, match="another issuer") as refused:
                sso.check_discovery(impostor.issuer)
            assert refused.value.__class__.__name__ == "ValidationFailed"


def test_provider_error_response_is_shown(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    authorization = start(browser, "berger")
    denied = idp_berger.deny(authorization)
    assert query_of(denied)["error"] == "access_denied"
    # Without the state (this provider leaves it out of error answers) nothing is accepted.
    no_state = finish(browser, denied)
    assert no_state.status_code == 400
    assert "sign in again" in text(no_state)
    # With the state, as RFC 6749 demands, the person reads that the sign-in was cancelled.
    authorization = start(browser, "berger")
    denied = with_params(idp_berger.deny(authorization), state=query_of(authorization)["state"])
    answer = finish(browser, denied)
    assert answer.status_code == 400
    assert "cancelled" in text(answer)
    assert whoami(browser) is None
    assert last_sso_event(sso_app).detail == "provider_error: access_denied"


# --- logout --------------------------------------------------------------------------------


def test_rp_initiated_logout_redirects_to_the_provider(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    configure(sso_app, "berger", idp_berger.issuer, jit=True)
    assert sign_in(browser, idp_berger, "berger", "b-neu").status_code == 302
    id_token = rows(sso_app, "SELECT id_token_hint FROM user_sessions WHERE method = 'sso'")[0][0]
    answer = browser.post("/logout", data={"csrf_token": csrf_token(browser, "/")})
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/logout/provider/")
    location = forwarded(browser.get(answer.headers["Location"]))
    assert location.startswith(idp_berger.issuer + "/oauth2/end_session?")
    params = query_of(location)
    assert params["id_token_hint"] == id_token
    assert params["client_id"] == "berger-portal"
    assert params["post_logout_redirect_uri"].endswith("/login")
    assert whoami(browser) is None
    # The forwarding link is signed: a forged one leads nowhere but to the sign-in.
    forged = browser.get("/logout/provider/" + "x" * 40)
    assert forged.status_code == 302 and forged.headers["Location"].endswith("/login")
    # A password session signs out locally only.
    local = sso_app.test_client()
    login(local, "service@kaya.example")
    out = local.post("/logout", data={"csrf_token": csrf_token(local, "/")})
    assert out.headers["Location"].endswith("/login")


def _logout_token(key: RSAKey, issuer: str, audience: str, **claims: Any) -> str:
    payload = {
        "iss": issuer,
        "aud": audience,
        "iat": int(time.time()),
        "jti": "j1",
        "events": {oidc.BACKCHANNEL_LOGOUT_EVENT: {}},
        **claims,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "logout+jwt"}, payload, key)


def test_backchannel_logout_refuses_tokens_that_are_not_logout_tokens_of_the_provider(
    sso_app: Flask, browser: FlaskClient, two_orgs: tuple[MockProvider, MockProvider]
) -> None:
    """ID tokens, tokens of another organisation's provider, forged or garbled tokens end
    nothing."""
    idp_berger, idp_kaya = two_orgs
    assert sign_in(browser, idp_berger, "berger", "b-neu").status_code == 302
    kaya = sso_app.test_client()
    assert sign_in(kaya, idp_kaya, "kaya", "k-neu").status_code == 302
    berger_id_token = rows(
        sso_app,
        "SELECT s.id_token_hint FROM user_sessions s JOIN users u ON u.id = s.user_id "
        "WHERE u.email = 'neu@berger.example'",
    )[0][0]
    forger = RSAKey.generate_key(2048, parameters={"kid": "forged"})
    attempts = {
        "berger": [
            berger_id_token,  # a real ID token of the provider, but no logout event
            _logout_token(forger, idp_berger.issuer, "berger-portal", sub="b-neu"),
            "not.a.token",
        ],
        "kaya": [berger_id_token],  # Berger's provider's token at Kaya's endpoint
        "nowhere": [berger_id_token],
    }
    for slug, tokens in attempts.items():
        for token in tokens:
            answer = browser.post(f"/auth/backchannel-logout/{slug}", data={"logout_token": token})
            assert answer.status_code == 400, (slug, token[:20])
            assert answer.get_json()["error"] == "invalid_request"
            assert answer.headers["Cache-Control"] == "no-store"
    assert browser.post("/auth/backchannel-logout/berger").status_code == 400
    assert whoami(browser) == "neu@berger.example"
    assert whoami(kaya) == "neu@kaya.example"


# --- the certified provider, end to end -----------------------------------------------------


def _portal_page_token(web: requests.Session, url: str) -> str:
    import re

    page = web.get(url, timeout=10)
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert match, page.text[:300]
    return match.group(1)


def _me(web: requests.Session, base: str) -> str | None:
    answer = web.get(base + "/api/v1/me", timeout=10, allow_redirects=False)
    return answer.json()["email"] if answer.status_code == 200 else None


def test_certified_provider_end_to_end(sso_app: Flask) -> None:
    """With the npm `oidc-provider` (PKCE required, `iss` in the response, back-channel
    logout): the email step leads to the provider, the account is created just in time with
    its mapped role; signing out at the portal redirects to the provider, whose back-channel
    logout then ends the person's other portal session too."""
    with ServerThread(sso_app) as portal:
        sso_app.config["BASE_URL"] = portal.url
        client = {
            "client_id": "berger-portal",
            "client_secret": "berger-secret-0123456789",
            "redirect_uris": [portal.url + "/auth/callback/berger"],
            "post_logout_redirect_uris": [portal.url + "/login"],
            "backchannel_logout_uri": portal.url + "/auth/backchannel-logout/berger",
            "backchannel_logout_session_required": True,
        }
        accounts = {
            "nora": {
                "email": "nora@berger.example",
                "email_verified": True,
                "name": "Nora Neu",
                "groups": ["portal-admins"],
            }
        }
        with NodeProvider([client], accounts) as idp:
            configure(
                sso_app,
                "berger",
                idp.issuer,
                client_id="berger-portal",
                client_secret="berger-secret-0123456789",
                jit=True,
                role_claim="groups",
                role_map={"portal-admins": "admin"},
            )
            devices = [requests.Session(), requests.Session()]
            for web in devices:
                token = _portal_page_token(web, portal.url + "/login")
                step = web.post(
                    portal.url + "/login",
                    data={"email": "nora@berger.example", "csrf_token": token},
                    allow_redirects=False,
                    timeout=10,
                )
                assert step.status_code == 302, step.text[:300]
                start_url = portal.url + step.headers["Location"]
                authorization = forwarded(web.get(start_url, allow_redirects=False, timeout=10))
                callback = idp.sign_in(authorization, "nora")
                assert callback.startswith(portal.url + "/auth/callback/berger?")
                assert query_of(callback)["iss"] == idp.issuer
                landed = web.get(callback, allow_redirects=False, timeout=10)
                assert landed.status_code == 302, landed.text[:500]
                assert _me(web, portal.url) == "nora@berger.example"
            role = rows(sso_app, "SELECT role FROM users WHERE email = 'nora@berger.example'")
            assert role[0][0] == "admin"
            sids = rows(sso_app, "SELECT provider_session_id FROM user_sessions")
            assert all(sid for (sid,) in sids)

            first, second = devices
            token = _portal_page_token(first, portal.url + "/")
            out = first.post(
                portal.url + "/logout",
                data={"csrf_token": token},
                allow_redirects=False,
                timeout=10,
            )
            assert out.status_code == 302
            leave = forwarded(first.get(portal.url + out.headers["Location"], timeout=10))
            assert leave.startswith(idp.issuer + "/session/end?")
            assert _me(first, portal.url) is None
            assert _me(second, portal.url) == "nora@berger.example"
            back = idp.end_session(leave)
            assert back.startswith(portal.url + "/login"), back
            # The provider's back-channel logout has ended the other device's session.
            assert _me(second, portal.url) is None, idp.log()
            events = rows(
                sso_app,
                "SELECT detail FROM auth_events WHERE kind = 'logout' AND method = 'sso' "
                "AND detail LIKE 'back-channel%'",
            )
            assert events and "1 session(s) ended" in events[-1][0]
            for web in devices:
                web.close()


# --- the admin page ------------------------------------------------------------------------


def _admin_form(issuer: str, **changes: str) -> dict[str, str]:
    form = {
        "issuer": issuer,
        "client_id": "berger-portal",
        "client_secret": "first-secret",
        "domains": "berger.example, Autohaus-Berger.example",
        "role_claim": "groups",
        "role_map": "portal-admins=admin\r\nsales=agent",
        "default_role": "viewer",
        "jit": "1",
        "allow_local_passwords": "1",
        "enabled": "1",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_admin_page_saves_settings_after_testing_discovery(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider
) -> None:
    login(browser, "admin@berger.example")
    page = browser.get("/admin/sso")
    assert page.status_code == 200
    assert PORTAL + "/auth/callback/berger" in text(page)
    token = csrf_token(browser, "/admin/sso")
    saved = browser.post("/admin/sso", data={**_admin_form(idp_berger.issuer), "csrf_token": token})
    assert saved.status_code == 302, text(saved)[:2000]
    shown = text(browser.get("/admin/sso"))
    assert "discovery document was found" in shown
    assert "first-secret" not in shown  # write-only
    assert "portal-admins=admin" in shown
    with sso_app.app_context():
        provider = get_session().scalars(sa.select(IdentityProvider)).one()
        assert provider.client_secret_encrypted != "first-secret"
        assert decrypt(provider.client_secret_encrypted) == "first-secret"
        assert sorted(d.domain for d in provider.domains) == [
            "autohaus-berger.example",
            "berger.example",
        ]
        assert json.loads(provider.role_map) == {"portal-admins": "admin", "sales": "agent"}
        assert (provider.default_role, provider.jit, provider.enabled) == ("viewer", True, True)
    # Saving again with an empty secret keeps the secret; unticked boxes switch off.
    form = _admin_form(idp_berger.issuer, client_secret="", jit="", allow_local_passwords="")
    again = browser.post("/admin/sso", data={**form, "csrf_token": token})
    assert again.status_code == 302
    with sso_app.app_context():
        provider = get_session().scalars(sa.select(IdentityProvider)).one()
        assert decrypt(provider.client_secret_encrypted) == "first-secret"
        assert (provider.jit, provider.allow_local_passwords) == (False, False)
    changes = rows(
        sso_app,
        "SELECT actor_user_id, organization_id FROM auth_events WHERE kind = 'sso_settings'",
    )
    assert len(changes) == 2
    assert changes[0][1] == org_id(sso_app, "berger") and changes[0][0] is not None


def test_admin_page_refuses_settings_that_cannot_work(
    sso_app: Flask, browser: FlaskClient, idp_berger: MockProvider, idp_kaya: MockProvider
) -> None:
    configure(sso_app, "kaya", idp_kaya.issuer, domains=["kaya.example", "shared.example"])
    login(browser, "admin@berger.example")
    token = csrf_token(browser, "/admin/sso")

    def post(**changes: str) -> TestResponse:
        return browser.post(
            "/admin/sso",
            data={**_admin_form(idp_berger.issuer), **changes, "csrf_token": token},
        )

    taken = post(domains="berger.example, shared.example")
    assert taken.status_code == 409
    assert "belongs to another organisation" in text(taken)
    with ImpostorProvider(idp_kaya.issuer) as impostor:
        mismatch = post(issuer=impostor.issuer)
    assert mismatch.status_code == 422
    assert "names another issuer" in text(mismatch)
    with MockProvider() as gone:
        unreachable_issuer = gone.issuer
    unreachable = post(issuer=unreachable_issuer)
    assert unreachable.status_code == 422
    assert "cannot be fetched" in text(unreachable)
    bad_map = post(role_map="portal-admins=boss")
    assert bad_map.status_code == 422
    assert "is not a role" in text(bad_map)
    no_secret = post(client_secret="")
    assert no_secret.status_code == 422
    assert rows(sso_app, "SELECT count(*) FROM identity_providers")[0][0] == 1  # Kaya's only


def test_admin_page_is_for_admins_only(sso_app: Flask, browser: FlaskClient) -> None:
    assert browser.get("/admin/sso").status_code == 302  # to the sign-in
    login(browser, "sales@berger.example")
    assert browser.get("/admin/sso").status_code == 403
    token = csrf_token(browser, "/")
    refused = browser.post(
        "/admin/sso", data={**_admin_form("https://x.example"), "csrf_token": token}
    )
    assert refused.status_code == 403
    assert rows(sso_app, "SELECT count(*) FROM identity_providers")[0][0] == 0
