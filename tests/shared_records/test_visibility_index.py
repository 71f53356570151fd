"""The materialised visibility rule (`case_visibility`, kept by triggers) always equals the
rule computed from the base tables, whatever writes happened and whoever wrote them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from partners.models import Organization
from portal.db import get_session
from shared_records import policy
from shared_records.models import Case, CaseShare, Customer
from tests.support.api import Api

BRAKES = "Bremsgeräusche an der Vorderachse"


def _compare(app: Flask) -> None:
    with app.app_context():
        session = get_session()
        for org_id in session.scalars(sa.select(Organization.id)):
            fast = set(session.scalars(sa.select(Case.id).where(policy.case_visible_to(org_id))))
            slow = set(
                session.scalars(sa.select(Case.id).where(policy.case_visible_to_reference(org_id)))
            )
            assert fast == slow, org_id
            details = set(
                session.scalars(
                    sa.select(Customer.id).where(policy.customer_details_visible_to(org_id))
                )
            )
            details_ref = set(
                session.scalars(
                    sa.select(Customer.id).where(
                        policy.customer_details_visible_to_reference(org_id)
                    )
                )
            )
            assert details == details_ref, org_id
        # Every row carries its case's current customer and last activity.
        stale = session.execute(
            sa.text(
                "SELECT count(*) FROM case_visibility v JOIN cases c ON c.id = v.case_id "
                "WHERE v.customer_id <> c.customer_id OR v.last_activity_at <> c.last_activity_at"
            )
        ).scalar_one()
        assert stale == 0


def test_index_follows_every_kind_of_write(app: Flask, api: Api) -> None:
    _compare(app)
    nordwerk = api("agent@nordwerk.example")
    brakes = api.case_id(BRAKES)
    kaya, berger = api.org_id("kaya"), api.org_id("berger")
    created = nordwerk.post(
        "/cases", {"customer_id": api.customer_id("Jürgen Müller"), "subject": "Neu"}
    )
    assert created.status == 201
    new = created.body["id"]
    steps: list[tuple[str, Any]] = [
        ("POST", (f"/cases/{new}/shares", {"organization_id": kaya, "access": "read"})),
        (
            "POST",
            (
                f"/cases/{new}/shares",
                {"organization_id": kaya, "access": "edit", "include_contact_details": True},
            ),
        ),
        (
            "POST",
            (f"/cases/{brakes}/timeline", {"body": "bewegt die Aktivität", "audience": "shared"}),
        ),
        ("DELETE", f"/cases/{brakes}/shares/{berger}"),
        (
            "POST",
            (f"/cases/{new}/handover", {"organization_id": kaya, "message": "bitte übernehmen"}),
        ),
    ]
    for method, args in steps:
        answer = nordwerk.delete(args) if method == "DELETE" else nordwerk.post(*args)
        assert answer.status < 300, answer.text
        _compare(app)


def test_index_follows_writes_around_the_services(app: Flask, api: Api) -> None:
    """Plain SQL (a bulk correction, a restore) is covered too: the triggers live in the
    database, not in the application."""
    brakes = api.case_id(BRAKES)
    kaya = api.org_id("kaya")
    with app.app_context():
        session = get_session()
        session.execute(
            sa.update(Case).where(Case.id == brakes).values(handling_organization_id=kaya)
        )
        session.execute(sa.delete(CaseShare).where(CaseShare.case_id == brakes))
        other = session.scalars(
            sa.select(Customer.id).where(Customer.name == "Sabine Schäfer")
        ).one()
        session.execute(sa.update(Case).where(Case.id == brakes).values(customer_id=other))
        session.commit()
    _compare(app)
    assert api("service@kaya.example").get(f"/cases/{brakes}").status == 200
    assert api("sales@berger.example").get(f"/cases/{brakes}").status == 404
