"""The identity audit log: events of API clients and their tokens are recorded, and an
organisation's admins see their organisation's events (and no other's) at /admin/audit."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests.auth.test_clients import make_client, request_token, revoke
from tests.support.api import Api
from tests.support.web import login

ROW = re.compile(r'<tr data-event-id="(\d+)">')


def _signed_in(app: Flask, email: str) -> FlaskClient:
    browser = app.test_client()
    response = login(browser, email)
    assert response.status_code in (302, 303), response.get_data(as_text=True)
    return browser


def _rows(html: str) -> list[int]:
    return [int(i) for i in ROW.findall(html)]


def test_client_lifecycle_is_recorded(app: Flask, api: Api) -> None:
    client_id, secret = make_client(app, "cases:read")
    http = app.test_client()
    assert request_token(http, client_id, secret).status_code == 200
    assert request_token(http, client_id, "wrong").status_code == 401
    revoke(app, client_id)
    events = api.query(
        "SELECT kind, success, organization_id, user_id, actor_user_id, method, detail "
        "FROM auth_events ORDER BY id"
    )
    berger = api.org_id("berger")
    admin = api.user_id("admin@berger.example")
    (service_user,) = api.query(
        "SELECT user_id FROM api_clients WHERE client_id = :c", c=client_id
    )[0]
    assert [(e[0], bool(e[1])) for e in events] == [
        ("client_created", True),
        ("oauth_token", True),
        ("oauth_token", False),
        ("client_revoked", True),
    ]
    for _kind, _ok, org_id, user_id, _actor, _method, detail in events:
        assert org_id == berger
        assert user_id == service_user
        assert client_id in detail
    assert events[0][4] == admin
    assert events[3][4] == admin
    assert events[1][5] == events[2][5] == "client_credentials"
    assert "cases:read" in events[0][6]


def test_admin_sees_only_the_own_organisations_events(app: Flask, api: Api) -> None:
    berger_id, berger_secret = make_client(app, "cases:read", name="Berger DMS")
    nordwerk_id, nordwerk_secret = make_client(
        app, "cases:read", org_admin="admin@nordwerk.example", name="Nordwerk CTI"
    )
    http = app.test_client()
    for client_id, secret in ((berger_id, berger_secret), (nordwerk_id, nordwerk_secret)):
        assert request_token(http, client_id, secret).status_code == 200
        assert request_token(http, client_id, secret + "x").status_code == 401

    browser = _signed_in(app, "admin@berger.example")
    page = browser.get("/admin/audit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    berger = api.org_id("berger")
    own = {
        row[0]
        for row in api.query("SELECT id FROM auth_events WHERE organization_id = :o", o=berger)
    }
    shown = _rows(html)
    assert own
    assert set(shown) == own
    assert berger_id in html
    assert "Berger DMS" in html
    assert nordwerk_id not in html
    assert "Nordwerk CTI" not in html
    # Newest first.
    assert shown == sorted(shown, reverse=True)

    other = _signed_in(app, "admin@nordwerk.example").get("/admin/audit").get_data(as_text=True)
    assert nordwerk_id in other
    assert berger_id not in other


def test_audit_filter_by_kind(app: Flask, api: Api) -> None:
    client_id, secret = make_client(app, "cases:read")
    request_token(app.test_client(), client_id, secret)
    browser = _signed_in(app, "admin@berger.example")
    html = browser.get("/admin/audit?kind=client_created").get_data(as_text=True)
    created = api.query("SELECT id FROM auth_events WHERE kind = 'client_created'")
    assert _rows(html) == [created[0][0]]
    assert '<option value="oauth_token"' in html  # offered as a filter
    nothing = browser.get("/admin/audit?kind=no_such_kind")
    assert nothing.status_code == 200
    assert _rows(nothing.get_data(as_text=True)) == []


def test_audit_pages_with_an_older_link(app: Flask, api: Api) -> None:
    from auth import audit
    from partners.models import User
    from portal.db import get_session

    nordwerk = api.org_id("nordwerk")
    with app.app_context():
        session = get_session()
        admin = session.scalars(sa.select(User).where(User.email == "admin@berger.example")).one()
        for n in range(60):
            audit.record(session, "test_event", user=admin, detail=f"event {n}")
        audit.record(
            session,
            "test_event",
            organization_id=nordwerk,
            detail="other organisation",
        )
        session.commit()

    browser = _signed_in(app, "admin@berger.example")
    first = browser.get("/admin/audit?kind=test_event").get_data(as_text=True)
    first_rows = _rows(first)
    assert len(first_rows) == 50
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older
    url = older.group(1).replace("&amp;", "&")
    assert "kind=test_event" in url
    second = browser.get(url)
    assert second.status_code == 200
    second_html = second.get_data(as_text=True)
    second_rows = _rows(second_html)
    assert len(second_rows) == 10
    assert 'rel="next"' not in second_html
    assert not set(first_rows) & set(second_rows)
    assert first_rows + second_rows == sorted(first_rows + second_rows, reverse=True)
    assert "other organisation" not in first + second_html
    assert "event 59" in first
    assert ">event 0</td>" in second_html

    assert browser.get("/admin/audit?before=not-a-cursor").status_code == 400


@pytest.mark.parametrize("email", ["sales@berger.example", "viewer@nordwerk.example"])
def test_audit_page_is_for_admins_only(app: Flask, email: str) -> None:
    make_client(app, "cases:read")
    browser = _signed_in(app, email)
    page = browser.get("/admin/audit")
    assert page.status_code == 403
    assert "client_created" not in page.get_data(as_text=True)
    assert app.test_client().get("/admin/audit").status_code == 302
