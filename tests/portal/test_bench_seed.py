"""`portal bench seed`: a benchmark network built by COPY is one the app works on as if its
users had entered it: seeded agents sign in, see exactly the cases the policy allows, find
customers by transcribed names and callers by number, and create cases that continue the
seeded numbering. PostgreSQL only (the seeder refuses anything else)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from flask import Flask

from bench.profiles import PASSWORD, SeedError, seed_profile
from tests.auth.test_clients import as_client, token_for
from tests.conftest import dispose_app, make_app
from tests.portal.test_cli import portal
from tests.support.api import Api
from tests.support.web import login

PG = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", id="pg", marks=pytest.mark.postgresql)]
)
EN = {"Accept-Language": "en"}
TRANSCRIBE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


class Seeded:
    """An app on a database seeded with profile XS, with SQL and API helpers."""

    def __init__(self, app: Flask, facts: dict[str, Any]) -> None:
        self.app = app
        self.facts = facts
        self.api = Api(app)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        return self.api.query(sql, **params)

    def value(self, sql: str, **params: Any) -> Any:
        return self.rows(sql, **params)[0][0]

    def visible_case_ids(self, org_id: int) -> list[int]:
        """The visibility rule computed directly: owner, handler or a share."""
        return sorted(
            row[0]
            for row in self.rows(
                "SELECT id FROM cases WHERE owner_organization_id = :o"
                " UNION SELECT id FROM cases WHERE handling_organization_id = :o"
                " UNION SELECT case_id FROM case_shares WHERE organization_id = :o",
                o=org_id,
            )
        )


@pytest.fixture
def seeded(empty_db_url: str) -> Iterator[Seeded]:
    facts = seed_profile(empty_db_url, "XS", argon2_profile="fast")
    app = make_app(empty_db_url)
    yield Seeded(app, facts)
    dispose_app(app)


@PG
def test_network_has_the_profiles_shape(seeded: Seeded) -> None:
    facts, value = seeded.facts, seeded.value
    counts = facts["counts"]
    assert counts["organizations"] == 30
    assert facts["organizations"]["manufacturer"] == 3
    assert facts["organizations"]["dealer"] >= 15
    assert facts["organizations"]["supplier"] >= 2
    assert facts["organizations"]["agency"] >= 1
    assert facts["organizations"]["multi_brand_dealers"] >= 1
    assert counts["customers"] == counts["cases"] == counts["activities"] == 2_000
    assert 1.2 < counts["case_shares"] / counts["cases"] < 1.8
    assert 2.5 < counts["timeline_entries"] / counts["cases"] < 3.5
    assert counts["timeline_audiences"] > 0
    assert counts["search_documents"] == counts["customers"] + counts["contacts"] + 2_000
    # Ownership is skewed: the largest dealer owns many times the median dealer's cases.
    largest, median = facts["largest_dealer"], facts["median_dealer"]
    assert largest["owned_cases"] > 5 * max(1, median["owned_cases"])
    assert largest["visible_cases"] == len(seeded.visible_case_ids(largest["id"]))
    # Every organisation has a known admin and agent.
    assert (
        value(
            "SELECT count(DISTINCT organization_id) FROM users u JOIN organizations o"
            " ON o.id = u.organization_id WHERE u.email IN"
            " ('admin1@' || o.slug || '.bench', 'agent1@' || o.slug || '.bench')"
        )
        == counts["organizations"]
    )
    # Shares stay inside the owner's value chains and never name owner or handler.
    outside = value(
        "SELECT count(*) FROM case_shares s JOIN cases c ON c.id = s.case_id"
        " WHERE s.organization_id IN (c.owner_organization_id, c.handling_organization_id)"
        " OR NOT EXISTS (SELECT 1 FROM organizations m WHERE m.kind = 'manufacturer'"
        "  AND (m.id = c.owner_organization_id OR EXISTS (SELECT 1 FROM partnerships p"
        "   WHERE p.manufacturer_id = m.id AND p.partner_id = c.owner_organization_id))"
        "  AND (m.id = s.organization_id OR EXISTS (SELECT 1 FROM partnerships q"
        "   WHERE q.manufacturer_id = m.id AND q.partner_id = s.organization_id)))"
    )
    assert outside == 0
    # Numbers are stored in valid E.164; case numbers continue per year from the counters.
    for (e164,) in seeded.rows("SELECT e164 FROM phone_numbers ORDER BY id LIMIT 200"):
        assert phonenumbers.is_valid_number(phonenumbers.parse(e164)), e164
    for year, last in seeded.rows("SELECT year, last_value FROM case_number_counters"):
        assert value("SELECT max(number) FROM cases WHERE number LIKE :p", p=f"C-{year}-%") == (
            f"C-{year}-{last:06d}"
        )


@PG
def test_seeded_agents_sign_in_and_see_what_the_policy_allows(seeded: Seeded) -> None:
    facts = seeded.facts
    client = seeded.app.test_client()
    assert login(client, facts["largest_dealer"]["agent_email"], PASSWORD).status_code == 302
    assert client.get("/", headers=EN).status_code == 200

    for org in (facts["largest_dealer"], facts["manufacturers"][0], facts["supplier"]):
        agent = seeded.api(org["agent_email"])
        listed = sorted(item["id"] for item in agent.all_pages("/cases?limit=200"))
        assert listed == seeded.visible_case_ids(org["id"]), org["slug"]
        assert len(listed) == org["visible_cases"]

    # A partner's view of a shared case leaves out the owner's internal notes.
    case_id, partner_id, internal_id = seeded.rows(
        "SELECT c.id, s.organization_id, e.id FROM cases c"
        " JOIN case_shares s ON s.case_id = c.id"
        " JOIN timeline_entries e ON e.case_id = c.id AND e.audience = 'internal'"
        "  AND e.organization_id = c.owner_organization_id"
        " WHERE c.handling_organization_id = c.owner_organization_id ORDER BY c.id LIMIT 1"
    )[0]
    slug = seeded.value("SELECT slug FROM organizations WHERE id = :i", i=partner_id)
    timeline = seeded.api(f"agent1@{slug}.bench").get(f"/cases/{case_id}/timeline")
    assert timeline.status == 200, timeline.text
    shown = {item["id"] for item in timeline.body["items"]}
    assert shown and internal_id not in shown


@PG
def test_search_finds_a_seeded_customer_by_a_transcribed_name(seeded: Seeded) -> None:
    largest = seeded.facts["largest_dealer"]
    customer_id, name = seeded.rows(
        "SELECT id, name FROM customers WHERE owner_organization_id = :o AND kind = 'person'"
        " AND name ~ '[äöü]' ORDER BY id LIMIT 1",
        o=largest["id"],
    )[0]
    query = name.translate(TRANSCRIBE)
    assert query != name
    found = seeded.api(largest["agent_email"]).get(f"/search?q={query}&limit=50")
    assert found.status == 200, found.text
    assert customer_id in [hit["id"] for hit in found.body["customers"]]

    # An organisation that sees neither the customer nor any of its cases does not find it.
    stranger = seeded.value(
        "SELECT slug FROM organizations o WHERE o.id <> :owner AND NOT EXISTS ("
        " SELECT 1 FROM cases c WHERE c.customer_id = :c AND (c.owner_organization_id = o.id"
        " OR c.handling_organization_id = o.id OR EXISTS (SELECT 1 FROM case_shares s"
        " WHERE s.case_id = c.id AND s.organization_id = o.id))) ORDER BY o.id LIMIT 1",
        owner=largest["id"],
        c=customer_id,
    )
    hidden = seeded.api(f"agent1@{stranger}.bench").get(f"/search?q={query}&limit=50")
    assert hidden.status == 200, hidden.text
    assert customer_id not in [hit["id"] for hit in hidden.body["customers"]]


@PG
def test_new_cases_continue_the_seeded_ids_and_numbers(seeded: Seeded) -> None:
    largest = seeded.facts["largest_dealer"]
    agent = seeded.api(largest["agent_email"])
    year = dt.datetime.now(dt.UTC).year
    last = seeded.rows("SELECT last_value FROM case_number_counters WHERE year = :y", y=year)
    highest_case = seeded.value("SELECT max(id) FROM cases")
    highest_activity = seeded.value("SELECT max(id) FROM activities")
    customer_id = seeded.value(
        "SELECT min(id) FROM customers WHERE owner_organization_id = :o", o=largest["id"]
    )

    created = agent.post("/cases", {"customer_id": customer_id, "subject": "Bench: Rückruf"})
    assert created.status == 201, created.text
    assert created.body["id"] == highest_case + 1
    assert created.body["number"] == f"C-{year}-{(last[0][0] if last else 0) + 1:06d}"
    note = agent.post(
        f"/cases/{created.body['id']}/timeline", {"body": "Kunde informiert.", "audience": "shared"}
    )
    assert note.status == 201, note.text
    assert seeded.value("SELECT min(id) FROM activities WHERE id > :i", i=highest_activity) == (
        highest_activity + 1
    )
    # The duplicate check knows the seeded customers by their keys (folded name, E.164).
    name, e164 = seeded.rows(
        "SELECT c.name, p.e164 FROM customers c JOIN phone_numbers p ON p.customer_id = c.id"
        " WHERE c.id = :c AND p.contact_id IS NULL ORDER BY p.position LIMIT 1",
        c=customer_id,
    )[0]
    customer = agent.post("/customers", {"name": name.translate(TRANSCRIBE), "phones": [e164]})
    assert customer.status == 201, customer.text
    candidates = customer.body["possible_duplicates"]["candidates"]
    assert customer_id in [c["customer_id"] for c in candidates]


@PG
def test_cti_finds_seeded_callers_in_any_format(seeded: Seeded) -> None:
    largest = seeded.facts["largest_dealer"]
    system = as_client(seeded.app, token_for(seeded.app, "cti", org_admin=largest["admin_email"]))
    for number, caller in enumerate(seeded.facts["callers_of_largest_dealer"][:3]):
        for form in ("national", "international", "e164"):
            raw = caller[form]
            if form == "national" and largest["outside_line_prefix"]:
                raw = largest["outside_line_prefix"] + raw
            rang = system.post(
                "/cti/events",
                {
                    "call_id": f"bench-{number}-{form}",
                    "event": "ringing",
                    "from": raw,
                    "agent": largest["agent_extension"],
                },
            )
            assert rang.status == 200, rang.text
            matched = [m["customer_id"] for m in rang.body["matches"]]
            assert caller["customer_id"] in matched, (raw, rang.body)


@PG
def test_cli_seeds_once_and_refuses_a_database_with_rows(empty_db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "facts.json"
    done = portal(empty_db_url, "bench", "seed", "--profile", "XS", "--out", str(out))
    assert done.returncode == 0, done.stderr
    facts = json.loads(out.read_text(encoding="utf-8"))
    assert json.loads(done.stdout.strip().splitlines()[-1]) == facts
    assert re.search(r"cases: 2,000/2,000 \([\d,]+ rows/s\)", done.stderr)
    assert facts["counts"]["cases"] == 2_000
    assert facts["largest_dealer"]["agent_email"].endswith(".bench")

    again = portal(empty_db_url, "bench", "seed", "--profile", "XS", "--out", str(out))
    assert again.returncode != 0
    assert "empty database only" in again.stderr
    with pytest.raises(SeedError, match="empty database only"):
        seed_profile(empty_db_url, "XS", argon2_profile="fast")


def test_cli_refuses_sqlite(tmp_path: Path) -> None:
    refused = portal(f"sqlite:///{tmp_path / 'x.db'}", "bench", "seed", "--profile", "XS")
    assert refused.returncode != 0
    assert "PostgreSQL" in refused.stderr
