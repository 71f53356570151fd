"""Leaving and rejoining a value chain: ending a partnership suspends the shares between the
partner and every organisation it no longer shares a chain with (both directions), resuming
brings them back with their access level; only the manufacturer's admins may do either."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from partners import service
from partners.models import Organization, Partnership, User
from portal.db import get_session
from portal.errors import Forbidden, NotFound
from tests.portal.test_cli import portal
from tests.shared_records.test_visibility_index import _compare
from tests.support.api import Api

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def _partnership_id(api: Api, manufacturer: str, partner: str) -> int:
    rows = api.query(
        "SELECT id FROM partnerships WHERE manufacturer_id = :m AND partner_id = :p",
        m=api.org_id(manufacturer),
        p=api.org_id(partner),
    )
    return int(rows[0].id)


# Every share with its case owner, and whether it is suspended (its pair of owner and
# organisation is).
_ALL_SHARES = (
    "SELECT s.case_id, s.access, s.include_contact_details, c.owner_organization_id AS owner, "
    "s.organization_id AS org, EXISTS (SELECT 1 FROM share_suspensions x "
    "WHERE x.owner_organization_id = c.owner_organization_id "
    "AND x.organization_id = s.organization_id) AS suspended "
    "FROM case_shares s JOIN cases c ON c.id = s.case_id"
)


def _shares(api: Api, org: str) -> dict[int, tuple[str, bool, bool]]:
    """case id -> (access, contact details, suspended) of the shares with `org`."""
    org_id = api.org_id(org)
    return {
        r.case_id: (r.access, bool(r.include_contact_details), bool(r.suspended))
        for r in api.query(_ALL_SHARES)
        if r.org == org_id
    }


def _listed(api: Api, email: str) -> set[int]:
    return {item["id"] for item in api(email).all_pages("/cases?limit=100")}


def _set_active(app: Flask, email: str, partnership_id: int, active: bool) -> Any:
    with app.app_context():
        session = get_session()
        admin = session.scalars(sa.select(User).where(User.email == email)).one()
        return service.set_partnership_active(session, admin, partnership_id, active)[1]


def _signed_in(app: Flask, email: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"

    def token(path: str) -> str:
        match = _META.search(client.get(path).get_data(as_text=True))
        assert match
        return match.group(1)

    answer = client.post(
        "/login", data={"email": email, "password": "demo", "csrf_token": token("/login")}
    )
    assert answer.status_code == 302
    return client, token("/profile")


def test_dealer_leaves_and_rejoins_the_chain(app: Flask, api: Api) -> None:
    """Berger (only in Nordwerk's chain) leaves: it loses the cases shared with it, Nordwerk
    and the other partners lose Berger's cases shared with them; rejoining restores both
    with the same access levels. The visibility index equals the rule throughout."""
    berger_agent = api("sales@berger.example")
    nordwerk = api.org_id("nordwerk")
    # One of Berger's own cases shared with the manufacturer, with contact details.
    own = berger_agent.post(
        "/cases", {"customer_id": _berger_customer(api), "subject": "Eigener Fall"}
    )
    assert own.status == 201, own.text
    own_id = own.body["id"]
    shared = berger_agent.post(
        f"/cases/{own_id}/shares",
        {"organization_id": nordwerk, "access": "comment", "include_contact_details": True},
    )
    assert shared.status < 300, shared.text
    with_berger = _shares(api, "berger")
    assert with_berger, "the demo shares cases with Berger"
    before = _listed(api, "sales@berger.example")
    assert set(with_berger) <= before
    assert api("agent@nordwerk.example").get(f"/cases/{own_id}").status == 200

    # Ending through the admin page (POST with CSRF token, like the other admin forms).
    client, csrf = _signed_in(app, "admin@nordwerk.example")
    link = _partnership_id(api, "nordwerk", "berger")
    page = client.get("/admin").get_data(as_text=True)
    assert f'data-partnership-id="{link}"' in page
    answer = client.post(
        f"/admin/partnerships/{link}/active", data={"active": "0", "csrf_token": csrf}
    )
    assert answer.status_code == 302
    assert "has left your value chain" in client.get("/admin").get_data(as_text=True)
    audited = api.query("SELECT organization_id FROM auth_events WHERE kind = 'partnership_ended'")
    assert {r.organization_id for r in audited} == {nordwerk, api.org_id("berger")}

    after = _shares(api, "berger")
    assert all(suspended for _, _, suspended in after.values())
    for case_id in with_berger:
        assert berger_agent.get(f"/cases/{case_id}").status == 404
    assert not set(with_berger) & _listed(api, "sales@berger.example")
    assert api("agent@nordwerk.example").get(f"/cases/{own_id}").status == 404
    assert own_id not in _listed(api, "agent@nordwerk.example")
    # Berger's case is listed without the suspended share, and nobody can share anew.
    assert berger_agent.get(f"/cases/{own_id}/shares").body["items"] == []
    again = berger_agent.post(
        f"/cases/{own_id}/shares", {"organization_id": nordwerk, "access": "read"}
    )
    assert again.status == 422
    _compare(app)

    answer = client.post(
        f"/admin/partnerships/{link}/active", data={"active": "1", "csrf_token": csrf}
    )
    assert answer.status_code == 302
    assert _shares(api, "berger") == with_berger
    for case_id, (access, _details, _s) in with_berger.items():
        case = berger_agent.get(f"/cases/{case_id}")
        assert case.status == 200
        mine = berger_agent.get(f"/cases/{case_id}/shares").body["items"]
        assert [s["access"] for s in mine] == [access]
    assert set(with_berger) <= _listed(api, "sales@berger.example")
    restored = api("agent@nordwerk.example").get(f"/cases/{own_id}/shares").body["items"]
    assert [(s["access"], s["include_contact_details"]) for s in restored] == [("comment", True)]
    _compare(app)


def _berger_customer(api: Api) -> int:
    rows = api.query(
        "SELECT id FROM customers WHERE owner_organization_id = :o ORDER BY id LIMIT 1",
        o=api.org_id("berger"),
    )
    return int(rows[0].id)


def test_a_partner_in_another_chain_keeps_what_that_chain_allows(app: Flask, api: Api) -> None:
    """Kaya is in Nordwerk's and Südstern's chains: leaving Nordwerk's suspends its shares
    with Nordwerk's other partners, but not those with Südstern."""
    link = _partnership_id(api, "nordwerk", "kaya")
    outcome = _set_active(app, "admin@nordwerk.example", link, False)
    kaya = api.org_id("kaya")
    rows = [r for r in api.query(_ALL_SHARES) if kaya in (r.org, r.owner)]
    suedstern = api.org_id("suedstern")
    assert outcome.suspended == sum(1 for r in rows if r.suspended)
    for row in rows:
        assert bool(row.suspended) == (suedstern not in (row.owner, row.org)), row
    _compare(app)
    assert _set_active(app, "admin@nordwerk.example", link, True).resumed == outcome.suspended
    assert not any(r.suspended for r in api.query(_ALL_SHARES))
    _compare(app)


@pytest.mark.parametrize(
    ("email", "error"),
    [
        ("agent@nordwerk.example", Forbidden),  # not an admin
        ("admin@berger.example", Forbidden),  # the partner's admin
        ("admin@suedstern.example", NotFound),  # another organisation's admin
    ],
)
def test_only_the_manufacturers_admin_may_end_a_partnership(
    app: Flask, api: Api, email: str, error: type[Exception]
) -> None:
    with app.app_context():
        session = get_session()
        org = session.get(Organization, api.org_id("suedstern"))
        assert org is not None
        service.create_user(
            session, org, email="admin@suedstern.example", name="Admin", role="admin", password=None
        )
        session.commit()
    link = _partnership_id(api, "nordwerk", "berger")
    with_berger = _shares(api, "berger")
    with pytest.raises(error):
        _set_active(app, email, link, False)
    with app.app_context():
        assert get_session().get(Partnership, link).active  # type: ignore[union-attr]
    assert _shares(api, "berger") == with_berger


def test_refused_web_request_answers_403_and_changes_nothing(app: Flask, api: Api) -> None:
    client, csrf = _signed_in(app, "admin@berger.example")
    link = _partnership_id(api, "nordwerk", "berger")
    page = client.get("/admin").get_data(as_text=True)
    assert f'data-partnership-id="{link}"' not in page  # the partner sees no End button
    answer = client.post(
        f"/admin/partnerships/{link}/active", data={"active": "0", "csrf_token": csrf}
    )
    assert answer.status_code == 403
    missing = client.post(
        "/admin/partnerships/9999/active", data={"active": "0", "csrf_token": csrf}
    )
    assert missing.status_code == 404
    assert not any(r.suspended for r in api.query(_ALL_SHARES))


def test_cli_ends_and_resumes_a_partnership(demo_db_url: str) -> None:
    ended = portal(
        demo_db_url, "partnerships", "end", "--manufacturer", "nordwerk", "--partner", "berger"
    )
    assert ended.returncode == 0, ended.stderr
    assert "ended" in ended.stdout
    assert re.search(r"[1-9]\d* shares suspended", ended.stdout), ended.stdout
    resumed = portal(
        demo_db_url, "partnerships", "resume", "--manufacturer", "nordwerk", "--partner", "berger"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert re.search(r"[1-9]\d* resumed", resumed.stdout), resumed.stdout
    unknown = portal(
        demo_db_url, "partnerships", "end", "--manufacturer", "nordwerk", "--partner", "nobody"
    )
    assert unknown.returncode != 0
    assert "nobody" in unknown.stderr
    unrelated = portal(
        demo_db_url, "partnerships", "end", "--manufacturer", "suedstern", "--partner", "berger"
    )
    assert unrelated.returncode != 0
    assert "suedstern" in unrelated.stderr
