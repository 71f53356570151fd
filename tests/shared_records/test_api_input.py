"""Bad input across the API: malformed JSON, wrong types, unknown fields, out-of-range
values, huge bodies, bad cursors and foreign ids get a clear 4xx and write nothing."""

from __future__ import annotations

import pytest

from tests.support.api import Api

AGENT = "agent@nordwerk.example"


def _counts(api: Api) -> tuple[int, ...]:
    tables = ("cases", "customers", "timeline_entries", "case_shares", "phone_numbers")
    return tuple(api.query(f"SELECT count(*) FROM {t}")[0][0] for t in tables)  # noqa: S608


def _error_shape(body: object) -> None:
    assert isinstance(body, dict)
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize(
    ("path", "raw", "status", "code"),
    [
        ("/customers", b"{not json", 400, "malformed_json"),
        ("/customers", b"[1, 2]", 400, "not_an_object"),
        ("/customers", b"", 400, "body_missing"),
        ("/customers", b'{"name": 5}', 422, "validation_failed"),
        ("/customers", b'{"name": "A", "colour": "red"}', 422, "validation_failed"),
        ("/customers", b'{"name": "A", "phones": ["garbage"]}', 422, "validation_failed"),
        ("/customers", b'{"name": "A", "emails": ["not-an-email"]}', 422, "validation_failed"),
        ("/customers", b'{"name": ""}', 422, "validation_failed"),
        ("/customers", b'{"name": null}', 422, "validation_failed"),
        ("/cases", b'{"customer_id": "1", "subject": "x"}', 422, "validation_failed"),
        (
            "/cases",
            b'{"customer_id": 1, "subject": "x", "status": "done"}',
            422,
            "validation_failed",
        ),
        ("/cases", b'{"customer_id": -4, "subject": "x"}', 422, "validation_failed"),
        ("/cases", b'{"customer_id": 99999999, "subject": "x"}', 422, "validation_failed"),
        ("/cases", b'{"customer_id": 1e400, "subject": "x"}', 422, "validation_failed"),
        ("/cases", b'{"customer_id": true, "subject": "x"}', 422, "validation_failed"),
        (
            "/cases",
            b'{"customer_id": 1, "subject": "' + b"x" * 201 + b'"}',
            422,
            "validation_failed",
        ),
    ],
)
def test_bad_bodies_answer_4xx_and_write_nothing(
    api: Api, path: str, raw: bytes, status: int, code: str
) -> None:
    """Each malformed or invalid body gets its 4xx with a JSON error and no row is written."""
    before = _counts(api)
    answer = api(AGENT).call("POST", path, data=raw, headers={"Content-Type": "application/json"})
    assert answer.status == status, answer.text
    _error_shape(answer.body)
    assert answer.error_code == code
    assert _counts(api) == before


def test_field_errors_name_the_field(api: Api) -> None:
    """Validation errors say which field is wrong."""
    answer = api(AGENT).post("/customers", {"name": "Eva", "phones": ["0171 2345678", "xyz"]})
    assert answer.status == 422
    assert "phones.1" in answer.body["error"]["fields"]
    answer = api(AGENT).post("/customers", {"name": "Eva", "favourite": 1})
    assert answer.body["error"]["fields"]["favourite"].startswith("unknown field")


def test_oversized_body_is_413(api: Api) -> None:
    """A body over the limit answers 413 with a JSON error, nothing stored."""
    before = _counts(api)
    huge = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    answer = api(AGENT).call(
        "POST", "/customers", data=huge, headers={"Content-Type": "application/json"}
    )
    assert answer.status == 413
    _error_shape(answer.body)
    assert _counts(api) == before


@pytest.mark.parametrize(
    "query",
    [
        "limit=-1",
        "limit=0",
        "limit=201",
        "limit=abc",
        "cursor=garbage",
        "cursor=WzEsMl0",  # base64 of [1,2]: not a cursor this API handed out
        "cursor=" + "A" * 300,
        "status=done",
        "scope=everything",
        "unknown=1",
        "limit=5&limit=6",
    ],
)
def test_bad_list_queries_are_400(api: Api, query: str) -> None:
    """Out-of-range limits, bad cursors and unknown filters answer 400, never 500."""
    answer = api(AGENT).get(f"/cases?{query}")
    assert answer.status == 400, answer.text
    _error_shape(answer.body)


def test_bad_customer_cursor_is_400(api: Api) -> None:
    answer = api(AGENT).get("/customers?cursor=%%%")
    assert answer.status == 400
    assert answer.error_code == "bad_cursor"


def test_keyset_pages_cover_everything_once(api: Api) -> None:
    """Paging with next_cursor yields every visible case exactly once, in last-activity
    order, and new cases created meanwhile do not shift later pages."""
    user = api(AGENT)
    first = user.get("/cases?limit=5")
    assert first.status == 200 and len(first.body["items"]) == 5
    customer_id = api.customer_id("Jürgen Müller")
    assert (
        user.post("/cases", {"customer_id": customer_id, "subject": "Neu dazwischen"}).status == 201
    )
    items = list(first.body["items"])
    cursor = first.body["next_cursor"]
    while cursor:
        page = user.get(f"/cases?limit=5&cursor={cursor}")
        items.extend(page.body["items"])
        cursor = page.body["next_cursor"]
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids))
    keys = [(i["last_activity_at"], i["id"]) for i in items]
    assert keys == sorted(keys, reverse=True)
    everything = {i["id"] for i in user.all_pages("/cases?limit=200")}
    assert everything - set(ids) == {i["id"] for i in user.all_pages("/cases?q=Neu%20dazwischen")}


def test_foreign_ids_are_404(api: Api) -> None:
    """Ids of records in another chain (or none at all) answer 404 on every verb."""
    turbo = api.case_id("Garantiefall Turbolader")
    user = api(AGENT)
    assert user.get(f"/cases/{turbo}").status == 404
    assert user.patch(f"/cases/{turbo}", {"version": 1, "subject": "x"}).status == 404
    assert user.post(f"/cases/{turbo}/timeline", {"body": "x", "audience": "shared"}).status == 404
    assert user.post(f"/cases/{turbo}/claim").status == 404
    assert user.get(f"/cases/{turbo}/shares").status == 404
    assert user.get("/cases/987654321").status == 404
    assert user.get("/customers/987654321").status == 404
    assert user.get("/cases/0").status == 404


def test_case_for_invisible_customer_is_refused(api: Api) -> None:
    """A case cannot be opened for a customer the caller cannot see."""
    foreign = api.customer_id("Mehmet Öztürk")
    answer = api(AGENT).post("/cases", {"customer_id": foreign, "subject": "Test"})
    assert answer.status == 422
    assert "customer_id" in answer.body["error"]["fields"]


def test_audience_may_only_name_organisations_that_see_the_case(api: Api) -> None:
    """An explicit audience naming an outsider is refused with 422 and nothing is stored."""
    case_id = api.case_id("Bremsgeräusche an der Vorderachse")
    before = _counts(api)
    answer = api("sales@berger.example").post(
        f"/cases/{case_id}/timeline",
        {"body": "x", "audience": [api.org_id("suedstern")]},
    )
    assert answer.status == 422
    assert _counts(api) == before
    ok = api("sales@berger.example").post(
        f"/cases/{case_id}/timeline",
        {"body": "Nur Hersteller und Händler", "audience": [api.org_id("nordwerk")]},
    )
    assert ok.status == 201
    assert sorted(ok.body["audience"]) == sorted([api.org_id("nordwerk"), api.org_id("berger")])


def test_interaction_needs_channel_and_direction(api: Api) -> None:
    case_id = api.case_id("Bremsgeräusche an der Vorderachse")
    user = api(AGENT)
    answer = user.post(
        f"/cases/{case_id}/timeline", {"kind": "interaction", "body": "x", "audience": "shared"}
    )
    assert answer.status == 422
    answer = user.post(
        f"/cases/{case_id}/timeline",
        {
            "kind": "interaction",
            "channel": "phone",
            "direction": "in",
            "body": "Anruf",
            "audience": "shared",
        },
    )
    assert answer.status == 201
    assert answer.body["channel"] == "phone"
    assert (
        user.post(
            f"/cases/{case_id}/timeline", {"kind": "change", "body": "x", "audience": "shared"}
        ).status
        == 422
    )


def test_stale_version_is_409_with_current_record(api: Api) -> None:
    """PATCH with an old version answers 409 with the current record and changes nothing."""
    case_id = api.case_id("Probefahrt Kombi")
    user = api("sales@berger.example")
    version = user.get(f"/cases/{case_id}").body["version"]
    assert user.patch(f"/cases/{case_id}", {"version": version, "priority": "high"}).status == 200
    stale = user.patch(f"/cases/{case_id}", {"version": version, "subject": "Überschrieben"})
    assert stale.status == 409
    assert stale.body["error"]["current"]["version"] == version + 1
    assert stale.body["error"]["current"]["priority"] == "high"
    assert user.get(f"/cases/{case_id}").body["subject"] == "Probefahrt Kombi"
    assert user.patch(f"/cases/{case_id}", {"subject": "ohne Version"}).status == 422


def test_field_changes_are_recorded_on_the_timeline(api: Api) -> None:
    """Each changed field becomes a change entry (who, when, field, old and new value)."""
    case_id = api.case_id("Probefahrt Kombi")
    user = api("sales@berger.example")
    version = user.get(f"/cases/{case_id}").body["version"]
    answer = user.patch(
        f"/cases/{case_id}", {"version": version, "status": "open", "priority": "urgent"}
    )
    assert answer.status == 200
    changes = [
        e for e in user.get(f"/cases/{case_id}/timeline").body["items"] if e["kind"] == "change"
    ]
    assert {(c["field"], c["old_value"], c["new_value"]) for c in changes} >= {
        ("status", "new", "open"),
        ("priority", "normal", "urgent"),
    }
    assert all(c["author_user_id"] == api.user_id("sales@berger.example") for c in changes)


def test_history_cannot_be_rewritten(api: Api) -> None:
    """Timeline entries cannot be changed or deleted through the API."""
    case_id = api.case_id("Bremsgeräusche an der Vorderachse")
    entries = api(AGENT).get(f"/cases/{case_id}/timeline").body["items"]
    entry_id = entries[0]["id"]
    for method in ("PATCH", "PUT", "DELETE"):
        answer = api(AGENT).call(method, f"/cases/{case_id}/timeline/{entry_id}", json={})
        assert answer.status in (404, 405)
        _error_shape(answer.body)
    assert api(AGENT).call("DELETE", f"/cases/{case_id}/timeline").status == 405


def test_customers_create_normalises_phones_and_emails(api: Api) -> None:
    """Phones are stored in E.164 with the organisation's region; emails lower-cased."""
    answer = api(AGENT).post(
        "/customers",
        {
            "name": "Käthe Groß",
            "phones": ["0171 2345679", "(0171) 234-5679", "0049 30 1234567"],
            "emails": ["Kaethe.Gross@Example.DE"],
            "street": "Gartenweg 1",
            "postal_code": "10115",
            "city": "Berlin",
            "kind": "person",
        },
    )
    assert answer.status == 201, answer.text
    assert answer.body["phones"] == ["+491712345679", "+49301234567"]
    assert answer.body["emails"] == ["kaethe.gross@example.de"]
    assert answer.body["owner_organization_id"] == api.org_id("nordwerk")
    patched = api(AGENT).patch(
        f"/customers/{answer.body['id']}", {"phones": ["+43 1 5321234"], "city": "Wien"}
    )
    assert patched.status == 200
    assert patched.body["phones"] == ["+4315321234"] and patched.body["city"] == "Wien"


def test_only_owner_changes_a_customer(api: Api) -> None:
    customer_id = api.customer_id("Jürgen Müller")
    assert (
        api("sales@berger.example").patch(f"/customers/{customer_id}", {"city": "X"}).status == 403
    )
    assert (
        api("agent@suedstern.example").patch(f"/customers/{customer_id}", {"city": "X"}).status
        == 404
    )
    assert (
        api("viewer@nordwerk.example").patch(f"/customers/{customer_id}", {"city": "X"}).status
        == 403
    )
    assert api.query("SELECT city FROM customers WHERE id = :i", i=customer_id)[0][0] == "Berlin"


def test_viewer_cannot_create(api: Api) -> None:
    before = _counts(api)
    assert api("viewer@nordwerk.example").post("/customers", {"name": "Nope"}).status == 403
    assert _counts(api) == before


def test_case_numbers_are_human_readable_and_unique(api: Api) -> None:
    customer_id = api.customer_id("Jürgen Müller")
    numbers = [
        api(AGENT)
        .post("/cases", {"customer_id": customer_id, "subject": f"Fall {i}"})
        .body["number"]
        for i in range(3)
    ]
    assert len(set(numbers)) == 3
    for number in numbers:
        prefix, year, serial = number.split("-")
        assert prefix == "C" and len(year) == 4 and len(serial) == 6
    serials = [int(n.rsplit("-", 1)[1]) for n in numbers]
    assert serials == list(range(serials[0], serials[0] + 3))
