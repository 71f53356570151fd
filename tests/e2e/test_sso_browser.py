"""Single sign-on in real Chromium against the certified npm `oidc-provider` (Node) on
loopback: a dealer employee types their email on the portal's sign-in page, lands on their
company's provider, signs in there and arrives at the inbox; signing out ends the portal
session and the provider's (RP-initiated logout, then back-channel logout).

Browser tests run on the SQLite backend only (tests/auth/test_sso.py covers both backends).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from flask import Flask

from auth import sso
from portal.db import get_session
from tests.support.oidc import NodeProvider
from tests.support.servers import ServerThread

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]

EMPLOYEE = "nora@berger.example"


@pytest.fixture
def provider(app: Flask, live_server: ServerThread) -> Iterator[NodeProvider]:
    """Autohaus Berger's own provider, with the portal registered as its client."""
    app.config["BASE_URL"] = live_server.url
    client = {
        "client_id": "berger-portal",
        "client_secret": "berger-secret-0123456789",
        "redirect_uris": [live_server.url + "/auth/callback/berger"],
        "post_logout_redirect_uris": [live_server.url + "/login"],
        "backchannel_logout_uri": live_server.url + "/auth/backchannel-logout/berger",
        "backchannel_logout_session_required": True,
    }
    accounts = {
        "nora": {
            "email": EMPLOYEE,
            "email_verified": True,
            "name": "Nora Neu",
            "groups": ["sales"],
        }
    }
    with NodeProvider([client], accounts) as idp:
        with app.app_context():
            db = get_session()
            org = sso.organization_by_slug(db, "berger")
            assert org is not None
            settings = sso.Settings(
                issuer=idp.issuer,
                client_id="berger-portal",
                client_secret="berger-secret-0123456789",
                domains=["berger.example"],
                role_claim="groups",
                role_map={"sales": "agent"},
                jit=True,
                allow_local_passwords=False,
            )
            sso.save_settings(db, org, settings)
        yield idp


@pytest.fixture
def english_page(browser: Browser, live_server: ServerThread) -> Iterator[Page]:
    """A page in English; fails the test if a portal page breaks its Content-Security-Policy
    (the way to the provider must not need a weaker policy)."""
    context = browser.new_context(locale="en-US")
    context.set_default_timeout(10_000)
    violations: list[str] = []

    def watch(message: ConsoleMessage) -> None:
        on_portal = str(message.location.get("url", "")).startswith(live_server.url)
        if on_portal and "Content Security Policy" in message.text:
            violations.append(message.text)

    page = context.new_page()
    page.on("console", watch)
    try:
        yield page
    finally:
        context.close()
    assert violations == [], violations


def live_sessions(app: Flask) -> int:
    import sqlalchemy as sa

    with app.app_context():
        return int(
            get_session()
            .execute(sa.text("SELECT count(*) FROM user_sessions WHERE revoked_at IS NULL"))
            .scalar_one()
        )


def test_dealer_employee_signs_in_and_out_through_the_company_provider(
    app: Flask, live_server: ServerThread, provider: NodeProvider, english_page: Page
) -> None:
    from playwright.sync_api import expect

    page = english_page
    page.goto(live_server.url + "/login")
    page.fill("#email", EMPLOYEE)
    page.locator("#continue").click()

    # The company's provider asks for the company account.
    page.wait_for_url(re.compile(re.escape(provider.issuer) + r"/interaction/"))
    page.fill("input[name=login]", "nora")
    page.fill("input[name=password]", "company-password")
    page.locator("button[type=submit]").click()

    # Back in the portal, signed in, on the inbox.
    page.wait_for_url(live_server.url + "/")
    expect(page.locator(".nav-user-name")).to_contain_text("Nora Neu")
    expect(page.locator(".nav-user-org")).to_contain_text("Autohaus Berger")
    assert live_sessions(app) == 1

    # Signing out goes to the provider, which confirms and sends the browser back.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(re.escape(provider.issuer) + r"/session/end"))
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/login"))
    assert live_sessions(app) == 0

    # The portal session is over: the inbox asks for a sign-in again.
    page.goto(live_server.url + "/")
    page.wait_for_url(re.compile(re.escape(live_server.url) + r"/login"))
    expect(page.locator("#email")).to_be_visible()
