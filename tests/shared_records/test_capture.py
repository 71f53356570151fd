"""Capture on the phone: business cards (vCard), the short form, and consents given on the spot.

A vCard is only read (never stored) until the user creates the customer; bad files get a
clear 4xx message. Consents are stored with channel, purpose, time, user and organisation,
in the same transaction as the captured customer.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.api import Answer
from tests.support.web import csrf_token, login

EN = {"Accept-Language": "en"}
ELSEWHERE = "This customer may already be served in your network; contact your manufacturer."

pytestmark = pytest.mark.usefixtures("backend")

CARD = """BEGIN:VCARD
VERSION:3.0
N:Brandt;Sophie;;;
FN:Sophie Brandt
ORG:Brandt Bau GmbH;Einkauf
TITLE:Einkaufsleiterin
TEL;TYPE=CELL:0170 5551234
TEL;TYPE=WORK:+49 40 5551234
EMAIL;TYPE=INTERNET:s.brandt@brandt-bau.example
ADR;TYPE=WORK:;;Kaistraße 5;Hamburg;;20095;Deutschland
END:VCARD
"""


def _upload(
    api: Any, data: bytes, name: str = "card.vcf", email: str = "sales@berger.example"
) -> Answer:
    return api(email).call(
        "POST",
        "/customers/vcard",
        data={"file": (io.BytesIO(data), name, "text/vcard")},
        headers=EN,
    )


# --- vCard API -----------------------------------------------------------------------------


def test_vcard_is_read_into_a_would_be_customer(api: Any) -> None:
    """A scanner app's card fills every field; nothing is stored."""
    before = api.query("SELECT count(*) FROM customers")[0][0]
    answer = _upload(api, CARD.encode())
    assert answer.status == 200, answer.text
    assert answer.body["card"] == {
        "name": "Sophie Brandt",
        "company": "Brandt Bau GmbH Einkauf",
        "position_title": "Einkaufsleiterin",
        "phones": ["0170 5551234", "+49 40 5551234"],
        "emails": ["s.brandt@brandt-bau.example"],
        "street": "Kaistraße 5",
        "postal_code": "20095",
        "city": "Hamburg",
        "country": "DE",
    }
    assert answer.body["cards"] == 1 and answer.body["notice"] is None
    assert answer.body["possible_duplicates"]["candidates"] == []
    assert api.query("SELECT count(*) FROM customers")[0][0] == before


def test_vcard_runs_the_duplicate_check(api: Any) -> None:
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:J. Müller\r\nTEL:0171/2345678\r\nEND:VCARD\r\n"
    answer = _upload(api, card.encode())
    assert answer.status == 200
    candidates = answer.body["possible_duplicates"]["candidates"]
    assert [c["customer_id"] for c in candidates] == [api.customer_id("Jürgen Müller")]


def test_vcard_matching_a_hidden_partner_customer_reveals_nothing(api: Any) -> None:
    card = "BEGIN:VCARD\nVERSION:3.0\nFN:Fuhrpark\nORG:K.\nTEL:0711 4567890\nEND:VCARD\n"
    answer = _upload(api, card.encode())
    assert answer.body["possible_duplicates"] == {
        "candidates": [],
        "elsewhere_in_network": True,
        "message": ELSEWHERE,
    }


def test_windows_1252_vcard_is_read(api: Any) -> None:
    """Older exports are Windows-1252, not UTF-8: "Müller" must survive."""
    card = "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Müller;Jürgen\r\nFN:Jürgen Müller\r\nEND:VCARD\r\n"
    answer = _upload(api, card.encode("cp1252"))
    assert answer.status == 200, answer.text
    assert answer.body["card"]["name"] == "Jürgen Müller"


def test_vcard_2_1_quoted_printable_is_read(api: Any) -> None:
    card = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\n"
        "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=BCrgen M=C3=BCller=\r\n"
        "=20von Hausen\r\nTEL;CELL:0171 2345678\r\nEND:VCARD\r\n"
    )
    answer = _upload(api, card.encode())
    assert answer.status == 200, answer.text
    assert answer.body["card"]["name"] == "Jürgen Müller von Hausen"


def test_utf16_vcard_with_bom_is_read(api: Any) -> None:
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jörg Schulz\r\nEND:VCARD\r\n"
    answer = _upload(api, card.encode("utf-16"))
    assert answer.status == 200, answer.text
    assert answer.body["card"]["name"] == "Jörg Schulz"


def test_several_cards_take_the_first_and_say_so(api: Any) -> None:
    second = CARD.replace("Sophie Brandt", "Zweite Person")
    answer = _upload(api, (CARD + second + CARD).encode())
    assert answer.status == 200
    assert answer.body["card"]["name"] == "Sophie Brandt"
    assert answer.body["cards"] == 3
    assert answer.body["notice"] == (
        "The file holds 3 cards; only the first one (Sophie Brandt) was read."
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"BEGIN:VCARD\nVERSION:3.0\nFN:Offen\n", "not a valid vCard"),
        (b"Hallo, das ist keine Karte", "not a valid vCard"),
        (b"BEGIN:VCALENDAR\nVERSION:2.0\nEND:VCALENDAR\n", "not a valid vCard"),
        (b"BEGIN:VCARD\nVERSION:3.0\nTEL:0170 5551234\nEND:VCARD\n", "has no name"),
        (b"   \n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        (b"BEGIN:VCARD\nFN:\x81\x8d\x8f\x90\nEND:VCARD\n", "cannot be read"),
    ],
    ids=["unclosed", "prose", "calendar", "nameless", "empty", "binary", "undecodable"],
)
def test_bad_vcards_get_a_clear_error(api: Any, content: bytes, needle: str) -> None:
    answer = _upload(api, content)
    assert answer.status == 422, answer.text
    assert answer.body["error"]["code"] == "vcard_invalid"
    assert needle in answer.body["error"]["message"]


def test_huge_vcard_is_refused(api: Any) -> None:
    """Above 256 KB: 413 with a message that says the limit."""
    photo = "PHOTO;ENCODING=b;TYPE=JPEG:" + "A" * (300 * 1024) + "\n"
    card = CARD.replace("END:VCARD", photo + "END:VCARD")
    answer = _upload(api, card.encode())
    assert answer.status == 413
    assert answer.body["error"]["code"] == "vcard_too_large"
    assert "256 KB" in answer.body["error"]["message"]


def test_upload_beyond_the_request_limit_is_refused_as_json(api: Any) -> None:
    answer = _upload(api, b"A" * (2 * 1024 * 1024))
    assert answer.status == 413
    assert answer.body["error"]["code"] in {"vcard_too_large", "body_too_large"}


def test_vcard_without_file_is_a_bad_request(api: Any) -> None:
    answer = api("sales@berger.example").call(
        "POST", "/customers/vcard", data={"other": "x"}, headers=EN
    )
    assert answer.status == 400
    assert answer.body["error"]["code"] == "file_missing"


# --- consents API --------------------------------------------------------------------------


def test_consents_are_recorded_with_user_and_time(api: Any) -> None:
    schaefer = api.customer_id("Sabine Schäfer")
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    answer = api("sales@berger.example").post(
        f"/customers/{schaefer}/consents",
        json={
            "items": [
                {"channel": "email", "purpose": "newsletter"},
                {"channel": "phone", "purpose": "service"},
            ]
        },
    )
    assert answer.status == 201, answer.text
    rows = {(r["channel"], r["purpose"]): r for r in answer.body["items"]}
    row = rows[("email", "newsletter")]
    assert row["granted"] is True and row["source"] == "api"
    assert row["recorded_by_user_id"] == api.user_id("sales@berger.example")
    assert row["recorded_by_name"] == "Anna Berger"
    assert row["organization_id"] == api.org_id("berger")
    assert dt.datetime.fromisoformat(row["recorded_at"]) >= before

    withdrawn = api("sales@berger.example").post(
        f"/customers/{schaefer}/consents",
        json={"items": [{"channel": "email", "purpose": "newsletter", "granted": False}]},
    )
    assert withdrawn.status == 201
    in_force = {(r["channel"], r["purpose"]): r["granted"] for r in withdrawn.body["in_force"]}
    assert in_force == {("email", "newsletter"): False, ("phone", "service"): True}
    assert len(withdrawn.body["items"]) == 3  # history is kept


def test_consents_need_contact_details(api: Any) -> None:
    """Schulz sees Müller without contact details: it may neither record nor read consents."""
    mueller = api.customer_id("Jürgen Müller")
    body = {"items": [{"channel": "email", "purpose": "marketing"}]}
    schulz = api("quality@schulz.example")
    assert schulz.post(f"/customers/{mueller}/consents", json=body).status == 403
    assert schulz.get(f"/customers/{mueller}/consents").status == 403
    fleet = api.customer_id("Köhler Logistik GmbH")
    assert api("sales@berger.example").post(f"/customers/{fleet}/consents", json=body).status == 404


def test_each_organisation_reads_only_its_own_consents(api: Any) -> None:
    mueller = api.customer_id("Jürgen Müller")
    body = {"items": [{"channel": "sms", "purpose": "service"}]}
    berger = api("sales@berger.example")
    assert berger.post(f"/customers/{mueller}/consents", json=body).status == 201
    nordwerk = api("agent@nordwerk.example").get(f"/customers/{mueller}/consents")
    assert nordwerk.status == 200 and nordwerk.body["items"] == []


def test_consent_input_is_strict(api: Any) -> None:
    schaefer = api.customer_id("Sabine Schäfer")
    user = api("sales@berger.example")
    bad_channel = {"items": [{"channel": "pigeon", "purpose": "service"}]}
    assert user.post(f"/customers/{schaefer}/consents", json=bad_channel).status == 422
    assert user.post(f"/customers/{schaefer}/consents", json={"items": []}).status == 422
    fleet_contact = api.query("SELECT id FROM contacts WHERE name = 'Dörte Köhler'")[0][0]
    other = {"contact_id": fleet_contact, "items": [{"channel": "sms", "purpose": "service"}]}
    answer = user.post(f"/customers/{schaefer}/consents", json=other)
    assert answer.status == 422 and "contact_id" in answer.body["error"]["fields"]
    assert api.query("SELECT count(*) FROM consents")[0][0] == 0


# --- capture pages -------------------------------------------------------------------------


def _signed_in(client: FlaskClient, email: str = "sales@berger.example") -> str:
    assert login(client, email).status_code == 302
    return csrf_token(client, "/capture")


def test_capture_page_is_made_for_phones(client: FlaskClient) -> None:
    _signed_in(client)
    page = client.get("/capture", headers=EN).get_data(as_text=True)
    assert 'accept=".vcf,text/vcard,text/x-vcard"' in page
    assert 'enctype="multipart/form-data"' in page
    assert 'name="consent" value="email:marketing"' in page
    customers = client.get("/customers", headers=EN).get_data(as_text=True)
    assert 'href="/capture"' in customers


def test_viewers_cannot_capture(client: FlaskClient) -> None:
    assert login(client, "viewer@nordwerk.example").status_code == 302
    assert client.get("/capture").status_code == 403


def test_capture_with_consents_creates_company_and_contact(client: FlaskClient, api: Any) -> None:
    """The company becomes the customer, the person its contact with the consents."""
    token = _signed_in(client)
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    form = {
        "csrf_token": token,
        "name": "Sophie Brandt",
        "company": "Brandt Bau GmbH",
        "phones": "0170 5551234",
        "emails": "s.brandt@brandt-bau.example",
        "postal_code": "20095",
        "city": "Hamburg",
        "consent": ["email:newsletter", "phone:service"],
    }
    answer = client.post("/capture", data=form, headers=EN)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    company = api.customer_id("Brandt Bau GmbH")
    assert answer.headers["Location"].endswith(f"/customers/{company}")
    customer = api("sales@berger.example").get(f"/customers/{company}").body
    assert customer["kind"] == "company"
    assert customer["owner_organization_id"] == api.org_id("berger")
    assert customer["contacts"][0]["name"] == "Sophie Brandt"
    assert customer["contacts"][0]["phones"] == ["+491705551234"]
    consents = api("sales@berger.example").get(f"/customers/{company}/consents").body["items"]
    assert sorted((c["channel"], c["purpose"]) for c in consents) == [
        ("email", "newsletter"),
        ("phone", "service"),
    ]
    for row in consents:
        assert row["source"] == "capture"
        assert row["contact_id"] == customer["contacts"][0]["id"]
        assert row["recorded_by_user_id"] == api.user_id("sales@berger.example")
        assert dt.datetime.fromisoformat(row["recorded_at"]) >= before


def test_capture_of_a_person_stores_phone_on_the_customer(client: FlaskClient, api: Any) -> None:
    token = _signed_in(client)
    form = {"csrf_token": token, "name": "Privat Person", "phones": "0170 5559999"}
    assert client.post("/capture", data=form).status_code == 302
    customer = api("sales@berger.example").get(f"/customers/{api.customer_id('Privat Person')}")
    assert customer.body["kind"] == "person" and customer.body["phones"] == ["+491705559999"]


def test_capture_warns_about_duplicates_then_creates_anyway(client: FlaskClient, api: Any) -> None:
    token = _signed_in(client)
    form = {
        "csrf_token": token,
        "name": "Erika Müller",
        "phones": "030 12345678",
        "consent": ["post:marketing"],
    }
    warned = client.post("/capture", data=form, headers=EN)
    page = warned.get_data(as_text=True)
    assert warned.status_code == 200
    assert "This customer may already exist" in page and "Jürgen Müller" in page
    assert 'form="capture-form" name="use_customer_id"' in page
    assert 'value="post:marketing" id="consent-post-marketing" autocomplete="off" checked' in page
    assert api.query("SELECT id FROM customers WHERE name = 'Erika Müller'") == []
    key = re.search(r'name="confirm_duplicates" value="([0-9a-f]+)"', page)
    assert key
    created = client.post("/capture", data={**form, "confirm_duplicates": key.group(1)})
    assert created.status_code == 302
    assert len(api.query("SELECT id FROM customers WHERE name = 'Erika Müller'")) == 1


def test_use_this_one_records_consents_on_the_existing_customer(
    client: FlaskClient, api: Any
) -> None:
    """Choosing the existing customer creates nothing and keeps the permission given."""
    token = _signed_in(client)
    mueller = api.customer_id("Jürgen Müller")
    customers_before = api.query("SELECT count(*) FROM customers")[0][0]
    form = {
        "csrf_token": token,
        "name": "Jürgen Müller",
        "phones": "0171 2345678",
        "consent": ["email:marketing"],
        "use_customer_id": str(mueller),
    }
    answer = client.post("/capture", data=form, headers=EN)
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/customers/{mueller}")
    assert api.query("SELECT count(*) FROM customers")[0][0] == customers_before
    rows = api("sales@berger.example").get(f"/customers/{mueller}/consents").body["items"]
    assert [(r["channel"], r["purpose"], r["source"]) for r in rows] == [
        ("email", "marketing", "capture")
    ]


def test_capture_privacy_message_on_the_phone(client: FlaskClient) -> None:
    token = _signed_in(client)
    form = {"csrf_token": token, "name": "Fuhrpark", "phones": "0711 4567890"}
    page = client.post("/capture", data=form, headers=EN).get_data(as_text=True)
    assert ELSEWHERE in page
    assert "Köhler" not in page and "Stuttgart" not in page and "use_customer_id" not in page


def test_capture_with_invalid_values_stores_nothing(client: FlaskClient, api: Any) -> None:
    token = _signed_in(client)
    form = {
        "csrf_token": token,
        "name": "Falsch",
        "company": "Falsch GmbH",
        "phones": "keine nummer",
        "consent": ["email:marketing"],
    }
    answer = client.post("/capture", data=form, headers=EN)
    assert answer.status_code == 422
    assert "Not a valid phone number" in answer.get_data(as_text=True)
    assert api.query("SELECT id FROM customers WHERE name = 'Falsch GmbH'") == []
    assert api.query("SELECT count(*) FROM consents")[0][0] == 0
    forged = {"csrf_token": token, "name": "X", "consent": ["pigeon:marketing"]}
    answer = client.post("/capture", data=forged, headers=EN)
    assert answer.status_code == 422
    assert "Please choose only the offered permissions." in answer.get_data(as_text=True)


def _upload_page(client: FlaskClient, token: str, content: bytes) -> Any:
    return client.post(
        "/capture/vcard",
        data={"csrf_token": token, "file": (io.BytesIO(content), "card.vcf")},
        headers=EN,
        content_type="multipart/form-data",
    )


def test_capture_vcard_prefills_the_form(client: FlaskClient, api: Any) -> None:
    token = _signed_in(client)
    answer = _upload_page(client, token, CARD.encode())
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert 'value="Sophie Brandt"' in page and 'value="Brandt Bau GmbH Einkauf"' in page
    assert "0170 5551234\n+49 40 5551234" in page
    assert 'name="country" value="DE"' in page
    assert api.query("SELECT id FROM customers WHERE name = 'Sophie Brandt'") == []


def test_capture_vcard_errors_are_shown_on_the_page(client: FlaskClient) -> None:
    token = _signed_in(client)
    bad = _upload_page(client, token, b"\x00\x01binary")
    assert bad.status_code == 422
    assert "This file is not a vCard" in bad.get_data(as_text=True)
    huge = _upload_page(client, token, b"B" * (300 * 1024))
    assert huge.status_code == 413
    assert "at most 256 KB" in huge.get_data(as_text=True)
    cp1252 = _upload_page(
        client, token, "BEGIN:VCARD\nVERSION:2.1\nFN:Jürgen Müller\nEND:VCARD\n".encode("cp1252")
    )
    assert cp1252.status_code == 200
    assert 'value="Jürgen Müller"' in cp1252.get_data(as_text=True)


def test_customer_page_shows_the_permissions_in_force(api: Any, client: FlaskClient) -> None:
    schaefer = api.customer_id("Sabine Schäfer")
    berger = api("sales@berger.example")
    items = [
        {"channel": "email", "purpose": "newsletter"},
        {"channel": "sms", "purpose": "service"},
    ]
    assert berger.post(f"/customers/{schaefer}/consents", json={"items": items}).status == 201
    withdraw = {"items": [{"channel": "sms", "purpose": "service", "granted": False}]}
    assert berger.post(f"/customers/{schaefer}/consents", json=withdraw).status == 201
    login(client, "sales@berger.example")
    html = client.get(f"/customers/{schaefer}", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    section = html[html.index('id="permissions"') :]
    section = section[: section.index("</section>")]
    rows = [" ".join(li.split()) for li in section.split("<li")[1:]]
    assert any(
        r.startswith('class="mb-1"> <i class="bi bi-check-circle') and "Newsletter: granted" in r
        for r in rows
    ), rows
    assert any("SMS · Service: withdrawn" in r for r in rows), rows
    assert "Anna Berger" in section
