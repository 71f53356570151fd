"""Duplicate check at creation: blocking keys plus fuzzy names, never revealing hidden data.

Demo network facts used here: "Jürgen Müller" (nordwerk; 0171 2345678, +49 30 12345678,
juergen.mueller@example.de, 10115 Berlin) is shared with berger including contact details and
with schulz without them. "Köhler Logistik GmbH" (kaya; 0711 4567890, 70173 Stuttgart) is
not visible to berger, which shares nordwerk's value chain with kaya. "Mehmet Öztürk"
(suedstern; (0221) 987-6543) lies outside berger's value chains.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.support.web import csrf_token, login

EN = {"Accept-Language": "en"}
ELSEWHERE = "This customer may already be served in your network; contact your manufacturer."
EMPTY = {"candidates": [], "elsewhere_in_network": False, "message": None}

pytestmark = pytest.mark.usefixtures("backend")


def _check(api: Any, email: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = api(email).post("/customers/duplicates", json=body, headers=EN)
    assert answer.status == 200, answer.text
    result: dict[str, Any] = answer.body
    return result


def _ids(report: dict[str, Any]) -> list[int]:
    return [c["customer_id"] for c in report["candidates"]]


# --- API: what matches ---------------------------------------------------------------------


@pytest.mark.parametrize("phone", ["+49 171 2345678", "0049 (171) 234-5678", "01712345678"])
def test_phone_in_another_format_matches(api: Any, phone: str) -> None:
    """A phone number typed in any format finds the customer holding it."""
    mueller = api.customer_id("Jürgen Müller")
    report = _check(api, "sales@berger.example", {"name": "J. M.", "phones": [phone]})
    assert _ids(report) == [mueller]
    assert report["candidates"][0]["reasons"] == ["phone"]
    assert report["candidates"][0]["name"] == "Jürgen Müller"
    assert report["elsewhere_in_network"] is False


def test_email_matches_case_insensitively(api: Any) -> None:
    """The same email address in other letter case is the same address."""
    mueller = api.customer_id("Jürgen Müller")
    report = _check(
        api, "sales@berger.example", {"name": "Herr M.", "emails": ["Juergen.Mueller@EXAMPLE.de"]}
    )
    assert _ids(report) == [mueller]
    assert report["candidates"][0]["reasons"] == ["email"]


def test_transcribed_name_with_postal_code_matches(api: Any) -> None:
    """Juergen Mueller in 10115 is Jürgen Müller in 10115 (folded names, rapidfuzz)."""
    mueller = api.customer_id("Jürgen Müller")
    report = _check(
        api, "agent@nordwerk.example", {"name": "Juergen Mueller", "postal_code": "10115"}
    )
    match = next(c for c in report["candidates"] if c["customer_id"] == mueller)
    assert match["reasons"] == ["name_postal_code"]
    assert match["score"] >= 85


def test_misspelt_name_with_city_matches(api: Any) -> None:
    """A typo in the name still matches when the city agrees."""
    mueller = api.customer_id("Jürgen Müller")
    report = _check(api, "agent@nordwerk.example", {"name": "Jürgen Müler", "city": "berlin"})
    match = next(c for c in report["candidates"] if c["customer_id"] == mueller)
    assert match["reasons"] == ["name_city"]
    assert 85 <= match["score"] < 100


def test_same_name_elsewhere_is_no_duplicate(api: Any) -> None:
    """A namesake in another postal code and city is not reported."""
    mueller = api.customer_id("Jürgen Müller")
    report = _check(
        api,
        "agent@nordwerk.example",
        {"name": "Jürgen Müller", "postal_code": "99999", "city": "Nirgendwo"},
    )
    assert mueller not in _ids(report)


def test_every_reason_is_listed_best_first(api: Any) -> None:
    """Several matching keys are all named; exact phone or email matches score 100."""
    mueller = api.customer_id("Jürgen Müller")
    report = _check(
        api,
        "sales@berger.example",
        {
            "name": "Jürgen Müller",
            "phones": ["030 12345678"],
            "emails": ["juergen.mueller@example.de"],
            "postal_code": "10115",
            "city": "Berlin",
        },
    )
    assert report["candidates"][0]["customer_id"] == mueller
    assert report["candidates"][0]["reasons"] == ["phone", "email", "name_postal_code", "name_city"]
    assert report["candidates"][0]["score"] == 100


def test_invalid_values_are_ignored_by_the_check(api: Any) -> None:
    """The check itself refuses nothing but a missing name; bad phones just do not match."""
    assert _check(api, "sales@berger.example", {"name": "X", "phones": ["abc"]}) == EMPTY
    answer = api("sales@berger.example").post("/customers/duplicates", json={"phones": ["1"]})
    assert answer.status == 422
    assert "name" in answer.body["error"]["fields"]


def test_merged_customers_are_never_candidates(api: Any, app: Flask) -> None:
    """A customer merged into another one is only a pointer and never matches."""
    created = api("sales@berger.example").post(
        "/customers", json={"name": "Paula Pointer", "phones": ["0170 5550001"]}
    )
    assert created.status == 201
    survivor = api.customer_id("Sabine Schäfer")
    with app.app_context():
        from portal.db import get_session

        session = get_session()
        session.execute(
            sa.text("UPDATE customers SET merged_into_id = :s WHERE id = :m"),
            {"s": survivor, "m": created.body["id"]},
        )
        session.commit()
    report = _check(api, "sales@berger.example", {"name": "P", "phones": ["0170 5550001"]})
    assert report == EMPTY


# --- API: privacy --------------------------------------------------------------------------


def test_hidden_partner_customer_only_raises_the_flag(api: Any) -> None:
    """Berger typing a kaya-only customer learns that it may exist, and nothing else."""
    answer = api("sales@berger.example").post(
        "/customers/duplicates",
        json={"name": "Köhler Logistik GmbH", "phones": ["0711 4567890"], "postal_code": "70173"},
        headers=EN,
    )
    assert answer.status == 200
    assert answer.body == {"candidates": [], "elsewhere_in_network": True, "message": ELSEWHERE}
    fleet = api.customer_id("Köhler Logistik GmbH")
    assert str(fleet) not in re.findall(r"\d+", answer.text)
    assert "Stuttgart" not in answer.text and "kaya" not in answer.text.lower()


def test_visible_customer_without_contact_details_is_not_revealed(api: Any) -> None:
    """Schulz sees Müller's name but not his phones: a phone match must not tell whose it is."""
    report = _check(api, "quality@schulz.example", {"name": "Anrufer", "phones": ["0171 2345678"]})
    assert report["candidates"] == []
    assert report["elsewhere_in_network"] is True
    report = _check(
        api, "quality@schulz.example", {"name": "Jürgen Müller", "postal_code": "10115"}
    )
    assert report["candidates"] == []


def test_customers_outside_the_value_chain_stay_silent(api: Any) -> None:
    """Suedstern is not in berger's value chain: its customers raise no flag for berger."""
    report = _check(api, "sales@berger.example", {"name": "M", "phones": ["0221 9876543"]})
    assert report == EMPTY
    kaya_view = _check(api, "service@kaya.example", {"name": "M", "phones": ["0221 9876543"]})
    assert _ids(kaya_view) == [api.customer_id("Mehmet Öztürk")]


# --- API: creating still works -------------------------------------------------------------


def test_family_sharing_a_landline_still_creates(api: Any) -> None:
    """Integrations must not break: the customer is created and the candidates are listed."""
    mueller = api.customer_id("Jürgen Müller")
    answer = api("sales@berger.example").post(
        "/customers",
        json={"name": "Erika Müller", "phones": ["030 12345678"], "city": "Berlin"},
        headers=EN,
    )
    assert answer.status == 201, answer.text
    assert answer.body["name"] == "Erika Müller"
    report = answer.body["possible_duplicates"]
    assert _ids(report) == [mueller]
    assert report["candidates"][0]["reasons"] == ["phone"]
    again = api("sales@berger.example").get(f"/customers/{answer.body['id']}")
    assert again.status == 200 and again.body["phones"] == ["+493012345678"]


def test_created_customer_without_match_reports_nothing(api: Any) -> None:
    answer = api("sales@berger.example").post(
        "/customers", json={"name": "Ganz Neu", "phones": ["0170 5550002"]}
    )
    assert answer.status == 201
    assert answer.body["possible_duplicates"] == EMPTY


def test_creating_never_lists_the_new_customer_itself(api: Any) -> None:
    api("sales@berger.example").post(
        "/customers", json={"name": "Erste", "emails": ["same@example.org"]}
    )
    second = api("sales@berger.example").post(
        "/customers", json={"name": "Zweite", "emails": ["same@example.org"]}
    )
    assert second.status == 201
    assert [c["name"] for c in second.body["possible_duplicates"]["candidates"]] == ["Erste"]


def test_created_customer_hidden_match_is_only_flagged(api: Any) -> None:
    answer = api("sales@berger.example").post(
        "/customers", json={"name": "Fuhrpark K.", "phones": ["0711 4567890"]}, headers=EN
    )
    assert answer.status == 201
    assert answer.body["possible_duplicates"] == {
        "candidates": [],
        "elsewhere_in_network": True,
        "message": ELSEWHERE,
    }


def test_new_contact_lists_customers_with_its_phone(api: Any) -> None:
    """A contact whose number another customer holds is added, with that customer listed."""
    schaefer = api.customer_id("Sabine Schäfer")
    answer = api("sales@berger.example").post(
        f"/customers/{schaefer}/contacts",
        json={"name": "Jürgen", "phones": ["+491712345678"]},
    )
    assert answer.status == 201, answer.text
    assert answer.body["name"] == "Jürgen"
    assert _ids(answer.body["possible_duplicates"]) == [api.customer_id("Jürgen Müller")]


def test_duplicate_check_uses_few_statements(app: Flask) -> None:
    """Blocking-key lookups go out as one statement, whatever the number of keys."""
    from partners.models import User
    from portal.db import get_session
    from shared_records.duplicates import find_duplicates

    with app.app_context(), app.test_request_context(headers=EN):
        session = get_session()
        actor = session.scalars(sa.select(User).where(User.email == "sales@berger.example")).one()
        _ = actor.organization.phone_region
        statements: list[str] = []
        engine = session.get_bind()

        def count(*_args: Any) -> None:
            statements.append("x")

        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            report = find_duplicates(
                session,
                actor,
                name="Jürgen Müller",
                phones=["0171 2345678", "030 12345678"],
                emails=["juergen.mueller@example.de"],
                postal_code="10115",
                city="Berlin",
            )
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
    assert report.candidates
    assert len(statements) <= 2


# --- UI: new customer and new contact ------------------------------------------------------


def _signed_in(client: FlaskClient, email: str = "sales@berger.example") -> str:
    assert login(client, email).status_code == 302
    return csrf_token(client, "/customers/new")


def test_new_customer_form_warns_then_creates_anyway(client: FlaskClient, api: Any) -> None:
    """The form shows the candidates with "use this one"; "create anyway" creates."""
    token = _signed_in(client)
    mueller = api.customer_id("Jürgen Müller")
    form = {"csrf_token": token, "name": "Erika Müller", "kind": "person", "phones": "030 12345678"}
    warned = client.post("/customers/new", data=form, headers=EN)
    page = warned.get_data(as_text=True)
    assert warned.status_code == 200
    assert "This customer may already exist" in page
    assert f'href="/customers/{mueller}"' in page and "Use this one" in page
    assert "Create anyway" in page
    assert api.query("SELECT id FROM customers WHERE name = 'Erika Müller'") == []

    key = re.search(r'name="confirm_duplicates" value="([0-9a-f]+)"', page)
    assert key
    created = client.post(
        "/customers/new", data={**form, "confirm_duplicates": key.group(1)}, headers=EN
    )
    assert created.status_code == 302
    new_id = api.customer_id("Erika Müller")
    assert created.headers["Location"].endswith(f"/customers/{new_id}")


def test_changed_values_are_checked_again(client: FlaskClient, api: Any) -> None:
    """Confirming one set of values does not wave through different ones."""
    token = _signed_in(client)
    form = {"csrf_token": token, "name": "Otto", "kind": "person", "phones": "0170 5550003"}
    first = client.post("/customers/new", data=form, headers=EN)
    assert first.status_code == 302  # nothing similar: created straight away
    form = {
        "csrf_token": token,
        "name": "Otto Zwei",
        "kind": "person",
        "phones": "0171 2345678",
        "confirm_duplicates": "0123456789abcdef",
    }
    warned = client.post("/customers/new", data=form, headers=EN)
    assert warned.status_code == 200
    assert "This customer may already exist" in warned.get_data(as_text=True)


def test_new_customer_form_shows_the_privacy_message(client: FlaskClient) -> None:
    token = _signed_in(client)
    form = {"csrf_token": token, "name": "K. Logistik", "kind": "company", "phones": "0711 4567890"}
    page = client.post("/customers/new", data=form, headers=EN).get_data(as_text=True)
    assert ELSEWHERE in page
    assert "Köhler" not in page and "Stuttgart" not in page


def test_new_contact_form_warns_then_adds_anyway(client: FlaskClient, api: Any) -> None:
    token = _signed_in(client)
    schaefer = api.customer_id("Sabine Schäfer")
    form = {"csrf_token": token, "name": "Kollege", "phones": "0171 2345678"}
    warned = client.post(f"/customers/{schaefer}/contacts", data=form, headers=EN)
    page = warned.get_data(as_text=True)
    assert warned.status_code == 200
    assert "Jürgen Müller" in page and "Create anyway" in page
    assert api.query("SELECT id FROM contacts WHERE name = 'Kollege'") == []
    key = re.search(r'name="confirm_duplicates" value="([0-9a-f]+)"', page)
    assert key
    added = client.post(
        f"/customers/{schaefer}/contacts",
        data={**form, "confirm_duplicates": key.group(1)},
        headers=EN,
    )
    assert added.status_code == 302
    assert len(api.query("SELECT id FROM contacts WHERE name = 'Kollege'")) == 1
