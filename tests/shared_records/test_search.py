"""The search (GET /api/v1/search, the /search page): spelling-tolerant names, phone numbers in
any format, email addresses, case numbers, city and postal code, ranked and grouped, always
inside the visibility policy, and current after every write. Runs on SQLite (FTS5) and on
PostgreSQL (full-text and trigram indexes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.support.api import Answer, Api, ApiUser
from tests.support.web import login

NORDWERK = "agent@nordwerk.example"
BERGER = "sales@berger.example"
KAYA = "service@kaya.example"
SUEDSTERN = "agent@suedstern.example"
SCHULZ = "quality@schulz.example"
MUELLER = "Jürgen Müller"  # Nordwerk's; Berger sees contact details (share), Schulz does not
ROOT = Path(__file__).resolve().parents[2]
BRAKES = "Bremsgeräusche an der Vorderachse"  # Müller's case: shared with Berger and Schulz


def _search(user: ApiUser, q: str, **params: Any) -> dict[str, Any]:
    answer = user.get("/search", query_string={"q": q, **params})
    assert answer.status == 200, answer.text
    body: dict[str, Any] = answer.body
    return body


def _titles(body: dict[str, Any], group: str) -> list[str]:
    return [hit["title"] for hit in body[group]]


def _everything(body: dict[str, Any]) -> list[str]:
    return [hit["title"] for group in ("customers", "contacts", "cases") for hit in body[group]]


def _create_customer(user: ApiUser, name: str, **fields: Any) -> dict[str, Any]:
    answer = user.post("/customers", {"name": name, **fields})
    assert answer.status == 201, answer.text
    body: dict[str, Any] = answer.body
    return body


def _create_case(user: ApiUser, customer_id: int, subject: str) -> dict[str, Any]:
    answer = user.post("/cases", {"customer_id": customer_id, "subject": subject})
    assert answer.status == 201, answer.text
    body: dict[str, Any] = answer.body
    return body


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "q", ["Müller", "Mueller", "Muller", "muller", "MÜLLER", "Juergen Mueller", "jurgen  MULLER"]
)
def test_umlaut_spellings_find_the_same_customer(api: Api, q: str) -> None:
    """Müller, Mueller and Muller (any case) are one name."""
    body = _search(api(NORDWERK), q)
    assert MUELLER in _titles(body, "customers")
    hit = next(h for h in body["customers"] if h["title"] == MUELLER)
    assert hit["id"] == api.customer_id(MUELLER)
    assert hit["kind"] == "customer"


def test_accents_and_sharp_s_are_transliterated(api: Api) -> None:
    """Accents and ß need not be typed: Françoise Weißgerber is found as Francoise Weissgerber."""
    user = api(BERGER)
    _create_customer(user, "Françoise Weißgerber")
    _create_customer(user, "Ülkü Öztürk-Bäcker")
    for q in ("Francoise Weissgerber", "françoise weißgerber", "FRANCOISE WEISS", "weissg"):
        assert _titles(_search(user, q), "customers") == ["Françoise Weißgerber"], q
    for q in ("Ulku Oeztuerk", "ülkü öztürk", "Oztürk Backer", "Baecker Ülkü"):
        assert _titles(_search(user, q), "customers") == ["Ülkü Öztürk-Bäcker"], q


@pytest.mark.parametrize("q", ["Jürgn Müler", "Mueler", "Jürgen Mülker", "Jurgen Muler"])
def test_typos_still_find_the_customer(api: Api, q: str) -> None:
    """A missing, doubled or wrong letter still finds the name (by sound or similarity)."""
    body = _search(api(BERGER), q)
    assert MUELLER in _titles(body, "customers"), body
    assert body["customers"][0]["title"] in (MUELLER, "Jörg Müller")


def test_schmitt_finds_schmidt_but_not_unrelated_names(api: Api) -> None:
    """Schmitt and Schmid find Schmidt; a name that is merely short is not dragged in."""
    user = api(NORDWERK)
    _create_customer(user, "Karl Schmidt")
    _create_customer(user, "Karl Schulte")
    for q in ("Schmitt", "Karl Schmid", "schmit"):
        titles = _titles(_search(user, q), "customers")
        assert "Karl Schmidt" in titles, q
        assert "Karl Schulte" not in titles, q
    assert _everything(_search(user, "Xylophonbauer")) == []


def test_a_typo_found_by_similarity_only_is_marked(api: Api) -> None:
    """ "Mülker" sounds different from Müller (Kölner Phonetik), so only the typo pass finds it,
    on either engine, and says so."""
    body = _search(api(NORDWERK), "Mülker")
    hit = next(h for h in body["customers"] if h["title"] == MUELLER)
    assert hit["match"] == "typo"


def test_best_match_comes_first(api: Api) -> None:
    """The closest spelling ranks first, in the same order on both engines."""
    user = api(NORDWERK)
    for name in ("Antonia Quellmann", "Anton Quellmann", "Anton Quellmeier", "Antonius Quell"):
        _create_customer(user, name)
    body = _search(user, "Anton Quellmann")
    titles = _titles(body, "customers")
    assert titles[0] == "Anton Quellmann"
    assert "Anton Quellmeier" not in titles[:1]
    scores = [hit["score"] for hit in body["customers"]]
    assert scores == sorted(scores, reverse=True)


# --- phone numbers, email addresses, case numbers ---------------------------------------------


@pytest.mark.parametrize(
    "q",
    [
        "0171 2345678",
        "+49 171 2345678",
        "0049 171 2345678",
        "(0171) 234-5678",
        "+491712345678",
        "0171/2345678",
        "030 12345678",
    ],
)
def test_phone_in_any_format(api: Api, q: str) -> None:
    """A phone number is found however it is written, by those who see contact details."""
    body = _search(api(BERGER), q)
    assert _titles(body, "customers") == [MUELLER]
    assert body["customers"][0]["match"] == "phone"
    assert _everything(_search(api(SCHULZ), q)) == []


def test_phone_of_a_contact_person(api: Api) -> None:
    """A contact's number finds the contact (Kaya's customer), not for Nordwerk, which sees the
    company through a share without contact details."""
    body = _search(api(KAYA), "0171 9876543")
    assert _titles(body, "contacts") == ["Dörte Köhler"]
    assert body["contacts"][0]["customer_name"] == "Köhler Logistik GmbH"
    assert _everything(_search(api(NORDWERK), "0171 9876543")) == []
    assert "Dörte Köhler" in _titles(_search(api(NORDWERK), "Dörte Köhler"), "contacts")


@pytest.mark.parametrize(
    "q", ["juergen.mueller@example.de", "Juergen.Mueller@EXAMPLE.de", "juergen.mueller@"]
)
def test_email_exact_or_prefix(api: Api, q: str) -> None:
    """An email address is found exactly or by its beginning, only with contact details."""
    body = _search(api(BERGER), q)
    assert _titles(body, "customers") == [MUELLER]
    assert body["customers"][0]["match"] == "email"
    assert _everything(_search(api(SCHULZ), q)) == []


def test_case_number_and_its_tail(api: Api) -> None:
    """The full case number, in any case, and its tail find the case, for those who see it."""
    case_id = api.case_id(BRAKES)
    number = api(NORDWERK).get(f"/cases/{case_id}").body["number"]
    tail = number.rsplit("-", 1)[1]
    for q in (number, number.lower(), tail, str(int(tail)), number.split("-", 1)[1]):
        body = _search(api(SCHULZ), q)
        assert case_id in [hit["case_id"] for hit in body["cases"]], q
        hit = next(h for h in body["cases"] if h["id"] == case_id)
        assert hit["number"] == number
        assert hit["subject"] == BRAKES
        assert hit["customer_name"] == MUELLER
    assert _search(api(SCHULZ), number)["cases"][0]["match"] == "number"
    # Kaya handles another case of Müller's, not this one.
    assert case_id not in [hit["id"] for hit in _search(api(KAYA), number)["cases"]]


def test_case_subject_words(api: Api) -> None:
    """Words of a case's subject find the case."""
    body = _search(api(BERGER), "Bremsgeräusche Vorderachse")
    assert [hit["id"] for hit in body["cases"]] == [api.case_id(BRAKES)]


# --- contact details ------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["Berlin", "10115", "Müller Berlin", "Jürgen 10115"])
def test_city_and_postal_code_only_with_contact_details(api: Api, q: str) -> None:
    """City and postal code find a customer only for users who see its contact details."""
    assert MUELLER in _titles(_search(api(BERGER), q), "customers")
    assert MUELLER not in _titles(_search(api(SCHULZ), q), "customers")


def test_city_shown_only_with_contact_details(api: Api) -> None:
    """The hit carries the city for Berger (details shared) and not for Schulz."""
    berger = next(h for h in _search(api(BERGER), MUELLER)["customers"] if h["title"] == MUELLER)
    schulz = next(h for h in _search(api(SCHULZ), MUELLER)["customers"] if h["title"] == MUELLER)
    assert berger["city"] == "Berlin"
    assert schulz["city"] is None
    assert berger["score"] == schulz["score"]


# --- visibility ------------------------------------------------------------------------------


@pytest.fixture
def zaunkoenige(api: Api) -> dict[str, dict[str, Any]]:
    """One customer named Zaunkönig per organisation, each with phone and email."""
    made = {}
    for index, (email, first) in enumerate(
        [(BERGER, "Berthold"), (KAYA, "Kasimir"), (NORDWERK, "Norbert")]
    ):
        made[email] = _create_customer(
            api(email),
            f"{first} Zaunkönig",
            phones=[f"0151 5550100{index}"],
            emails=[f"{first.lower()}@zaunkoenig.example.org"],
            postal_code="99084",
            city="Erfurt",
        )
    return made


def test_a_dealer_never_finds_another_dealers_customer(
    api: Api, zaunkoenige: dict[str, dict[str, Any]]
) -> None:
    """By name, typo, phone, email or city: each organisation finds only its own Zaunkönig."""
    expected = {
        BERGER: "Berthold Zaunkönig",
        KAYA: "Kasimir Zaunkönig",
        NORDWERK: "Norbert Zaunkönig",
    }
    for email, own in expected.items():
        user = api(email)
        for q in ("Zaunkönig", "Zaunkoenig", "Zaunkönik", "Erfurt", "99084"):
            assert _titles(_search(user, q), "customers") == [own], (email, q)
        for other_email, other in zaunkoenige.items():
            found = _titles(_search(user, other["phones"][0]), "customers")
            found += _titles(_search(user, other["emails"][0]), "customers")
            assert found == ([own] * 2 if other_email == email else []), (email, other_email)
    for q in ("Zaunkönig", "0151 55501000", "berthold@zaunkoenig.example.org", "Erfurt"):
        assert _everything(_search(api(SUEDSTERN), q)) == [], q
        assert _everything(_search(api(SCHULZ), q)) == [], q


def test_sharing_a_case_widens_the_search_and_only_so_far(
    api: Api, zaunkoenige: dict[str, dict[str, Any]]
) -> None:
    """Kaya's case shared with Nordwerk (without contact details): Nordwerk now finds the case
    and the customer by name, but not by phone or city; Berger still finds neither."""
    kaya = api(KAYA)
    customer = zaunkoenige[KAYA]
    case = _create_case(kaya, customer["id"], "Zaunreparatur Sonderfall")
    assert [h["id"] for h in _search(kaya, "Zaunreparatur")["cases"]] == [case["id"]]
    for email in (NORDWERK, BERGER):
        assert _search(api(email), "Zaunreparatur")["cases"] == []
        assert "Kasimir Zaunkönig" not in _everything(_search(api(email), "Kasimir"))

    shared = kaya.post(
        f"/cases/{case['id']}/shares",
        {"organization_id": api.org_id("nordwerk"), "access": "read"},
    )
    assert shared.status in (200, 201), shared.text

    nordwerk = api(NORDWERK)
    assert [h["id"] for h in _search(nordwerk, "Zaunreparatur")["cases"]] == [case["id"]]
    assert _titles(_search(nordwerk, "Kasimir Zaunkönig"), "customers") == ["Kasimir Zaunkönig"]
    kasimir = next(
        h for h in _search(nordwerk, "Kasimir")["customers"] if h["id"] == customer["id"]
    )
    assert kasimir["city"] is None
    assert _titles(_search(nordwerk, customer["phones"][0]), "customers") == []
    assert _titles(_search(nordwerk, "Kasimir Erfurt"), "customers") == []
    berger = api(BERGER)
    assert _search(berger, "Zaunreparatur")["cases"] == []
    assert "Kasimir Zaunkönig" not in _titles(_search(berger, "Zaunkönig"), "customers")


def test_merged_customers_never_appear(app: Flask, api: Api) -> None:
    """A customer merged into another is no longer found; the survivor is."""
    from portal.db import get_session
    from shared_records.models import Customer

    user = api(BERGER)
    survivor = _create_customer(user, "Rosalinde Kürbis")
    merged = _create_customer(user, "Rosalinde Kuerbis-Alt")
    with app.app_context():
        session = get_session()
        row = session.get(Customer, merged["id"])
        assert row is not None
        row.merged_into_id = survivor["id"]
        session.commit()
    assert _titles(_search(user, "Rosalinde"), "customers") == ["Rosalinde Kürbis"]


@pytest.mark.parametrize("email", [NORDWERK, BERGER, KAYA, SUEDSTERN, SCHULZ])
def test_visibility_keys_match_the_policy_conditions(app: Flask, api: Api, email: str) -> None:
    """policy.customer_visibility_keys, which narrows the search's candidates, names exactly
    the customers customer_visible_to allows, and with contact details exactly those
    customer_details_visible_to allows."""
    from partners.models import User
    from portal.db import get_session
    from shared_records import policy
    from shared_records.models import Customer

    # A share without contact details, so both kinds of rows occur.
    case_id = _create_case(api(KAYA), _create_customer(api(KAYA), "Ida Teich")["id"], "Teich")["id"]
    api(KAYA).post(
        f"/cases/{case_id}/shares", {"organization_id": api.org_id("nordwerk"), "access": "read"}
    )
    with app.app_context():
        session = get_session()
        org_id = session.scalars(sa.select(User.organization_id).where(User.email == email)).one()
        keys = session.execute(policy.customer_visibility_keys(org_id)).all()
        visible = set(
            session.scalars(sa.select(Customer.id).where(policy.customer_visible_to(org_id)))
        )
        with_details = set(
            session.scalars(
                sa.select(Customer.id).where(policy.customer_details_visible_to(org_id))
            )
        )
    assert visible
    assert {customer_id for customer_id, _ in keys} == visible
    assert {customer_id for customer_id, details in keys if details} == with_details


@pytest.mark.parametrize("narrow_below", [0, 10**9])
def test_results_do_not_depend_on_the_narrowing(
    app: Flask, api: Api, monkeypatch: pytest.MonkeyPatch, narrow_below: int
) -> None:
    """Organisations that see many customers are searched without narrowing the matches to
    their visible customers first; the answers are the same either way."""
    from shared_records import search

    queries = ["Müller", "Berlin", "Köhler", "Garantiefall", "Mülker", "1", "Jürgen 10115"]
    users = [NORDWERK, BERGER, KAYA, SCHULZ]
    expected = {(u, q): _search(api(u), q, limit=50) for u in users for q in queries}
    monkeypatch.setattr(search, "NARROW_BELOW", narrow_below)
    for (user, q), body in expected.items():
        assert _search(api(user), q, limit=50) == body, (user, q)


# --- the index follows every write ------------------------------------------------------------


def test_renamed_customer_is_found_by_its_new_name_only(api: Api) -> None:
    """After a rename through the API the old name finds nothing, the new one the customer."""
    user = api(BERGER)
    customer = _create_customer(user, "Waltraud Eichhorn", city="Potsdam", postal_code="14467")
    assert _titles(_search(user, "Eichhorn"), "customers") == ["Waltraud Eichhorn"]

    patched = user.patch(f"/customers/{customer['id']}", {"name": "Waltraud Birnbaum"})
    assert patched.status == 200, patched.text

    assert _everything(_search(user, "Eichhorn")) == []
    body = _search(user, "Birnbaum")
    assert [(h["id"], h["title"]) for h in body["customers"]] == [
        (customer["id"], "Waltraud Birnbaum")
    ]
    user.patch(f"/customers/{customer['id']}", {"city": "Cottbus", "postal_code": "03046"})
    assert _everything(_search(user, "Potsdam")) == []
    assert _titles(_search(user, "Cottbus"), "customers") == ["Waltraud Birnbaum"]


def test_new_contacts_and_changed_cases_are_found(api: Api) -> None:
    """A contact added later and a case subject changed later are found at once."""
    user = api(BERGER)
    company = _create_customer(user, "Holzbau Lärche GmbH", kind="company")
    added = user.post(
        f"/customers/{company['id']}/contacts",
        {"name": "Ottokar Fichtner", "position_title": "Einkauf", "phones": ["0160 5550177"]},
    )
    assert added.status == 201, added.text
    body = _search(user, "Fichtner")
    assert _titles(body, "contacts") == ["Ottokar Fichtner"]
    assert body["contacts"][0]["customer_id"] == company["id"]
    assert _titles(_search(user, "0160 5550177"), "contacts") == ["Ottokar Fichtner"]

    case = _create_case(user, company["id"], "Angebot Dachstuhl")
    changed = user.patch(
        f"/cases/{case['id']}", {"version": case["version"], "subject": "Angebot Carport"}
    )
    assert changed.status == 200, changed.text
    assert _search(user, "Dachstuhl")["cases"] == []
    assert [h["id"] for h in _search(user, "Carport")["cases"]] == [case["id"]]


# --- the API ---------------------------------------------------------------------------------


def test_results_are_grouped_and_limited(api: Api) -> None:
    """Customers, contacts and cases come in their own groups, at most `limit` each."""
    user = api(NORDWERK)
    body = _search(user, "Köhler")
    assert set(body) == {"query", "customers", "contacts", "cases"}
    assert body["query"] == "Köhler"
    assert "Köhler Logistik GmbH" in _titles(body, "customers")
    assert _titles(body, "contacts") == ["Dörte Köhler"]
    contact = body["contacts"][0]
    assert contact["kind"] == "contact"
    assert contact["customer_name"] == "Köhler Logistik GmbH"
    assert "city" not in contact

    many = _search(user, "Garantiefall")
    assert len(many["cases"]) > 1
    assert len(_search(user, "Garantiefall", limit=1)["cases"]) == 1
    case_hit = many["cases"][0]
    assert {"number", "subject", "status", "customer_name", "case_id"} <= set(case_hit)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "Müller", "limit": "0"},
        {"q": "Müller", "limit": "51"},
        {"q": "Müller", "limit": "ten"},
        {"q": "Müller", "colour": "red"},
        [("q", "Müller"), ("q", "Meyer")],
    ],
)
def test_bad_queries_answer_400(api: Api, query: Any) -> None:
    """Missing, empty, overlong or repeated q and bad limits get a JSON 400, never a 500."""
    answer: Answer = api(BERGER).get("/search", query_string=query)
    assert answer.status == 400, answer.text
    assert answer.error_code == "bad_query"
    assert answer.body["error"]["message"]


@pytest.mark.parametrize("q", ["!!!", "@", "+", "C-", "%_\\", "'\"); DROP TABLE x;--", "*", "a*b"])
def test_odd_queries_find_nothing_or_something_but_never_fail(api: Api, q: str) -> None:
    """Punctuation, wildcards and SQL- or FTS-looking text are plain search text."""
    answer = api(BERGER).get("/search", query_string={"q": q})
    assert answer.status == 200, answer.text


def test_search_needs_sign_in_and_the_customers_read_scope(app: Flask, api: Api) -> None:
    """No credentials: 401; a client token without customers:read: 403."""
    from auth.clients import create_client
    from partners.models import User
    from portal.db import get_session

    anonymous = app.test_client().get("/api/v1/search?q=Müller")
    assert anonymous.status_code == 401
    with app.app_context():
        session = get_session()
        admin = session.scalars(sa.select(User).where(User.email == "admin@berger.example")).one()
        client, secret = create_client(session, admin, "Kasse", "cases:read")
        client_id = client.client_id
    token = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )
    assert token.status_code == 200, token.get_data(as_text=True)
    reader = ApiUser(app.test_client(), token.get_json()["access_token"], "client")
    refused = reader.get("/search", query_string={"q": "Müller"})
    assert refused.status == 403
    assert refused.error_code == "insufficient_scope"


def test_one_search_takes_few_statements(app: Flask, api: Api) -> None:
    """However many hits, a search sends at most four statements (no N+1): the size check,
    the full-text pass and, for a typo, the trigram setting and the typo pass."""
    from partners.models import User
    from portal.db import get_session
    from shared_records.search import search

    with app.app_context():
        session = get_session()
        actor = session.scalars(sa.select(User).where(User.email == NORDWERK)).one()
        _ = actor.organization.phone_region
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        engine = session.get_bind()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            for q in ("Garantiefall", "Mülker", "Müller Berlin", "0171 2345678", "a@b", "1"):
                statements.clear()
                results = search(session, actor, q, limit=50)
                assert len(statements) <= 4, (q, statements)
                assert results.query == q
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)


def test_queries_use_the_search_indexes(app: Flask, backend: str) -> None:
    """The match conditions are answered by the engines' indexes: FTS5 on SQLite; on
    PostgreSQL the GIN indexes of migration 0006, whose expressions the queries repeat."""
    from portal.db import get_session
    from shared_records.models import SearchDocument
    from shared_records.search import engine_for, terms_of

    with app.app_context():
        session = get_session()
        engine = engine_for(session)
        statements = {
            "names": sa.select(SearchDocument.id).where(
                engine.words(terms_of("Müller"), details=False)
            ),
            "details": sa.select(SearchDocument.id).where(
                engine.words(terms_of("Berlin"), details=True)
            ),
            "trgm": sa.select(SearchDocument.id).where(engine.similar(["mulker"])),
        }
        dialect = session.get_bind().dialect
        for name, stmt in statements.items():
            sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            if backend == "sqlite":
                plan = " ".join(
                    str(row[-1]) for row in session.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"))
                )
                assert "VIRTUAL TABLE INDEX" in plan, (name, plan)
            else:
                session.execute(sa.text("SET LOCAL enable_seqscan = off"))
                plan = " ".join(
                    row[0] for row in session.execute(sa.text("EXPLAIN " + sql.replace("%%", "%")))
                )
                assert f"ix_search_pg_{name}" in plan, (name, plan)
                if name == "details":
                    assert "ix_search_pg_names" in plan, plan


# --- the page --------------------------------------------------------------------------------


@pytest.fixture
def browser_of(app: Flask) -> Any:
    def sign_in(email: str, language: str = "en") -> FlaskClient:
        client = app.test_client()
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = language
        assert login(client, email).status_code == 302
        return client

    return sign_in


def test_page_shows_grouped_results_with_links(api: Api, browser_of: Any) -> None:
    """The page lists customers, contacts and cases in their groups, each linking to its page."""
    nordwerk = api(NORDWERK)
    company = _create_customer(nordwerk, "Gärtnerei Löwenzahn", kind="company")
    nordwerk.post(f"/customers/{company['id']}/contacts", {"name": "Lotte Löwenzahn"})
    case = _create_case(nordwerk, company["id"], "Löwenzahn im Kühlergrill")
    client = browser_of(NORDWERK)

    html = client.get("/search?q=Loewenzahn").get_data(as_text=True)

    assert 'id="search-customers"' in html
    assert 'id="search-contacts"' in html
    assert 'id="search-cases"' in html
    assert f'href="/customers/{company["id"]}"' in html
    assert f'href="/cases/{case["id"]}"' in html
    assert "Lotte Löwenzahn" in html
    assert "Contact at Gärtnerei Löwenzahn" in html
    assert case["number"] in html
    assert "Results for “Loewenzahn”: 3" in html
    # Nothing the CSP would block: no inline script, style attribute or handler.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\sstyle\s*=", html, re.IGNORECASE)
    assert not re.search(r"\son[a-z]+\s*=", html, re.IGNORECASE)


def test_page_in_german_and_nothing_found(demo_db_url: str, tmp_path: Path) -> None:
    """German by default (the catalog compiled from the current .po); a search without hits
    says so."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    from portal import create_app

    target = tmp_path / "de" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (ROOT / "portal/translations/de/LC_MESSAGES/messages.po").open("rb") as po:
        catalog = read_po(po, locale="de")
    with (target / "messages.mo").open("wb") as mo:
        write_mo(mo, catalog)
    german = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test",
            "PORTAL_ENV": "testing",
            "ARGON2_PROFILE": "fast",
            "DATABASE_URL": demo_db_url,
            "BABEL_TRANSLATION_DIRECTORIES": str(tmp_path),
        }
    )
    try:
        client = german.test_client()
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de"
        assert login(client, BERGER).status_code == 302
        html = client.get("/search?q=Müller").get_data(as_text=True)
        assert '<h1 class="h3 mb-3">Suchen</h1>' in html
        assert "Kunden</span>" in html
        assert MUELLER in html
        empty = client.get("/search?q=Xylophonbauer").get_data(as_text=True)
        assert 'id="search-empty"' in empty
        assert MUELLER not in empty
    finally:
        engine = german.extensions.get("portal_db")
        if engine is not None and hasattr(engine, "dispose"):
            engine.dispose()


def test_page_keeps_the_policy(api: Api, browser_of: Any) -> None:
    """The page shows nothing the user may not see: Berger does not find Kaya's customer."""
    _create_customer(api(KAYA), "Kunigunde Rabenstein")
    html = browser_of(BERGER).get("/search?q=Rabenstein").get_data(as_text=True)
    assert "Kunigunde Rabenstein" not in html
    assert 'id="search-empty"' in html
    kaya = browser_of(KAYA).get("/search?q=Rabenstein").get_data(as_text=True)
    assert "Kunigunde Rabenstein" in kaya


def test_page_refuses_overlong_text_readably(browser_of: Any) -> None:
    """Over 200 characters: a readable message, no 500."""
    response = browser_of(BERGER).get("/search?q=" + "x" * 300)
    assert response.status_code == 400
    assert "The search text is too long (at most 200 characters)." in response.get_data(
        as_text=True
    )


def test_page_needs_sign_in(app: Flask) -> None:
    response = app.test_client().get("/search?q=Müller")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def _form(html: str, form_id: str) -> str:
    """The opening tag and content of the form with this id."""
    before, after = html.split(f'id="{form_id}"', 1)
    return before.rsplit("<form", 1)[1] + after.split("</form>", 1)[0]


def test_navbar_has_a_search_box(browser_of: Any) -> None:
    """Every page's navbar has a labelled search field (in the collapsed menu, and behind a
    button on wide screens) that sends q to /search; on the search page it keeps the text."""
    client = browser_of(BERGER)
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    for form_id in ("nav-search", "nav-search-wide"):
        form = _form(html, form_id)
        assert 'action="/search"' in form
        assert 'method="get"' in form
        assert 'type="search"' in form
        assert 'name="q"' in form
        assert "Search customers, contacts and cases" in form
    page = client.get("/search?q=Berlin").get_data(as_text=True)
    assert 'value="Berlin"' in _form(page, "nav-search")
