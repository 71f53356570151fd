"""The server-rendered pages through Flask's test client: sign-in, what each demo user sees,
which actions a page offers, and that refused or invalid form posts change nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.api import Api

BRAKES = "Bremsgeräusche an der Vorderachse"  # Nordwerk's; shared with Berger (edit, details)
# and Schulz (comment, no contact details)
TURBO = "Garantiefall Turbolader"  # Südstern's, handled by Kaya; invisible to Berger
MUELLER = "Jürgen Müller"  # Nordwerk's customer of BRAKES

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
_GENERIC_LOGIN_ERROR = "Email or password is wrong."


@dataclass
class Visitor:
    """A signed-in browser session of one demo user (English pages unless asked otherwise)."""

    client: FlaskClient
    token: str

    def get(self, path: str) -> TestResponse:
        return self.client.get(path)

    def post(self, path: str, data: dict[str, Any] | None = None) -> TestResponse:
        return self.client.post(path, data={**(data or {}), "csrf_token": self.token})

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


def _token(client: FlaskClient, path: str) -> str:
    match = _META.search(client.get(path).get_data(as_text=True))
    assert match, f"no csrf-token meta tag on {path}"
    return match.group(1)


def _english_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def visit(app: Flask) -> Callable[[str], Visitor]:
    """`visit(email)` signs that demo user in (password `demo`) and returns the session."""

    def sign_in(email: str) -> Visitor:
        client = _english_client(app)
        response = client.post(
            "/login",
            data={"email": email, "password": "demo", "csrf_token": _token(client, "/login")},
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        # The session starts afresh at sign-in, so the form token is read again.
        return Visitor(client, _token(client, "/profile"))

    return sign_in


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app)


def _action_forms(html: str) -> list[str]:
    return re.findall(r'<form[^>]+action="(/cases/\d+/[a-z/0-9]+)"', html)


# --- sign-in -----------------------------------------------------------------------------


def test_sign_in_leads_to_the_inbox(app: Flask) -> None:
    """A correct email and password start a session and open the inbox."""
    client = _english_client(app)
    response = client.post(
        "/login",
        data={
            "email": "Sales@Berger.example ",
            "password": "demo",
            "csrf_token": _token(client, "/login"),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Anna Berger" in page
    assert "Autohaus Berger GmbH" in page


@pytest.mark.parametrize(
    ("email", "password"),
    [("sales@berger.example", "wrong"), ("nobody@berger.example", "demo")],
    ids=["wrong-password", "unknown-user"],
)
def test_failed_sign_in_gives_one_generic_answer(app: Flask, email: str, password: str) -> None:
    """Unknown user and wrong password look the same: 401 and one message."""
    client = _english_client(app)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": _token(client, "/login")},
    )
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert _GENERIC_LOGIN_ERROR in page
    assert f'value="{email}"' in page  # the email typed stays in the form
    assert client.get("/").status_code == 302  # still signed out


def test_sign_in_page_is_german_by_default(app: Flask) -> None:
    """Without a language preference the portal speaks German."""
    client = app.test_client()
    response = client.post(
        "/login",
        data={"email": "x@y.example", "password": "x", "csrf_token": _token(client, "/login")},
    )
    assert "E-Mail oder Passwort ist falsch." in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("next_url", "expected"),
    [
        ("/customers", "/customers"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ],
    ids=["relative", "protocol-relative", "absolute", "backslash"],
)
def test_sign_in_honours_only_a_relative_next(app: Flask, next_url: str, expected: str) -> None:
    """`next` may lead to a page of the portal, never to another site."""
    client = _english_client(app)
    response = client.post(
        "/login",
        data={
            "email": "sales@berger.example",
            "password": "demo",
            "next": next_url,
            "csrf_token": _token(client, "/login"),
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_pages_need_a_signed_in_user(app: Flask, api: Api) -> None:
    """Every page but the sign-in page redirects a stranger to the sign-in page."""
    client = _english_client(app)
    case_id = api.case_id(BRAKES)
    for path in ("/", "/dashboard", "/customers", f"/cases/{case_id}", "/profile", "/admin"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path


def test_sign_out_ends_the_session(visit: Callable[[str], Visitor]) -> None:
    """After signing out the same browser is a stranger again."""
    dealer = visit("sales@berger.example")
    response = dealer.post("/logout")
    assert response.status_code == 302
    assert dealer.get("/").status_code == 302


def test_forms_without_csrf_token_are_refused(visit: Callable[[str], Visitor], api: Api) -> None:
    """A form post without the CSRF token does nothing (400)."""
    dealer = visit("sales@berger.example")
    case_id = api.case_id(BRAKES)
    response = dealer.client.post(f"/cases/{case_id}/claim", data={})
    assert response.status_code == 400
    assert api.query("SELECT handling_user_id FROM cases WHERE id = :i", i=case_id)[0][0] is None


# --- pages per user ------------------------------------------------------------------------

PAGES = ["/", "/?scope=mine", "/?scope=organization", "/?scope=shared", "/dashboard"]
PAGES += ["/customers", "/customers?q=M", "/profile", "/customers/{mueller}", "/cases/{brakes}"]
USERS = {
    "agent@nordwerk.example": ["/cases/new", "/customers/new", "/cases/new?customer_id={mueller}"],
    "admin@nordwerk.example": ["/admin"],
    "viewer@nordwerk.example": [],
    "sales@berger.example": ["/cases/new?q=Müller"],
    "admin@berger.example": ["/admin"],
    "quality@schulz.example": [],
}


@pytest.mark.parametrize("email", list(USERS))
def test_every_page_answers_for_its_demo_users(
    visit: Callable[[str], Visitor], api: Api, email: str
) -> None:
    """Each demo user can open every page meant for them (with the CSRF meta tag)."""
    user = visit(email)
    ids = {"mueller": api.customer_id(MUELLER), "brakes": api.case_id(BRAKES)}
    for template in PAGES + USERS[email]:
        path = template.format(**ids)
        html = user.text(path)
        assert '<meta name="csrf-token" content="' in html, path
        assert '<html lang="en">' in html, path


def test_pages_carry_no_inline_script_style_or_handlers(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """The CSP allows only our own files: no inline <script>, style attribute or on* handler."""
    admin = visit("admin@nordwerk.example")
    paths = ["/", "/dashboard", "/customers", "/profile", "/admin", "/cases/new"]
    paths += [f"/cases/{api.case_id(BRAKES)}", f"/customers/{api.customer_id(MUELLER)}"]
    for path in paths:
        html = admin.text(path)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle\s*=", html, re.IGNORECASE), path
        assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE), path
        for form in re.findall(r"<form[^>]*method=\"post\"[^>]*>.*?</form>", html, re.DOTALL):
            assert 'name="csrf_token"' in form, (path, form[:200])


def test_a_case_of_another_value_chain_is_not_found(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """Berger never sees Südstern's case: 404, and nothing of it on the page."""
    dealer = visit("sales@berger.example")
    response = dealer.get(f"/cases/{api.case_id(TURBO)}")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert TURBO not in page
    assert "SUEDSTERN-KETTE-GEHEIM" not in page
    assert "Case not found." in page


def test_admin_page_is_for_admins_only(visit: Callable[[str], Visitor]) -> None:
    """An agent gets the 403 page for the organisation admin page."""
    response = visit("agent@nordwerk.example").get("/admin")
    assert response.status_code == 403
    assert "Only admins manage users." in response.get_data(as_text=True)


def test_inbox_tabs_filter_the_cases(visit: Callable[[str], Visitor]) -> None:
    """Nordwerk's case shared with Berger is under "shared with us", not "my organisation"."""
    dealer = visit("sales@berger.example")
    assert BRAKES in dealer.text("/?scope=shared")
    assert BRAKES not in dealer.text("/?scope=organization")
    assert BRAKES in dealer.text("/?scope=all&q=Bremsger")
    assert BRAKES not in dealer.text("/?scope=all&status=closed")


def test_inbox_pages_with_a_cursor_and_survives_a_bad_one(
    visit: Callable[[str], Visitor],
) -> None:
    """The next-page link leads to further cases; a broken cursor shows a message."""
    agent = visit("agent@nordwerk.example")
    first = agent.text("/")
    match = re.search(r'href="(/\?[^"]*cursor=[^"]+)" rel="next"', first)
    assert match, "Nordwerk sees more than one page of cases"
    second = agent.text(match.group(1).replace("&amp;", "&"))
    first_ids = set(re.findall(r'data-case-id="(\d+)"', first))
    second_ids = set(re.findall(r'data-case-id="(\d+)"', second))
    assert second_ids
    assert not first_ids & second_ids
    broken = agent.get("/?cursor=not-a-cursor")
    assert broken.status_code == 200
    assert "This page link is no longer valid" in broken.get_data(as_text=True)


# --- the case page -----------------------------------------------------------------------


def test_viewer_gets_no_action_buttons(visit: Callable[[str], Visitor], api: Api) -> None:
    """A viewer reads the case but is offered no form that would change it."""
    viewer = visit("viewer@nordwerk.example")
    html = viewer.text(f"/cases/{api.case_id(BRAKES)}")
    assert BRAKES in html
    assert _action_forms(html) == []
    assert "limited by your role" in html


def test_owner_agent_gets_every_action(visit: Callable[[str], Visitor], api: Api) -> None:
    """The owner's agent may change status, edit, comment, claim, hand over and share."""
    case_id = api.case_id(BRAKES)
    html = visit("agent@nordwerk.example").text(f"/cases/{case_id}")
    actions = {path.split("/")[3] for path in _action_forms(html)}
    assert {"status", "edit", "entries", "claim", "handover", "shares"} <= actions


def test_partner_cannot_share_and_supplier_cannot_edit(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """Only the owner shares; a comment share allows entries but no edits."""
    case_id = api.case_id(BRAKES)
    dealer = {
        p.split("/")[3]
        for p in _action_forms(visit("sales@berger.example").text(f"/cases/{case_id}"))
    }
    assert "shares" not in dealer
    assert {"edit", "entries", "claim"} <= dealer
    supplier_html = visit("quality@schulz.example").text(f"/cases/{case_id}")
    supplier = {p.split("/")[3] for p in _action_forms(supplier_html)}
    assert supplier == {"entries"}


def test_refused_post_answers_403_and_changes_nothing(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """The supplier (comment access) cannot change the status, whatever the form says."""
    case_id = api.case_id(BRAKES)
    before = api.query("SELECT status, version FROM cases WHERE id = :i", i=case_id)[0]
    entries = api.query("SELECT count(*) FROM timeline_entries WHERE case_id = :i", i=case_id)
    supplier = visit("quality@schulz.example")
    response = supplier.post(
        f"/cases/{case_id}/status", {"version": str(before.version), "status": "closed"}
    )
    assert response.status_code == 403
    assert "You may not change this case." in response.get_data(as_text=True)
    assert api.query("SELECT status, version FROM cases WHERE id = :i", i=case_id)[0] == before
    after = api.query("SELECT count(*) FROM timeline_entries WHERE case_id = :i", i=case_id)
    assert after == entries
    assert supplier.post(f"/cases/{case_id}/claim").status_code == 403


def test_note_for_manufacturer_and_dealer_stays_hidden_from_the_supplier(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """An entry for Nordwerk and Berger is not shown to Schulz; a shared one is."""
    case_id = api.case_id(BRAKES)
    dealer = visit("sales@berger.example")
    nordwerk, berger = api.org_id("nordwerk"), api.org_id("berger")
    response = dealer.post(
        f"/cases/{case_id}/entries",
        {
            "kind": "note",
            "body": "Kulanzrahmen mit Nordwerk abgestimmt",
            "audience": "organizations",
            "audience_org": [str(berger), str(nordwerk)],
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("#timeline")
    dealer.post(
        f"/cases/{case_id}/entries",
        {"kind": "note", "body": "Teile sind bestellt", "audience": "shared"},
    )
    assert "Kulanzrahmen mit Nordwerk abgestimmt" in visit("agent@nordwerk.example").text(
        f"/cases/{case_id}"
    )
    supplier_page = visit("quality@schulz.example").text(f"/cases/{case_id}")
    assert "Kulanzrahmen mit Nordwerk abgestimmt" not in supplier_page
    assert "Teile sind bestellt" in supplier_page
    assert "Intern: Kulanz bis 300 EUR freigegeben." not in supplier_page


def test_invalid_entry_keeps_the_text_and_explains(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """An interaction without channel is refused with a readable message; the text stays."""
    case_id = api.case_id(BRAKES)
    dealer = visit("sales@berger.example")
    response = dealer.post(
        f"/cases/{case_id}/entries",
        {"kind": "interaction", "body": "Rückruf beim Kunden", "audience": "shared"},
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "An interaction needs a channel and a direction." in page
    assert "Rückruf beim Kunden</textarea>" in page


def test_status_change_is_recorded_as_a_readable_change(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """A status change lands on the timeline as "<who> changed the status from A to B"."""
    case_id = api.case_id(BRAKES)
    version = api.query("SELECT version FROM cases WHERE id = :i", i=case_id)[0][0]
    agent = visit("agent@nordwerk.example")
    response = agent.post(
        f"/cases/{case_id}/status", {"version": str(version), "status": "waiting"}
    )
    assert response.status_code == 302
    page = agent.text(f"/cases/{case_id}")
    assert "Status is now “Waiting”." in page
    assert "Lena Hoffmann changed the status from Open to Waiting." in page


def test_stale_edit_shows_the_current_values(visit: Callable[[str], Visitor], api: Api) -> None:
    """Saving over someone else's change is refused (409) and shows what changed."""
    case_id = api.case_id(BRAKES)
    version = api.query("SELECT version FROM cases WHERE id = :i", i=case_id)[0][0]
    agent, dealer = visit("agent@nordwerk.example"), visit("sales@berger.example")
    form = {"version": str(version), "kind": "warranty", "priority": "high", "description": ""}
    assert (
        dealer.post(f"/cases/{case_id}/edit", {**form, "subject": "Vom Händler"}).status_code == 302
    )
    response = agent.post(f"/cases/{case_id}/edit", {**form, "subject": "Vom Hersteller"})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "changed meanwhile" in page
    assert "Vom Händler" in page  # the current value
    assert 'value="Vom Hersteller"' in page  # what the agent typed is kept
    assert api.query("SELECT subject FROM cases WHERE id = :i", i=case_id)[0][0] == "Vom Händler"


def test_claim_is_shown_on_the_case_page(visit: Callable[[str], Visitor], api: Api) -> None:
    """After the dealer claims the case, the manufacturer sees who handles it."""
    case_id = api.case_id(BRAKES)
    dealer = visit("sales@berger.example")
    assert dealer.post(f"/cases/{case_id}/claim").status_code == 302
    assert "You are handling this case." in dealer.text(f"/cases/{case_id}")
    page = visit("agent@nordwerk.example").text(f"/cases/{case_id}")
    assert "Anna Berger is handling this case." in page
    forms = {p.split("/")[3] for p in _action_forms(page)}
    assert "claim" not in forms
    assert "handover" not in forms
    owner_admin = {
        p.split("/")[3]
        for p in _action_forms(visit("admin@nordwerk.example").text(f"/cases/{case_id}"))
    }
    assert {"release", "handover"} <= owner_admin


def test_hand_over_to_a_partner_user(visit: Callable[[str], Visitor], api: Api) -> None:
    """The owner hands the case to a dealer's agent with a message."""
    case_id = api.case_id(BRAKES)
    agent = visit("agent@nordwerk.example")
    target = f"user:{api.user_id('sales@berger.example')}"
    response = agent.post(
        f"/cases/{case_id}/handover", {"target": target, "message": "Bitte Termin machen"}
    )
    assert response.status_code == 302
    page = visit("sales@berger.example").text(f"/cases/{case_id}")
    assert "You are handling this case." in page
    assert "Bitte Termin machen" in page


def test_share_and_revoke(visit: Callable[[str], Visitor], api: Api) -> None:
    """The owner shares with Kaya (read, no details) and revokes it again."""
    case_id = api.case_id(BRAKES)
    kaya = api.org_id("kaya")
    agent = visit("agent@nordwerk.example")
    response = agent.post(
        f"/cases/{case_id}/shares", {"organization_id": str(kaya), "access": "read"}
    )
    assert response.status_code == 302
    kaya_user = visit("service@kaya.example")
    page = kaya_user.text(f"/cases/{case_id}")
    assert "Shared with your organisation by Lena Hoffmann (Nordwerk Automobile AG)." in page
    assert "contact details are not shared" in page
    assert agent.post(f"/cases/{case_id}/shares/{kaya}/revoke").status_code == 302
    assert kaya_user.get(f"/cases/{case_id}").status_code == 404


def test_share_with_an_organisation_outside_the_chain_is_explained(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """Südstern is not in Nordwerk's chain: 422 with the service's message."""
    case_id = api.case_id(BRAKES)
    response = visit("agent@nordwerk.example").post(
        f"/cases/{case_id}/shares",
        {"organization_id": str(api.org_id("suedstern")), "access": "edit"},
    )
    assert response.status_code == 422
    assert "Cases can only be shared within the owner&#39;s value chain." in response.get_data(
        as_text=True
    )


def test_why_can_i_see_this_names_the_sharer(visit: Callable[[str], Visitor], api: Api) -> None:
    """The dealer learns who shared the case with it, at which level and since when."""
    page = visit("sales@berger.example").text(f"/cases/{api.case_id(BRAKES)}")
    assert "Why can I see this?" in page
    assert "Shared with your organisation by Lena Hoffmann (Nordwerk Automobile AG)." in page
    assert "Access for your organisation: Edit" in page


# --- customers ----------------------------------------------------------------------------


def test_customer_contact_details_follow_the_policy(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """The dealer (share with details) sees phones as tel: links; the supplier does not."""
    customer_id = api.customer_id(MUELLER)
    dealer_page = visit("sales@berger.example").text(f"/customers/{customer_id}")
    assert 'href="tel:+491712345678"' in dealer_page
    assert "+49 171 2345678" in dealer_page
    assert "Lindenallee 12" in dealer_page
    supplier_page = visit("quality@schulz.example").text(f"/customers/{customer_id}")
    assert "tel:" not in supplier_page
    assert "juergen.mueller@example.de" not in supplier_page
    assert "Lindenallee" not in supplier_page
    assert "Contact details are not shared with your organisation." in supplier_page
    assert BRAKES in supplier_page
    assert "Intern: Kulanz" not in supplier_page  # Nordwerk's internal note


def test_new_customer_form_explains_and_keeps_values(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """A bad phone number is named; the values typed stay; a good form creates the customer."""
    agent = visit("agent@nordwerk.example")
    form = {"name": "Käthe Groß", "kind": "person", "phones": "0171 2345679\nkaputt"}
    response = agent.post("/customers/new", {**form, "city": "Kiel"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Not a valid phone number: kaputt" in page
    assert 'value="Käthe Groß"' in page
    assert 'value="Kiel"' in page
    empty = agent.post("/customers/new", {"name": " ", "kind": "person"})
    assert empty.status_code == 422
    assert "Please fill in this field." in empty.get_data(as_text=True)
    created = agent.post("/customers/new", {**form, "phones": "0171 2345679", "city": "Kiel"})
    assert created.status_code == 302
    page = agent.text(created.headers["Location"])
    assert "Customer Käthe Groß was created." in page
    assert "+49 171 2345679" in page


def test_new_case_for_a_customer(visit: Callable[[str], Visitor], api: Api) -> None:
    """A case opened from the form belongs to the actor's organisation and shows up."""
    agent = visit("agent@nordwerk.example")
    customer_id = api.customer_id(MUELLER)
    invalid = agent.post(
        "/cases/new", {"customer_id": str(customer_id), "subject": "", "kind": "service"}
    )
    assert invalid.status_code == 422
    response = agent.post(
        "/cases/new",
        {
            "customer_id": str(customer_id),
            "subject": "Klappern im Motorraum",
            "kind": "service",
            "priority": "urgent",
            "description": "Seit gestern",
        },
    )
    assert response.status_code == 302
    page = agent.text(response.headers["Location"])
    assert "Klappern im Motorraum" in page
    assert "Urgent" in page


def test_owner_edits_customer_and_adds_a_contact(visit: Callable[[str], Visitor], api: Api) -> None:
    """Only the owner's agents get the edit forms; their changes show on the page."""
    customer_id = api.customer_id(MUELLER)
    assert "/edit" not in "".join(
        re.findall(
            r'action="([^"]+)"', visit("sales@berger.example").text(f"/customers/{customer_id}")
        )
    )
    agent = visit("agent@nordwerk.example")
    version = api.query("SELECT version FROM customers WHERE id = :i", i=customer_id)[0][0]
    response = agent.post(
        f"/customers/{customer_id}/edit",
        {
            "version": str(version),
            "name": "Jürgen Müller",
            "kind": "person",
            "phones": "0171 2345678",
            "emails": "jm@example.de",
            "street": "Lindenallee 14",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        },
    )
    assert response.status_code == 302
    contact = agent.post(
        f"/customers/{customer_id}/contacts",
        {"name": "Erika Müller", "position_title": "Ehefrau", "phones": "030 7654321"},
    )
    assert contact.status_code == 302
    page = agent.text(f"/customers/{customer_id}")
    assert "Lindenallee 14" in page
    assert "jm@example.de" in page
    assert "Erika Müller" in page
    refused = visit("sales@berger.example").post(
        f"/customers/{customer_id}/edit",
        {"version": str(version + 1), "name": "X", "kind": "person"},
    )
    assert refused.status_code == 403


# --- profile and admin ----------------------------------------------------------------------


def test_language_choice_is_kept_in_the_profile(visit: Callable[[str], Visitor]) -> None:
    """Choosing German makes every page German, whatever the browser says."""
    dealer = visit("sales@berger.example")
    assert "Inbox" in dealer.text("/")
    response = dealer.post("/profile/language", {"locale": "de", "next": "/customers"})
    assert response.headers["Location"] == "/customers"
    page = dealer.text("/")
    assert '<html lang="de">' in page
    assert "Posteingang" in page
    assert "Mit uns geteilt" in page
    dealer.post("/profile/language", {"locale": ""})
    assert "Inbox" in dealer.text("/")


def test_api_token_is_shown_once_and_can_be_revoked(
    visit: Callable[[str], Visitor], app: Flask
) -> None:
    """The token appears in the answer to its creation only, and works until revoked."""
    agent = visit("agent@nordwerk.example")
    response = agent.post("/profile/tokens", {"name": "ERP"})
    assert response.status_code == 201
    token = re.search(r'id="new-token-value" value="(wk_[^"]+)"', response.get_data(as_text=True))
    assert token
    secret = token.group(1)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert app.test_client().get("/api/v1/me", headers=bearer).status_code == 200
    profile = agent.text("/profile")
    assert secret not in profile
    assert "ERP" in profile
    token_id = re.search(r'action="/profile/tokens/(\d+)/revoke"', profile)
    assert token_id
    assert agent.post(f"/profile/tokens/{token_id.group(1)}/revoke").status_code == 302
    assert app.test_client().get("/api/v1/me", headers=bearer).status_code == 401


def test_admin_creates_changes_and_deactivates_a_user(
    visit: Callable[[str], Visitor], app: Flask, api: Api
) -> None:
    """An admin adds a colleague, makes them a viewer and deactivates them."""
    admin = visit("admin@nordwerk.example")
    short = admin.post(
        "/admin/users",
        {"name": "Kim Neu", "email": "kim@nordwerk.example", "role": "agent", "password": "kurz"},
    )
    assert short.status_code == 422
    assert "This password cannot be used: at least 8 characters." in short.get_data(as_text=True)
    created = admin.post(
        "/admin/users",
        {
            "name": "Kim Neu",
            "email": "kim@nordwerk.example",
            "role": "agent",
            "password": "lang-genug-123",
        },
    )
    assert created.status_code == 302
    user_id = api.user_id("kim@nordwerk.example")
    assert admin.post(f"/admin/users/{user_id}/role", {"role": "viewer"}).status_code == 302
    assert admin.post(f"/admin/users/{user_id}/active", {"active": "0"}).status_code == 302
    row = api.query("SELECT role, active FROM users WHERE id = :i", i=user_id)[0]
    assert (row.role, bool(row.active)) == ("viewer", False)
    page = admin.text("/admin")
    assert "Kim Neu" in page
    assert "deactivated" in page
    client = _english_client(app)
    refused = client.post(
        "/login",
        data={
            "email": "kim@nordwerk.example",
            "password": "lang-genug-123",
            "csrf_token": _token(client, "/login"),
        },
    )
    assert refused.status_code == 401
    own = admin.post(
        f"/admin/users/{api.user_id('admin@nordwerk.example')}/active", {"active": "0"}
    )
    assert own.status_code == 302
    assert "You cannot deactivate yourself." in admin.text("/admin")
    assert (
        visit("agent@nordwerk.example")
        .post(f"/admin/users/{user_id}/active", {"active": "1"})
        .status_code
        == 403
    )


def test_customer_page_shows_who_is_handling_a_case(app: Flask) -> None:
    """A dealer about to call a customer sees that the interaction center is on it."""
    from tests.support.api import Api
    from tests.support.web import login

    api = Api(app)
    case_id = api.case_id("Bremsgeräusche an der Vorderachse")
    assert api("agent@nordwerk.example").post(f"/cases/{case_id}/claim").status == 200
    dealer = app.test_client()
    dealer.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    login(dealer, "sales@berger.example")
    page = dealer.get(f"/customers/{api.customer_id('Jürgen Müller')}").get_data(as_text=True)
    assert "Lena Hoffmann (Nordwerk Automobile AG) is handling this contact since" in page


def test_dashboard_counts_are_exact_below_the_cap_and_say_so_above(
    visit: Callable[[str], Visitor], api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status counts cover every visible case until the cap; above it, the page says
    they are counted among the most recently active cases and the cards show "n+"."""
    from shared_records import ui_queries

    agent = visit("agent@nordwerk.example")
    visible = api.query(
        "SELECT count(*) FROM case_visibility v JOIN organizations o "
        "ON o.id = v.organization_id WHERE o.slug = 'nordwerk'"
    )[0][0]
    assert visible > 2
    html = agent.get("/dashboard").get_data(as_text=True)
    assert 'id="counts-capped"' not in html
    assert re.findall(r'<a href="/\?status=\w+">(\d+)</a>', html)
    shown = sum(int(n) for n in re.findall(r'<a href="/\?status=\w+">(\d+)</a>', html))
    assert shown == visible

    monkeypatch.setattr(ui_queries, "COUNT_CAP", 2)
    html = agent.get("/dashboard").get_data(as_text=True)
    assert 'id="counts-capped"' in html
    assert "2 most recently active" in html
    shown = sum(int(n) for n in re.findall(r'<a href="/\?status=\w+">(\d+)</a>', html))
    assert shown == 2


def test_a_large_value_chain_lists_a_page_of_partners_and_finds_the_others(
    visit: Callable[[str], Visitor], api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The share and handover forms list at most TARGET_LIST_LIMIT partners; a search by name
    finds any other, and sharing with it works as before."""
    from shared_records import ui_queries

    monkeypatch.setattr(ui_queries, "TARGET_LIST_LIMIT", 1)
    agent = visit("agent@nordwerk.example")
    case_id = api.case_id(BRAKES)
    html = agent.get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'id="share-limited"' in html and 'id="handover-limited"' in html
    kaya = api.query("SELECT id FROM organizations WHERE slug = 'kaya'")[0][0]
    assert f'value="{kaya}"' not in html  # "Autohaus Berger" comes first by name

    found = agent.get(f"/cases/{case_id}?partner_q=kaya&find_for=share").get_data(as_text=True)
    assert f'<option value="{kaya}"' in found
    assert f'value="org:{kaya}"' in found
    assert "data-show-on-load" in found.split('id="share-dialog"')[1].split(">")[0]

    response = agent.post(
        f"/cases/{case_id}/shares", {"organization_id": str(kaya), "access": "read"}
    )
    assert response.status_code in (302, 303)
    assert (
        api.query(
            "SELECT count(*) FROM case_shares WHERE case_id = :c AND organization_id = :o",
            c=case_id,
            o=kaya,
        )[0][0]
        == 1
    )
