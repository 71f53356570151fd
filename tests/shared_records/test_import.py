"""CSV import of customers: a preview with per-row errors and duplicate candidates, an explicit
decision for each possible duplicate, and all or nothing: a file with any bad row imports
nothing. Spreadsheet exports (Windows-1252, semicolons, byte order mark) read correctly."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.api import Api

AGENT = "agent@nordwerk.example"
VIEWER = "viewer@nordwerk.example"
BERGER = "sales@berger.example"

HEADER = "name;kind;street;postal_code;city;country;phone;email"
GOOD = "Anna Neu;person;Ringstraße 5;10117;Berlin;DE;030 7654321;anna.neu@example.de"
# Jürgen Müller's landline in another format: Nordwerk's own customer.
MUELLER_AGAIN = "Juergen Mueller;person;;10115;Berlin;;+49 (30) 1234-5678;"
BAD = "Ohne Telefon;person;;;;;12;kaputt@"

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def _csv(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def _count(api: Api) -> int:
    return int(api.query("SELECT count(*) FROM customers")[0][0])


def _import(api: Api, email: str, text: str, **options: Any) -> Any:
    return api(email).post("/customers/import", {"csv": text, **options})


def _row(body: dict[str, Any], number: int) -> dict[str, Any]:
    return next(r for r in body["rows"] if r["row"] == number)


@dataclass
class Visitor:
    client: FlaskClient
    token: str

    def get(self, path: str) -> TestResponse:
        return self.client.get(path)

    def post(self, path: str, data: dict[str, Any]) -> TestResponse:
        return self.client.post(
            path, data={**data, "csrf_token": self.token}, content_type="multipart/form-data"
        )

    def upload(self, data: bytes, filename: str = "kunden.csv") -> TestResponse:
        return self.post("/customers/import", {"file": (io.BytesIO(data), filename)})


@pytest.fixture
def visit(app: Flask) -> Callable[[str], Visitor]:
    def sign_in(email: str) -> Visitor:
        client = app.test_client()
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
        token = _META.search(client.get("/login").get_data(as_text=True))
        assert token
        answer = client.post(
            "/login", data={"email": email, "password": "demo", "csrf_token": token.group(1)}
        )
        assert answer.status_code == 302
        page = _META.search(client.get("/profile").get_data(as_text=True))
        assert page
        return Visitor(client, page.group(1))

    return sign_in


# --- API ---------------------------------------------------------------------------------------


def test_preview_reports_errors_and_duplicates_and_writes_nothing(api: Api) -> None:
    """A dry run lists every row: the clean one ready to create, the bad one with a message
    per field, Müller's landline flagged as a possible duplicate; no customer is created."""
    before = _count(api)

    answer = _import(api, AGENT, _csv(GOOD, BAD, MUELLER_AGAIN, ";person;;;;;;"))

    assert answer.status == 200, answer.text
    body = answer.body
    assert body["dry_run"] is True
    assert body["delimiter"] == ";"
    good, bad, mueller, nameless = (_row(body, n) for n in (2, 3, 4, 5))
    assert good["errors"] == {}
    assert good["decision"] == "create"
    assert good["phones"] == ["+49307654321"]
    assert set(bad["errors"]) == {"phones", "emails"}
    assert "12" in bad["errors"]["phones"]
    assert nameless["errors"] == {"name": "The name is missing."}
    candidates = mueller["duplicates"]["candidates"]
    assert [c["name"] for c in candidates] == ["Jürgen Müller"]
    assert "phone" in candidates[0]["reasons"]
    assert mueller["needs_decision"] is True
    assert mueller["decision"] is None
    assert body["summary"] == {
        "rows": 4,
        "invalid": 2,
        "possible_duplicates": 1,
        "undecided": 1,
        "to_create": 1,
        "to_skip": 0,
    }
    assert _count(api) == before


def test_any_bad_row_imports_nothing(api: Api) -> None:
    """With one invalid row among good ones the import is refused (422, the bad rows listed)
    and not a single customer is created."""
    before = _count(api)

    answer = _import(api, AGENT, _csv(GOOD, "Zweite Person;person;;;;;;", BAD), dry_run=False)

    assert answer.status == 422
    assert answer.error_code == "import_invalid"
    assert [r["row"] for r in answer.body["error"]["rows"]] == [4]
    assert _count(api) == before


def test_possible_duplicates_need_a_decision(api: Api) -> None:
    """Without a decision for the flagged row nothing is imported; with "skip" the other rows
    are created in one go, owned by the importer's organisation, and visible at once."""
    text = _csv(GOOD, MUELLER_AGAIN, "Firma Beispiel GmbH;Firma;;;;;0171 1112223|0171 1112224;")
    before = _count(api)

    refused = _import(api, AGENT, text, dry_run=False)
    assert refused.status == 422
    assert refused.error_code == "decisions_required"
    assert [r["row"] for r in refused.body["error"]["rows"]] == [3]
    assert _count(api) == before

    done = _import(api, AGENT, text, dry_run=False, decisions={"3": "skip"})

    assert done.status == 201, done.text
    assert done.body["skipped"] == [3]
    assert [c["row"] for c in done.body["created"]] == [2, 4]
    assert _count(api) == before + 2
    company = api(AGENT).get(f"/customers/{done.body['created'][1]['id']}").body
    assert company["kind"] == "company"
    assert company["phones"] == ["+491711112223", "+491711112224"]
    assert company["owner_organization_id"] == api.org_id("nordwerk")
    assert company["country"] == "DE"
    indexed = api.query(
        "SELECT count(*) FROM search_documents WHERE ref = :r",
        r=f"customer:{company['id']}",
    )
    assert indexed[0][0] == 1  # searchable at once


def test_create_anyway_and_rows_repeated_in_the_file(api: Api) -> None:
    """A possible duplicate may be created on purpose; a row repeating an earlier row of the
    same file is flagged too."""
    text = _csv(MUELLER_AGAIN, GOOD, GOOD.replace("Anna Neu", "Anna Neu-Meier"))

    preview = _import(api, AGENT, text)
    assert _row(preview.body, 4)["same_as_rows"] == [3]
    assert _row(preview.body, 4)["needs_decision"] is True

    done = _import(api, AGENT, text, dry_run=False, decisions={"2": "create", "4": "skip"})

    assert done.status == 201, done.text
    assert [c["row"] for c in done.body["created"]] == [2, 3]
    assert api.query("SELECT count(*) FROM customers WHERE name = 'Juergen Mueller'")[0][0] == 1


def test_duplicates_of_hidden_customers_stay_hidden(api: Api) -> None:
    """Berger imports a row with the number of Kaya's customer: the row is flagged as
    possibly served elsewhere in the network, without anything of that customer."""
    text = _csv("Logistik Köhler;company;;;;;0711 4567890;")

    answer = _import(api, BERGER, text)

    row = _row(answer.body, 2)
    assert row["duplicates"]["candidates"] == []
    assert row["duplicates"]["elsewhere_in_network"] is True
    assert "Köhler Logistik" not in answer.text
    assert row["needs_decision"] is True


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", None),
        ("vorname;ort\nAnna;Berlin\n", "csv_invalid"),
        (HEADER + "\n", "csv_invalid"),
        ('name;city\n"Anna;Berlin\n', "csv_invalid"),
    ],
)
def test_file_problems_are_clear(api: Api, text: str, code: str | None) -> None:
    """An empty text, no name column, no data rows and broken quoting: 422 with a message."""
    answer = _import(api, AGENT, text)

    assert answer.status == 422
    if code:
        assert answer.error_code == code
        assert answer.body["error"]["message"]


def test_request_problems_are_refused(api: Api) -> None:
    """Unknown decisions, rows that do not exist and too many rows are refused up front."""
    text = _csv(GOOD)

    wrong_value = _import(api, AGENT, text, decisions={"2": "maybe"})
    unknown_row = _import(api, AGENT, text, decisions={"9": "skip"})
    too_many = _import(api, AGENT, _csv(*[f"Person {i};;;;;;;" for i in range(501)]))

    assert wrong_value.status == 422
    assert (unknown_row.status, unknown_row.error_code) == (422, "unknown_rows")
    assert too_many.status == 422
    assert "too many rows" in too_many.body["error"]["message"]


def test_misaligned_row_is_an_error(api: Api) -> None:
    """An unquoted comma in a comma-separated file shifts the columns: that row is an error,
    never a customer with scrambled fields."""
    text = "name,city,phone\nMüller, Jürgen,Berlin,030 1234567\nAnna Neu,Berlin,\n"

    answer = _import(api, AGENT, text)

    assert answer.body["delimiter"] == ","
    assert "row" in _row(answer.body, 2)["errors"]
    assert _row(answer.body, 3)["errors"] == {}


def test_viewers_cannot_import(api: Api) -> None:
    before = _count(api)

    answer = _import(api, VIEWER, _csv(GOOD), dry_run=False)

    assert answer.status == 403
    assert _count(api) == before


# --- pages -------------------------------------------------------------------------------------


def test_windows_1252_with_semicolons_through_the_pages(
    visit: Callable[[str], Visitor], api: Api
) -> None:
    """An Excel export (Windows-1252, semicolons, German headers) previews with its umlauts
    intact, and the confirmation (the text travels in the form) imports it."""
    data = (
        "Name;Straße;PLZ;Ort;Telefon;E-Mail\r\n"
        "Käthe Weiß;Gartenweg 3;80331;München;089 1234321;kaethe@example.de\r\n"
        "Günther Groß;;50667;Köln;;\r\n"
    ).encode("cp1252")
    agent = visit(AGENT)

    preview = agent.upload(data)

    html = preview.get_data(as_text=True)
    assert preview.status_code == 200, html
    assert "Käthe Weiß" in html
    assert "read as Windows-1252" in html
    assert 'id="import-confirm"' in html
    match = re.search(r'name="csv_text" value="([^"]*)"', html, re.S)
    assert match
    from html import unescape

    done = agent.post("/customers/import/confirm", {"csv_text": unescape(match.group(1))})

    assert done.status_code == 302
    listed = agent.get(done.headers["Location"]).get_data(as_text=True)
    assert "Customers imported: 2; rows skipped: 0." in listed
    rows = api.query("SELECT street, city FROM customers WHERE name = 'Käthe Weiß'")
    assert [tuple(r) for r in rows] == [("Gartenweg 3", "München")]


def test_utf8_with_bom_and_commas(visit: Callable[[str], Visitor]) -> None:
    """A UTF-8 file with byte order mark and commas reads its first column correctly."""
    data = "\ufeffname,city,email\nÜlkü Öztürk,Köln,uelkue@example.de\n".encode()

    preview = visit(AGENT).upload(data)

    html = preview.get_data(as_text=True)
    assert preview.status_code == 200, html
    assert "Ülkü Öztürk" in html
    assert "read as UTF-8 (BOM)" in html


def test_page_shows_errors_and_offers_no_import(visit: Callable[[str], Visitor], api: Api) -> None:
    """Rows with errors are marked with their messages and there is no import button; a
    forged confirmation imports nothing either."""
    agent = visit(AGENT)
    text = _csv(GOOD, BAD)
    before = _count(api)

    preview = agent.upload(text.encode())
    forged = agent.post("/customers/import/confirm", {"csv_text": text, "decision-2": "create"})

    html = preview.get_data(as_text=True)
    assert "Not a valid phone number: 12" in html
    assert 'id="import-blocked"' in html
    assert 'id="import-confirm"' not in html
    assert forged.status_code == 422
    assert "Nothing was imported" in forged.get_data(as_text=True)
    assert _count(api) == before


def test_page_needs_decisions_for_duplicates(visit: Callable[[str], Visitor], api: Api) -> None:
    """Confirming without deciding on a flagged row re-renders the preview with a message;
    deciding imports."""
    agent = visit(AGENT)
    text = _csv(GOOD, MUELLER_AGAIN)
    before = _count(api)

    undecided = agent.post("/customers/import/confirm", {"csv_text": text, "decision-2": "create"})
    decided = agent.post(
        "/customers/import/confirm",
        {"csv_text": text, "decision-2": "create", "decision-3": "skip"},
    )

    assert undecided.status_code == 422
    assert "decide for each possible duplicate" in undecided.get_data(as_text=True)
    assert decided.status_code == 302
    assert _count(api) == before + 1


def test_upload_problems_are_readable(visit: Callable[[str], Visitor]) -> None:
    """No file, a binary file and a file over the size limit: the upload page with a
    message, never a 500."""
    agent = visit(AGENT)

    none = agent.post("/customers/import", {})
    binary = agent.upload(b"\x00\x01\x02PK\x03\x04" * 10, "kunden.xlsx")
    huge = agent.upload(b"name\n" + b"x" * (300 * 1024))

    assert none.status_code == 422
    assert binary.status_code == 422
    assert "cannot be read as text" in binary.get_data(as_text=True)
    assert huge.status_code == 413
    assert "too large" in huge.get_data(as_text=True)


def test_viewers_get_no_import_page(visit: Callable[[str], Visitor]) -> None:
    viewer = visit(VIEWER)

    assert viewer.get("/customers/import").status_code == 403
    assert 'id="import-link"' not in viewer.get("/customers").get_data(as_text=True)
    assert 'id="import-link"' in visit(AGENT).get("/customers").get_data(as_text=True)
