"""The visibility policy over the demo network: who sees which case, entry and customer
field, who may comment, edit, claim and share, and 404 versus 403."""

from __future__ import annotations

import json

import pytest

from tests.support.api import Api

BRAKES = "Bremsgeräusche an der Vorderachse"  # Nordwerk's; shared with Berger (edit) and Schulz
LEAD = "Probefahrt Kombi"  # Berger's own, not shared
TURBO = "Garantiefall Turbolader"  # Südstern's, handled by Kaya
FLEET = "Angebot Firmenwagen"  # Kaya's, claimed by Kaya, shared with Nordwerk (comment)

ALL_USERS = [
    "agent@nordwerk.example",
    "admin@nordwerk.example",
    "viewer@nordwerk.example",
    "sales@berger.example",
    "admin@berger.example",
    "service@kaya.example",
    "agent@suedstern.example",
    "quality@schulz.example",
]

# subject -> {user: expected access or None for 404}
CASE_MATRIX = {
    BRAKES: {
        "agent@nordwerk.example": "edit",
        "admin@nordwerk.example": "edit",
        "viewer@nordwerk.example": "read",
        "sales@berger.example": "edit",
        "admin@berger.example": "edit",
        "service@kaya.example": None,
        "agent@suedstern.example": None,
        "quality@schulz.example": "comment",
    },
    LEAD: {
        "agent@nordwerk.example": None,
        "viewer@nordwerk.example": None,
        "sales@berger.example": "edit",
        "service@kaya.example": None,
        "agent@suedstern.example": None,
        "quality@schulz.example": None,
    },
    TURBO: {
        "agent@nordwerk.example": None,
        "sales@berger.example": None,
        "service@kaya.example": "edit",
        "agent@suedstern.example": "edit",
        "quality@schulz.example": None,
    },
    FLEET: {
        "agent@nordwerk.example": "comment",
        "viewer@nordwerk.example": "read",
        "sales@berger.example": None,
        "service@kaya.example": "edit",
        "agent@suedstern.example": None,
        "quality@schulz.example": None,
    },
}


@pytest.mark.parametrize("subject", list(CASE_MATRIX))
def test_case_visibility_and_access_matrix(api: Api, subject: str) -> None:
    """Each demo user sees exactly the cases the rules allow, with the access they allow;
    an invisible case answers 404."""
    case_id = api.case_id(subject)
    for email, expected in CASE_MATRIX[subject].items():
        answer = api(email).get(f"/cases/{case_id}")
        if expected is None:
            assert answer.status == 404, (email, answer.text)
            assert answer.error_code == "not_found"
            assert subject not in answer.text
        else:
            assert answer.status == 200, (email, answer.text)
            assert answer.body["access"] == expected, email


def test_list_equals_set_of_readable_details(api: Api) -> None:
    """For every user, the case list is exactly the set of cases whose detail answers 200,
    and the customer list is exactly the set of customers whose detail answers 200."""
    all_case_ids = [row[0] for row in api.query("SELECT id FROM cases")]
    all_customer_ids = [row[0] for row in api.query("SELECT id FROM customers")]
    for email in ALL_USERS:
        user = api(email)
        listed = {item["id"] for item in user.all_pages("/cases?limit=13")}
        readable = {i for i in all_case_ids if user.get(f"/cases/{i}").status == 200}
        assert listed == readable, email
        assert listed, email
        customers = {item["id"] for item in user.all_pages("/customers?limit=9")}
        readable_customers = {
            i for i in all_customer_ids if user.get(f"/customers/{i}").status == 200
        }
        assert customers == readable_customers, email


def test_timeline_filtered_by_audience(api: Api) -> None:
    """Internal entries stay in their organisation; an entry for "manufacturer and dealer"
    never reaches the supplier; shared entries reach everyone who sees the case."""
    case_id = api.case_id(BRAKES)

    def bodies(email: str) -> list[str]:
        answer = api(email).get(f"/cases/{case_id}/timeline")
        assert answer.status == 200
        return [e["body"] for e in answer.body["items"] if e["kind"] != "change"]

    nordwerk = bodies("agent@nordwerk.example")
    berger = bodies("sales@berger.example")
    schulz = bodies("quality@schulz.example")
    internal = "Intern: Kulanz bis 300 EUR freigegeben."
    restricted = "Termin in der Werkstatt am Donnerstag vereinbart."
    shared = "Bitte Bremsbeläge zur Analyse einsenden (Charge prüfen)."
    assert internal in nordwerk and restricted in nordwerk and shared in nordwerk
    assert internal not in berger and restricted in berger and shared in berger
    assert internal not in schulz and restricted not in schulz and shared in schulz
    assert bodies("viewer@nordwerk.example") == nordwerk


def test_customer_contact_details_follow_share_flag(api: Api) -> None:
    """A share without contact details shows name and city but no phones, emails or street:
    the keys are absent, not null."""
    customer_id = api.customer_id("Jürgen Müller")
    full = api("sales@berger.example").get(f"/customers/{customer_id}")
    assert full.status == 200
    assert full.body["phones"] == ["+491712345678", "+493012345678"]
    assert full.body["emails"] == ["juergen.mueller@example.de"]
    assert full.body["street"] == "Lindenallee 12"
    restricted = api("quality@schulz.example").get(f"/customers/{customer_id}")
    assert restricted.status == 200
    assert restricted.body["name"] == "Jürgen Müller"
    assert restricted.body["city"] == "Berlin"
    for hidden in ("phones", "emails", "street", "postal_code"):
        assert hidden not in restricted.body
    assert "+49171" not in restricted.text and "Lindenallee" not in restricted.text
    assert restricted.body["contact_details_visible"] is False
    assert api("agent@suedstern.example").get(f"/customers/{customer_id}").status == 404


def test_handler_without_share_sees_case_and_contact_details(api: Api) -> None:
    """The handling organisation sees the case with edit access and the customer's details."""
    case_id = api.query(
        "SELECT c.id FROM cases c JOIN organizations o ON o.id = c.handling_organization_id "
        "WHERE c.subject = 'Rückruf zu Finanzierung' AND o.slug = 'kaya' "
        "AND c.owner_organization_id <> c.handling_organization_id ORDER BY c.id"
    )[0][0]
    kaya = api("service@kaya.example")
    answer = kaya.get(f"/cases/{case_id}")
    assert answer.status == 200
    assert answer.body["access"] == "edit"
    assert [r["kind"] for r in answer.body["visibility_reason"]] == ["handler"]
    customer = kaya.get(f"/customers/{answer.body['customer_id']}")
    assert "phones" in customer.body


def test_visibility_reason_names_the_sharer(api: Api) -> None:
    """The API says why: shared by which organisation and user, at which level, since when."""
    case_id = api.case_id(BRAKES)
    reasons = api("sales@berger.example").get(f"/cases/{case_id}").body["visibility_reason"]
    assert len(reasons) == 1
    assert reasons[0]["kind"] == "share"
    assert reasons[0]["access"] == "edit"
    assert reasons[0]["shared_by_organization_id"] == api.org_id("nordwerk")
    assert reasons[0]["shared_by_user_id"] == api.user_id("agent@nordwerk.example")
    assert reasons[0]["since"]
    owner = api("agent@nordwerk.example").get(f"/cases/{case_id}").body["visibility_reason"]
    assert {r["kind"] for r in owner} == {"owner", "handler"}


def test_partners_see_only_their_own_share(api: Api) -> None:
    """The owner sees every share; a partner sees only its own."""
    case_id = api.case_id(BRAKES)
    owner = api("agent@nordwerk.example").get(f"/cases/{case_id}/shares").body["items"]
    assert {s["organization_id"] for s in owner} == {api.org_id("berger"), api.org_id("schulz")}
    partner = api("quality@schulz.example").get(f"/cases/{case_id}/shares").body["items"]
    assert [s["organization_id"] for s in partner] == [api.org_id("schulz")]


@pytest.mark.parametrize(
    ("email", "subject", "expected"),
    [
        ("quality@schulz.example", BRAKES, 403),  # comment access only
        ("viewer@nordwerk.example", BRAKES, 403),  # viewers only read
        ("agent@nordwerk.example", FLEET, 403),  # shared with comment access
        ("quality@schulz.example", TURBO, 404),  # another chain
        ("sales@berger.example", LEAD, 200),
    ],
)
def test_edit_permission_and_refusals_change_nothing(
    api: Api, email: str, subject: str, expected: int
) -> None:
    """PATCH needs edit access; a refused PATCH answers 403/404 and changes nothing."""
    case_id = api.case_id(subject)
    before = api.query("SELECT status, version FROM cases WHERE id = :i", i=case_id)[0]
    answer = api(email).patch(f"/cases/{case_id}", {"version": before[1], "status": "resolved"})
    assert answer.status == expected, answer.text
    after = api.query("SELECT status, version FROM cases WHERE id = :i", i=case_id)[0]
    if expected == 200:
        assert tuple(after) == ("resolved", before[1] + 1)
    else:
        assert tuple(after) == tuple(before)


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("quality@schulz.example", 201),
        ("sales@berger.example", 201),
        ("viewer@nordwerk.example", 403),
        ("service@kaya.example", 404),
    ],
)
def test_comment_permission(api: Api, email: str, expected: int) -> None:
    """Commenting needs comment access and a working role; refused comments are not stored."""
    case_id = api.case_id(BRAKES)
    body = f"Kommentar von {email}"
    answer = api(email).post(f"/cases/{case_id}/timeline", {"body": body, "audience": "shared"})
    assert answer.status == expected, answer.text
    stored = api.query("SELECT count(*) FROM timeline_entries WHERE body = :b", b=body)[0][0]
    assert stored == (1 if expected == 201 else 0)


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("agent@nordwerk.example", 200),
        ("admin@nordwerk.example", 200),
        ("viewer@nordwerk.example", 403),
        ("sales@berger.example", 403),  # a partner with edit cannot share further
        ("quality@schulz.example", 403),
        ("agent@suedstern.example", 404),
    ],
)
def test_only_owner_agents_and_admins_share(api: Api, email: str, expected: int) -> None:
    """Sharing is for the owner organisation's agents and admins."""
    case_id = api.case_id(BRAKES)
    answer = api(email).post(
        f"/cases/{case_id}/shares", {"organization_id": api.org_id("kaya"), "access": "read"}
    )
    assert answer.status == expected, answer.text
    kaya_sees = api("service@kaya.example").get(f"/cases/{case_id}").status
    assert kaya_sees == (200 if expected == 200 else 404)


def test_share_targets_stay_in_the_value_chain(api: Api) -> None:
    """A case can only be shared within the owner's value chain: Nordwerk cannot share with
    Südstern, and re-posting a share changes it instead of adding one."""
    nordwerk = api("agent@nordwerk.example")
    case_id = api.case_id(BRAKES)
    refused = nordwerk.post(
        f"/cases/{case_id}/shares", {"organization_id": api.org_id("suedstern"), "access": "read"}
    )
    assert refused.status == 422
    assert api("agent@suedstern.example").get(f"/cases/{case_id}").status == 404
    changed = nordwerk.post(
        f"/cases/{case_id}/shares",
        {"organization_id": api.org_id("schulz"), "access": "read"},
    )
    assert changed.status == 200
    assert api("quality@schulz.example").get(f"/cases/{case_id}").body["access"] == "read"
    shares = nordwerk.get(f"/cases/{case_id}/shares").body["items"]
    assert len(shares) == 2


def test_revoking_a_share_hides_the_case(api: Api) -> None:
    """After a share is revoked the former partner gets 404 and no list entry."""
    case_id = api.case_id(BRAKES)
    schulz = api("quality@schulz.example")
    assert schulz.get(f"/cases/{case_id}").status == 200
    answer = api("agent@nordwerk.example").delete(f"/cases/{case_id}/shares/{api.org_id('schulz')}")
    assert answer.status == 204
    assert schulz.get(f"/cases/{case_id}").status == 404
    assert schulz.get(f"/cases/{case_id}/timeline").status == 404
    assert case_id not in {c["id"] for c in schulz.all_pages("/cases")}
    again = api("agent@nordwerk.example").delete(f"/cases/{case_id}/shares/{api.org_id('schulz')}")
    assert again.status == 404


def test_claim_release_and_conflict_naming_the_holder(api: Api) -> None:
    """A claim held by someone else answers 409 naming the holder; the holder can release."""
    case_id = api.case_id(BRAKES)
    berger = api("sales@berger.example")
    claimed = berger.post(f"/cases/{case_id}/claim")
    assert claimed.status == 200
    assert claimed.body["handling_user_id"] == api.user_id("sales@berger.example")
    assert claimed.body["handling_organization_id"] == api.org_id("berger")
    conflict = api("agent@nordwerk.example").post(f"/cases/{case_id}/claim")
    assert conflict.status == 409
    assert conflict.body["error"]["holder"]["name"] == "Anna Berger"
    assert conflict.body["error"]["holder"]["organization_name"] == "Autohaus Berger GmbH"
    assert "Anna Berger" in conflict.body["error"]["message"]
    assert api("viewer@nordwerk.example").post(f"/cases/{case_id}/claim").status == 403
    assert api("quality@schulz.example").post(f"/cases/{case_id}/claim").status == 403
    released = berger.post(f"/cases/{case_id}/release")
    assert released.status == 200
    assert released.body["handling_user_id"] is None
    assert api("agent@nordwerk.example").post(f"/cases/{case_id}/claim").status == 200


def test_handover_to_an_organisation_with_message(api: Api) -> None:
    """Hand-over makes the receiver the handler (it now sees the case) and its message
    reaches the receiver but not other partners."""
    case_id = api.case_id(BRAKES)
    answer = api("agent@nordwerk.example").post(
        f"/cases/{case_id}/handover",
        {"organization_id": api.org_id("kaya"), "message": "Bitte übernehmen, Kunde wohnt nah."},
    )
    assert answer.status == 200, answer.text
    kaya = api("service@kaya.example")
    case = kaya.get(f"/cases/{case_id}")
    assert case.status == 200 and case.body["access"] == "edit"
    kaya_bodies = [e["body"] for e in kaya.get(f"/cases/{case_id}/timeline").body["items"]]
    assert "Bitte übernehmen, Kunde wohnt nah." in kaya_bodies
    schulz_bodies = [
        e["body"]
        for e in api("quality@schulz.example").get(f"/cases/{case_id}/timeline").body["items"]
    ]
    assert "Bitte übernehmen, Kunde wohnt nah." not in schulz_bodies
    outside = api("agent@nordwerk.example").post(
        f"/cases/{case_id}/handover", {"organization_id": api.org_id("suedstern")}
    )
    assert outside.status == 422


def test_visibility_fields_cannot_be_patched(api: Api) -> None:
    """Owner, handler and shares change only through their own endpoints."""
    case_id = api.case_id(LEAD)
    berger = api("sales@berger.example")
    version = berger.get(f"/cases/{case_id}").body["version"]
    for field, value in [
        ("owner_organization_id", api.org_id("nordwerk")),
        ("handling_organization_id", api.org_id("nordwerk")),
        ("handling_user_id", api.user_id("agent@nordwerk.example")),
    ]:
        answer = berger.patch(f"/cases/{case_id}", {"version": version, field: value})
        assert answer.status == 422
        assert field in answer.body["error"]["fields"]
    assert api("agent@nordwerk.example").get(f"/cases/{case_id}").status == 404


def test_markers_from_another_chain_never_leak(api: Api) -> None:
    """Marker strings planted in another chain's records never appear in any response."""
    forbidden = {
        "agent@nordwerk.example": ["SUEDSTERN-KETTE-GEHEIM", "BERGER-INTERN-LEAD", "m.oeztuerk@"],
        "quality@schulz.example": ["SUEDSTERN-KETTE-GEHEIM", "BERGER-INTERN-LEAD", "m.oeztuerk@"],
        "sales@berger.example": ["SUEDSTERN-KETTE-GEHEIM", "m.oeztuerk@"],
        "agent@suedstern.example": ["BERGER-INTERN-LEAD", "Bremsgeräusche", "juergen.mueller@"],
    }
    for email, markers in forbidden.items():
        user = api(email)
        texts = [
            json.dumps(user.all_pages("/cases?limit=200"), ensure_ascii=False),
            json.dumps(user.all_pages("/customers?limit=200"), ensure_ascii=False),
            user.get("/organizations").text,
        ]
        for case in user.all_pages("/cases?limit=200"):
            texts.append(user.get(f"/cases/{case['id']}/timeline").text)
            texts.append(user.get(f"/cases/{case['id']}/shares").text)
        for query in ("Turbolader", "Probefahrt", "Bremsgeräusche", "Müller"):
            texts.append(json.dumps(user.all_pages(f"/cases?q={query}"), ensure_ascii=False))
        blob = "\n".join(texts)
        decoded = blob.encode().decode("unicode_escape", errors="ignore")
        for marker in markers:
            assert marker not in blob and marker not in decoded, (email, marker)


def test_organizations_are_own_and_value_chain(api: Api) -> None:
    """Organisations listed are the caller's own and those of its value chains."""
    slugs = {o["slug"] for o in api("quality@schulz.example").get("/organizations").body["items"]}
    assert slugs == {"schulz", "nordwerk", "berger", "kaya"}
    slugs = {o["slug"] for o in api("agent@suedstern.example").get("/organizations").body["items"]}
    assert slugs == {"suedstern", "kaya"}
    slugs = {o["slug"] for o in api("service@kaya.example").get("/organizations").body["items"]}
    assert slugs == {"kaya", "nordwerk", "berger", "schulz", "suedstern"}
    assert (
        api("agent@suedstern.example").get(f"/organizations/{api.org_id('schulz')}").status == 404
    )


def test_claims_expire_unless_renewed(api: Api) -> None:
    """A claim not renewed within the idle time no longer blocks others; renewing by the
    holder keeps it."""
    import datetime as dt

    from portal.db import get_session

    case_id = api.case_id(BRAKES)
    berger = api("sales@berger.example")
    claimed = berger.post(f"/cases/{case_id}/claim").body
    assert claimed["claim_expires_at"]
    assert api("agent@nordwerk.example").post(f"/cases/{case_id}/claim").status == 409
    renewed = berger.post(f"/cases/{case_id}/claim")
    assert renewed.status == 200
    assert renewed.body["claim_expires_at"] >= claimed["claim_expires_at"]
    idle = api.app.config["CLAIM_IDLE_MINUTES"]
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=idle + 1)
    import sqlalchemy as sa

    with api.app.app_context():
        session = get_session()
        session.execute(
            sa.text("UPDATE cases SET claimed_at = :t, claim_renewed_at = :t WHERE id = :i"),
            {"t": old, "i": case_id},
        )
        session.commit()
    taken = api("agent@nordwerk.example").post(f"/cases/{case_id}/claim")
    assert taken.status == 200, taken.text
    assert taken.body["handling_user_id"] == api.user_id("agent@nordwerk.example")
    changes = [
        e
        for e in api("agent@nordwerk.example").get(f"/cases/{case_id}/timeline").body["items"]
        if e.get("field") == "handling_user"
    ]
    assert (changes[-1]["old_value"], changes[-1]["new_value"]) == ("Anna Berger", "Lena Hoffmann")


def test_claim_renewal_is_only_for_the_holder(api: Api) -> None:
    """Renewing never claims: only the holder can renew, others get 409."""
    case_id = api.case_id(BRAKES)
    assert api("sales@berger.example").post(f"/cases/{case_id}/claim/renew").status == 409
    assert api("sales@berger.example").post(f"/cases/{case_id}/claim").status == 200
    renewed = api("sales@berger.example").post(f"/cases/{case_id}/claim/renew")
    assert renewed.status == 200
    assert renewed.body["handling_user_id"] == api.user_id("sales@berger.example")
    assert api("agent@nordwerk.example").post(f"/cases/{case_id}/claim/renew").status == 409
    assert api("viewer@nordwerk.example").post(f"/cases/{case_id}/claim/renew").status == 403
