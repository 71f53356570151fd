"""Merging duplicate customers: the survivor gets everything of the merged customer and
nothing is lost; the merged id keeps answering (301 to the survivor); only the owner
organisation's admins may merge; the merge shows on both customers' pages."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.api import Api, ApiUser

NORDWERK_ADMIN = "admin@nordwerk.example"
NORDWERK_AGENT = "agent@nordwerk.example"
NORDWERK_VIEWER = "viewer@nordwerk.example"
BERGER = "sales@berger.example"
BERGER_ADMIN = "admin@berger.example"
KAYA = "service@kaya.example"
MUELLER = "Jürgen Müller"
SCHAEFER = "Sabine Schäfer"  # Berger's customer

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


# --- helpers ---------------------------------------------------------------------------------


@dataclass
class Visitor:
    """A signed-in browser session of one demo user, with English pages."""

    client: FlaskClient
    token: str

    def get(self, path: str) -> TestResponse:
        return self.client.get(path)

    def post(self, path: str, data: dict[str, Any] | None = None) -> TestResponse:
        return self.client.post(path, data={**(data or {}), "csrf_token": self.token})


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


def _scalar(api: Api, sql: str, **params: Any) -> int:
    return int(api.query(sql, **params)[0][0])


def _counts(api: Api, customer_id: int) -> dict[str, int]:
    """Everything that hangs on one customer, counted in the database (all organisations)."""
    return {
        "cases": _scalar(api, "SELECT count(*) FROM cases WHERE customer_id = :c", c=customer_id),
        "entries": _scalar(
            api,
            "SELECT count(*) FROM timeline_entries WHERE case_id IN "
            "(SELECT id FROM cases WHERE customer_id = :c)",
            c=customer_id,
        ),
        "shares": _scalar(
            api,
            "SELECT count(*) FROM case_shares WHERE case_id IN "
            "(SELECT id FROM cases WHERE customer_id = :c)",
            c=customer_id,
        ),
        "contacts": _scalar(
            api, "SELECT count(*) FROM contacts WHERE customer_id = :c", c=customer_id
        ),
        "phones": _scalar(
            api, "SELECT count(*) FROM phone_numbers WHERE customer_id = :c", c=customer_id
        ),
        "emails": _scalar(
            api, "SELECT count(*) FROM email_addresses WHERE customer_id = :c", c=customer_id
        ),
        "consents": _scalar(
            api, "SELECT count(*) FROM consents WHERE customer_id = :c", c=customer_id
        ),
    }


def _add_consents(app: Flask, customer_id: int, email: str, count: int) -> None:
    from partners.models import User
    from portal.db import get_session
    from shared_records.models import Consent

    with app.app_context():
        session = get_session()
        user = session.scalars(sa.select(User).where(User.email == email)).one()
        purposes = ["marketing", "service", "surveys", "newsletter"]
        session.add_all(
            Consent(
                customer_id=customer_id,
                channel="email",
                purpose=purposes[i % 4],
                granted=True,
                source="form",
                recorded_by_user_id=user.id,
                organization_id=user.organization_id,
            )
            for i in range(count)
        )
        session.commit()


@dataclass
class Pair:
    survivor: int
    merged: int
    hidden_case: int  # Berger's case on the merged customer, which Nordwerk does not see


@pytest.fixture
def pair(api: Api, app: Flask) -> Pair:
    """A duplicate of Jürgen Müller with its own phones, emails, contact, consents, cases
    (one shared with Berger) and a case Berger opened that Nordwerk cannot see."""
    nordwerk = api(NORDWERK_AGENT)
    survivor = api.customer_id(MUELLER)
    created = nordwerk.post(
        "/customers",
        {
            "name": "Juergen Mueller",
            "phones": ["030 12345678", "0172 5550001"],  # the first one Müller has already
            "emails": ["JUERGEN.MUELLER@example.de", "jm-privat@example.de"],
            "postal_code": "10115",
            "city": "Berlin",
            "kind": "person",
            "contacts": [{"name": "Erika Mueller", "phones": ["0172 5550002"]}],
        },
    )
    assert created.status == 201, created.text
    merged = created.body["id"]
    first = nordwerk.post("/cases", {"customer_id": merged, "subject": "Doppelter Kunde 1"})
    second = nordwerk.post("/cases", {"customer_id": merged, "subject": "Doppelter Kunde 2"})
    assert first.status == second.status == 201
    nordwerk.post(f"/cases/{first.body['id']}/timeline", {"body": "Notiz", "audience": "shared"})
    nordwerk.post(
        f"/cases/{second.body['id']}/timeline", {"body": "Intern", "audience": "internal"}
    )
    shared = nordwerk.post(
        f"/cases/{first.body['id']}/shares",
        {"organization_id": api.org_id("berger"), "access": "edit"},
    )
    assert shared.status == 200, shared.text
    hidden = api(BERGER).post("/cases", {"customer_id": merged, "subject": "Berger intern"})
    assert hidden.status == 201, hidden.text
    _add_consents(app, merged, NORDWERK_AGENT, 3)
    _add_consents(app, survivor, NORDWERK_AGENT, 1)
    return Pair(survivor=survivor, merged=merged, hidden_case=hidden.body["id"])


def _merge(api: Api, email: str, survivor: int, merged: int) -> Any:
    return api(email).post(f"/customers/{survivor}/merge", {"merged_id": merged})


# --- the merge -------------------------------------------------------------------------------


def test_merge_moves_everything_and_loses_nothing(api: Api, pair: Pair) -> None:
    """Cases, timeline entries, shares, contacts, phones, emails and consents of both customers
    add up after the merge; only phones and emails the survivor already had are dropped, and
    each moved case gains one recorded change."""
    before_s, before_m = _counts(api, pair.survivor), _counts(api, pair.merged)

    answer = _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged)

    assert answer.status == 200, answer.text
    after_s, after_m = _counts(api, pair.survivor), _counts(api, pair.merged)
    assert after_m == dict.fromkeys(after_m, 0)
    moved_cases = before_m["cases"]
    assert moved_cases == 3
    assert after_s["cases"] == before_s["cases"] + moved_cases
    assert after_s["entries"] == before_s["entries"] + before_m["entries"] + moved_cases
    for name in ("shares", "contacts", "consents"):
        assert after_s[name] == before_s[name] + before_m[name], name
    moved = answer.body["merge"]["moved"]
    assert moved["phones_duplicate"] == 1  # +49 30 12345678, identical after normalising
    assert moved["emails_duplicate"] == 1  # juergen.mueller@example.de
    assert after_s["phones"] == before_s["phones"] + before_m["phones"] - 1
    assert after_s["emails"] == before_s["emails"] + before_m["emails"] - 1
    survivor = answer.body["survivor"]
    assert survivor["id"] == pair.survivor
    assert "+491725550001" in survivor["phones"]
    assert "jm-privat@example.de" in survivor["emails"]
    assert survivor["phones"].count("+493012345678") == 1
    assert [c["name"] for c in survivor["contacts"]] == ["Erika Mueller"]
    assert survivor["contacts"][0]["phones"] == ["+491725550002"]
    assert moved["contacts"] == 1
    assert moved["consents"] == 3


def test_survivor_without_address_takes_the_merged_address(api: Api) -> None:
    """Nothing is lost: a survivor without any address gets the merged customer's."""
    agent = api(NORDWERK_AGENT)
    survivor = agent.post("/customers", {"name": "Helga Adressenlos"}).body["id"]
    merged = agent.post(
        "/customers",
        {
            "name": "Helga Adressenlos",
            "street": "Am Hang 2",
            "postal_code": "01067",
            "city": "Dresden",
        },
    ).body["id"]

    answer = _merge(api, NORDWERK_ADMIN, survivor, merged)

    assert answer.status == 200, answer.text
    body = answer.body["survivor"]
    assert (body["street"], body["postal_code"], body["city"]) == ("Am Hang 2", "01067", "Dresden")
    assert answer.body["merge"]["moved"]["address"] is True


def test_counts_tell_only_what_the_merging_organisation_sees(api: Api, pair: Pair) -> None:
    """Berger's own case moves with the merged customer, but Nordwerk's answer counts only the
    cases, entries and shares Nordwerk sees, so the hidden case is not revealed."""
    answer = _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged)

    assert answer.status == 200, answer.text
    assert answer.body["merge"]["moved"]["cases"] == 2
    assert answer.body["merge"]["moved"]["shares"] == 1
    hidden = api(BERGER).get(f"/cases/{pair.hidden_case}")
    assert hidden.status == 200
    assert hidden.body["customer_id"] == pair.survivor
    assert api(NORDWERK_ADMIN).get(f"/cases/{pair.hidden_case}").status == 404


def test_moved_cases_record_the_merge_on_timeline_and_feed(api: Api, pair: Pair) -> None:
    """Each moved case shows "customer changed from X to Y" and an activity that the partner
    seeing the case receives."""
    shared_case = api.case_id("Doppelter Kunde 1")
    start = api(BERGER).get("/feed/recent?limit=1").body["last_id"]

    assert _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged).status == 200

    timeline = api(BERGER).get(f"/cases/{shared_case}/timeline").body["items"]
    change = [e for e in timeline if e.get("field") == "customer"]
    assert len(change) == 1
    assert (change[0]["old_value"], change[0]["new_value"]) == ("Juergen Mueller", MUELLER)
    feed = api(BERGER).get(f"/feed?after={start}").body["items"]
    merged = [a for a in feed if a["type"] == "customer.merged"]
    # Berger sees the shared case and its own case move, never Nordwerk's unshared one.
    assert sorted(a["case_id"] for a in merged) == sorted([shared_case, pair.hidden_case])
    assert "Juergen Mueller" in merged[0]["summary"]
    assert MUELLER in merged[0]["summary"]


def test_merged_id_answers_301_with_the_survivor(api: Api, pair: Pair) -> None:
    """GET on the merged id points to the survivor (Location and merged_into), for the owner
    and for a partner who knew the customer; PATCH refuses with the same pointer; an
    organisation that sees neither gets 404."""
    assert _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged).status == 200

    for email in (NORDWERK_AGENT, BERGER):
        answer = api(email).get(f"/customers/{pair.merged}")
        assert answer.status == 301, (email, answer.text)
        assert answer.body["error"]["code"] == "merged"
        assert answer.body["error"]["merged_into"] == pair.survivor
        location = api(email).client.get(
            f"/api/v1/customers/{pair.merged}",
            headers={"Authorization": f"Bearer {api(email).token}"},
        )
        assert location.headers["Location"].endswith(f"/api/v1/customers/{pair.survivor}")
    patch = api(NORDWERK_AGENT).patch(f"/customers/{pair.merged}", {"name": "Neu"})
    assert patch.status == 409
    assert patch.body["error"]["merged_into"] == pair.survivor
    assert api(KAYA).get(f"/customers/{pair.merged}").status == 404
    assert api(NORDWERK_AGENT).get(f"/customers/{pair.survivor}").status == 200


def test_chain_of_merges_resolves_to_the_final_survivor(api: Api, pair: Pair) -> None:
    """A merged into B, then B into C: A's id points to C."""
    third = api(NORDWERK_AGENT).post("/customers", {"name": "Jürgen Müller (Firma)"}).body["id"]
    assert _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged).status == 200
    assert _merge(api, NORDWERK_ADMIN, third, pair.survivor).status == 200

    answer = api(NORDWERK_AGENT).get(f"/customers/{pair.merged}")

    assert answer.status == 301
    assert answer.body["error"]["merged_into"] == third
    assert _counts(api, third)["cases"] >= 5


def test_merged_customer_leaves_lists_and_search_documents(api: Api, pair: Pair) -> None:
    """The customer list no longer shows the merged customer, and its search documents are
    gone while its cases are indexed under the survivor."""
    assert _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged).status == 200

    listed = api(NORDWERK_AGENT).all_pages("/customers?limit=200")
    assert pair.merged not in {c["id"] for c in listed}
    assert pair.survivor in {c["id"] for c in listed}
    docs = api.query(
        "SELECT kind, customer_id FROM search_documents WHERE customer_id = :m OR ref = :r",
        m=pair.merged,
        r=f"case:{api.case_id('Doppelter Kunde 1')}",
    )
    assert [(kind, customer) for kind, customer in docs] == [("case", pair.survivor)]
    contact_docs = api.query(
        "SELECT customer_id FROM search_documents WHERE kind = 'contact' AND title = :t",
        t="Erika Mueller",
    )
    assert [row[0] for row in contact_docs] == [pair.survivor]


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("email", [NORDWERK_AGENT, NORDWERK_VIEWER])
def test_only_admins_merge(api: Api, pair: Pair, email: str) -> None:
    """Agents and viewers of the owner organisation get 403; nothing changes."""
    before = _counts(api, pair.merged)

    answer = _merge(api, email, pair.survivor, pair.merged)

    assert answer.status == 403
    assert _counts(api, pair.merged) == before


def test_other_organisations_cannot_merge(api: Api, pair: Pair) -> None:
    """Berger's admin sees the merged customer through a shared case but does not own it:
    403; a customer it cannot see at all: 404 (its existence is not revealed)."""
    berger_admin = api(BERGER_ADMIN)
    own = api.customer_id(SCHAEFER)

    visible = berger_admin.post(f"/customers/{pair.merged}/merge", {"merged_id": own})
    invisible = berger_admin.post(
        f"/customers/{api.customer_id('Mehmet Öztürk')}/merge", {"merged_id": own}
    )

    assert visible.status == 403
    assert visible.error_code == "not_owner"
    assert invisible.status == 404
    assert _counts(api, own)["cases"] == 1


def test_merge_refusals_have_clear_codes(api: Api, pair: Pair) -> None:
    """Into itself 422, an unknown or invisible customer 422, across owners 403, an already
    merged customer 409; none of them writes anything."""
    admin = api(NORDWERK_ADMIN)
    schaefer = api.customer_id(SCHAEFER)  # Berger's, not visible to Nordwerk
    berger_visible = api(BERGER).post("/customers", {"name": "Bergers Kunde"}).body["id"]
    case = api(BERGER).post("/cases", {"customer_id": berger_visible, "subject": "Teilen"})
    api(BERGER).post(
        f"/cases/{case.body['id']}/shares", {"organization_id": api.org_id("nordwerk")}
    )

    itself = admin.post(f"/customers/{pair.survivor}/merge", {"merged_id": pair.survivor})
    unknown = admin.post(f"/customers/{pair.survivor}/merge", {"merged_id": schaefer})
    across = admin.post(f"/customers/{pair.survivor}/merge", {"merged_id": berger_visible})
    bad_body = admin.post(f"/customers/{pair.survivor}/merge", {"merged_id": "7"})

    assert (itself.status, itself.error_code) == (422, "merge_into_itself")
    assert (unknown.status, unknown.error_code) == (422, "validation_failed")
    assert (across.status, across.error_code) == (403, "not_owner")
    assert bad_body.status == 422
    assert _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged).status == 200
    again = _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged)
    into_merged = _merge(api, NORDWERK_ADMIN, pair.merged, pair.survivor)
    assert (again.status, again.error_code) == (409, "already_merged")
    assert into_merged.status == 409
    assert _scalar(api, "SELECT count(*) FROM customer_merges") == 1


def test_preview_counts_and_writes_nothing(api: Api, pair: Pair) -> None:
    """The preview lists both customers with their counts and the duplicate values."""
    before = _counts(api, pair.merged)

    answer = api(NORDWERK_ADMIN).post(
        f"/customers/{pair.survivor}/merge/preview", {"merged_id": pair.merged}
    )

    assert answer.status == 200, answer.text
    assert answer.body["merged"]["name"] == "Juergen Mueller"
    assert answer.body["merged_counts"]["cases"] == 2  # Berger's own case is not counted
    assert answer.body["merged_counts"]["consents"] == 3
    assert answer.body["duplicate_phones"] == ["+493012345678"]
    assert _counts(api, pair.merged) == before


def test_concurrent_opposite_merges_leave_one_survivor(api: Api, app: Flask, pair: Pair) -> None:
    """A into B and B into A at the same time: one wins, the other gets 409; never both."""
    results: list[int] = []
    admin = api(NORDWERK_ADMIN)
    clients = [ApiUser(app.test_client(), admin.token, admin.email) for _ in range(2)]

    def run(index: int) -> None:
        a, b = (pair.survivor, pair.merged) if index == 0 else (pair.merged, pair.survivor)
        answer = clients[index].post(f"/customers/{a}/merge", {"merged_id": b})
        results.append(answer.status)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [200, 409]
    merged = api.query("SELECT count(*) FROM customers WHERE merged_into_id IS NOT NULL")
    assert merged[0][0] == 1


# --- pages -------------------------------------------------------------------------------------


def test_merge_through_the_pages(visit: Callable[[str], Visitor], api: Api, pair: Pair) -> None:
    """The admin finds the duplicate from the customer page, compares both and confirms;
    the survivor's page then shows where it was merged from."""
    admin = visit(NORDWERK_ADMIN)
    page = admin.get(f"/customers/{pair.survivor}").get_data(as_text=True)
    assert f'href="/customers/{pair.survivor}/merge"' in page

    tool = admin.get(f"/customers/{pair.survivor}/merge").get_data(as_text=True)
    assert 'id="merge-suggestions"' in tool  # the duplicate check proposes it
    assert f"other={pair.merged}" in tool
    found = admin.get(f"/customers/{pair.survivor}/merge?q=mueller").get_data(as_text=True)
    assert "Juergen Mueller" in found
    by_id = admin.get(f"/customers/{pair.survivor}/merge?q=%23{pair.merged}")
    assert "Juergen Mueller" in by_id.get_data(as_text=True)
    preview = admin.get(f"/customers/{pair.survivor}/merge?other={pair.merged}")
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert 'id="merge-preview"' in html
    assert '<td data-count="cases">2</td>' in html
    assert '<td data-count="consents">3</td>' in html

    done = admin.post(f"/customers/{pair.survivor}/merge", {"merged_id": str(pair.merged)})

    assert done.status_code == 302
    after = admin.get(done.headers["Location"]).get_data(as_text=True)
    assert "Juergen Mueller was merged into Jürgen Müller. Moved: cases 2, contacts 1" in after
    assert 'id="merge-history"' in after
    assert "Merged from Juergen Mueller on" in after
    assert "by Markus Weber" in after


def test_merged_page_points_to_the_survivor(
    visit: Callable[[str], Visitor], api: Api, pair: Pair
) -> None:
    """The merged customer's page leads to the survivor with a message; its own record stays
    readable with the pointer; partners see no merge history."""
    assert _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged).status == 200
    agent = visit(NORDWERK_AGENT)

    moved = agent.get(f"/customers/{pair.merged}")
    assert moved.status_code == 302
    assert moved.headers["Location"].endswith(f"/customers/{pair.survivor}")
    survivor_page = agent.get(moved.headers["Location"]).get_data(as_text=True)
    assert "This customer was merged into Jürgen Müller." in survivor_page
    record = agent.get(f"/customers/{pair.merged}?merged=1").get_data(as_text=True)
    assert 'id="merged-into"' in record
    assert "This customer was merged into Jürgen Müller on" in record
    assert "by Markus Weber" in record
    assert 'id="edit-customer"' not in record
    partner = visit(BERGER).get(f"/customers/{pair.survivor}").get_data(as_text=True)
    assert 'id="merge-history"' not in partner
    assert "Merged from" not in partner


@pytest.mark.parametrize("email", [NORDWERK_AGENT, NORDWERK_VIEWER])
def test_merge_page_is_for_admins(visit: Callable[[str], Visitor], api: Api, email: str) -> None:
    """Agents and viewers get no merge button and 403 on the merge page and its form."""
    survivor = api.customer_id(MUELLER)
    user = visit(email)

    assert "/merge" not in user.get(f"/customers/{survivor}").get_data(as_text=True)
    assert user.get(f"/customers/{survivor}/merge").status_code == 403
    assert user.post(f"/customers/{survivor}/merge", {"merged_id": "1"}).status_code == 403


def test_merge_form_problems_are_readable(
    visit: Callable[[str], Visitor], api: Api, pair: Pair
) -> None:
    """Merging into itself or a bogus number re-renders the page with a message (4xx)."""
    admin = visit(NORDWERK_ADMIN)

    itself = admin.post(f"/customers/{pair.survivor}/merge", {"merged_id": str(pair.survivor)})
    bogus = admin.get(f"/customers/{pair.survivor}/merge?other=abc")
    missing = admin.post(f"/customers/{pair.survivor}/merge", {"merged_id": ""})

    assert itself.status_code == 422
    assert "cannot be merged into itself" in itself.get_data(as_text=True)
    assert bogus.status_code == 422
    assert missing.status_code == 422
    assert _scalar(api, "SELECT count(*) FROM customer_merges") == 0


def test_no_new_records_on_a_merged_customer(api: Api, pair: Pair) -> None:
    """After the merge, a case or contact aimed at the merged id is refused with a pointer."""
    assert _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged).status == 200
    nordwerk = api(NORDWERK_AGENT)
    case = nordwerk.post("/cases", {"customer_id": pair.merged, "subject": "Zu spät"})
    assert case.status == 422
    assert case.error_code == "customer_merged"
    assert case.body["error"]["merged_into"] == pair.survivor
    contact = nordwerk.post(f"/customers/{pair.merged}/contacts", {"name": "Zu spät"})
    assert contact.status in (301, 422)
    assert _scalar(api, "SELECT count(*) FROM cases WHERE subject = 'Zu spät'") == 0
    assert _scalar(api, "SELECT count(*) FROM contacts WHERE name = 'Zu spät'") == 0


def test_a_call_that_rang_before_the_merge_shows_the_survivor(
    app: Flask, api: Api, pair: Pair
) -> None:
    from tests.shared_records.test_cti import ring, telephone

    rung = ring(telephone(app), "0172 5550001", call_id="m-1")
    assert [m["customer_id"] for m in rung.body["matches"]] == [pair.merged]
    assert _merge(api, NORDWERK_ADMIN, pair.survivor, pair.merged).status == 200
    call = api(NORDWERK_AGENT).get(f"/calls/{rung.body['id']}")
    assert [m["customer_id"] for m in call.body["matches"]] == [pair.survivor]
