"""Live activities over Socket.IO: who may connect, who receives what, and that ended
credentials lose their connection at once."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask_socketio import SocketIOTestClient

from portal.realtime import EXTENSION
from tests.support.api import Api
from tests.support.web import login

BRAKES = "Bremsgeräusche an der Vorderachse"
ORIGIN = "http://127.0.0.1:5000"  # the test apps' BASE_URL


def socket(
    app: Flask, *, token: str | None = None, client: Any = None, origin: str | None = ORIGIN
) -> SocketIOTestClient:
    headers = {"Origin": origin} if origin else {}
    return app.extensions[EXTENSION].test_client(
        app,
        flask_test_client=client,
        auth={"token": token} if token else None,
        headers=headers,
    )


def activities(sock: SocketIOTestClient) -> list[dict[str, Any]]:
    return [m["args"][0] for m in sock.get_received() if m["name"] == "activity"]


def test_connection_needs_credentials_and_same_origin(app: Flask, api: Api) -> None:
    """No cookie or token: refused. A cookie from a foreign origin: refused. Same origin or a
    bearer token: accepted."""
    assert not socket(app).is_connected()
    browser = app.test_client()
    login(browser, "sales@berger.example")
    assert not socket(app, client=browser, origin="https://evil.example").is_connected()
    assert not socket(app, client=browser, origin=None).is_connected()
    assert socket(app, client=browser).is_connected()
    assert socket(app, token=api("sales@berger.example").token, origin=None).is_connected()
    assert not socket(app, token="wk_forged", origin=None).is_connected()


def test_activities_follow_the_policy(app: Flask, api: Api) -> None:
    """The dealer gets shared activity; the supplier never gets an internal note or an entry
    for manufacturer and dealer only; another chain gets nothing."""
    dealer = socket(app, token=api("sales@berger.example").token)
    supplier = socket(app, token=api("quality@schulz.example").token)
    other_chain = socket(app, token=api("agent@suedstern.example").token)
    case_id = api.case_id(BRAKES)
    nordwerk = api("agent@nordwerk.example")
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "intern", "audience": "internal"})
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "H+H", "audience": [api.org_id("berger")]})
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "alle", "audience": "shared"})
    nordwerk.post(f"/cases/{case_id}/claim")
    got_dealer = activities(dealer)
    got_supplier = activities(supplier)
    assert [a["type"] for a in got_dealer] == ["timeline.added", "timeline.added", "case.claimed"]
    assert [a["type"] for a in got_supplier] == ["timeline.added", "case.claimed"]
    assert activities(other_chain) == []
    claim = got_supplier[-1]
    assert set(claim) >= {
        "id",
        "type",
        "case_id",
        "organization_id",
        "actor_user_id",
        "at",
        "summary",
    }
    assert claim["data"]["user_name"] == "Lena Hoffmann"
    replay = api("quality@schulz.example").get(f"/feed?after={got_supplier[0]['id'] - 1}")
    assert [a["id"] for a in replay.body["items"]] == [a["id"] for a in got_supplier]


def test_nothing_arrives_after_unsharing(app: Flask, api: Api) -> None:
    supplier = socket(app, token=api("quality@schulz.example").token)
    case_id = api.case_id(BRAKES)
    nordwerk = api("agent@nordwerk.example")
    nordwerk.delete(f"/cases/{case_id}/shares/{api.org_id('schulz')}")
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "danach", "audience": "shared"})
    nordwerk.post(f"/cases/{case_id}/claim")
    assert activities(supplier) == []


def test_deactivation_signout_and_revocation_disconnect(app: Flask, api: Api) -> None:
    """A deactivated user, a signed-out session and a revoked token lose their sockets."""
    browser = app.test_client()
    login(browser, "sales@berger.example")
    by_cookie = socket(app, client=browser)
    by_token = socket(app, token=api("sales@berger.example").token)
    assert by_cookie.is_connected()
    assert by_token.is_connected()
    from tests.support.web import csrf_token

    browser.post("/logout", data={"csrf_token": csrf_token(browser, "/profile")})
    assert not by_cookie.is_connected()
    assert by_token.is_connected()

    nordwerk = api("agent@nordwerk.example")
    created = nordwerk.post("/me/tokens", {"name": "socket"}).body
    token_socket = socket(app, token=created["token"])
    assert token_socket.is_connected()
    nordwerk.delete(f"/me/tokens/{created['id']}")
    assert not token_socket.is_connected()

    admin = app.test_client()
    login(admin, "admin@berger.example")
    user_id = api.user_id("sales@berger.example")
    admin.post(
        f"/admin/users/{user_id}/active",
        data={"active": "0", "csrf_token": csrf_token(admin, "/admin")},
    )
    assert not by_token.is_connected()


@pytest.mark.parametrize("scope", ["cases:read", "customers:read"])
def test_api_clients_need_cases_read(app: Flask, api: Api, scope: str) -> None:
    import sqlalchemy as sa

    from auth.clients import create_client_for
    from partners.models import Organization
    from portal.db import get_session

    with app.app_context():
        session = get_session()
        org = session.scalars(sa.select(Organization).where(Organization.slug == "berger")).one()
        client, secret = create_client_for(session, org, "Telefonanlage", [scope])
        client_id = client.client_id
    http = app.test_client()
    token = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    ).get_json()["access_token"]
    assert socket(app, token=token, origin=None).is_connected() == (scope == "cases:read")


def test_reconnect_replays_exactly_the_missed_events(app: Flask, api: Api) -> None:
    """A client that disconnects and comes back with its last id gets exactly the events it
    missed, in order, then live ones again: no gaps, no duplicates."""
    dealer_token = api("sales@berger.example").token
    nordwerk = api("agent@nordwerk.example")
    case_id = api.case_id(BRAKES)
    sock = socket(app, token=dealer_token)
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "eins", "audience": "shared"})
    seen = activities(sock)
    assert len(seen) == 1
    last_id = seen[-1]["id"]
    sock.disconnect()
    for body in ("zwei", "drei"):
        nordwerk.post(f"/cases/{case_id}/timeline", {"body": body, "audience": "shared"})
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "intern", "audience": "internal"})
    back = socket(app, token=dealer_token)
    missed = api("sales@berger.example").get(f"/feed?after={last_id}").body["items"]
    assert [a["type"] for a in missed] == ["timeline.added", "timeline.added"]
    assert [a["id"] for a in missed] == sorted(a["id"] for a in missed)
    assert missed[0]["id"] > last_id
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "vier", "audience": "shared"})
    live = activities(back)
    assert len(live) == 1
    assert live[0]["id"] > missed[-1]["id"]


def _presence(sock: SocketIOTestClient) -> list[list[str]]:
    return [
        sorted(v["name"] for v in m["args"][0]["viewers"])
        for m in sock.get_received()
        if m["name"] == "presence"
    ]


def test_presence_follows_the_policy(app: Flask, api: Api) -> None:
    """Who is viewing a case is told only to those who may see the case; a partner does not
    learn which other partners have it; an outsider cannot even join."""
    case_id = api.case_id(BRAKES)
    owner = socket(app, token=api("agent@nordwerk.example").token)
    dealer = socket(app, token=api("sales@berger.example").token)
    supplier = socket(app, token=api("quality@schulz.example").token)
    outsider = socket(app, token=api("agent@suedstern.example").token)
    assert outsider.emit("view_case", {"case_id": case_id}, callback=True) == {
        "ok": False,
        "error": "not_found",
    }
    for sock in (owner, dealer, supplier):
        assert sock.emit("view_case", {"case_id": case_id}, callback=True) == {"ok": True}
    assert _presence(owner)[-1] == ["Anna Berger", "Jörg Schulz", "Lena Hoffmann"]
    assert _presence(dealer)[-1] == ["Anna Berger", "Lena Hoffmann"]
    assert _presence(supplier)[-1] == ["Jörg Schulz", "Lena Hoffmann"]
    assert _presence(outsider) == []
    api("agent@nordwerk.example").delete(f"/cases/{case_id}/shares/{api.org_id('schulz')}")
    supplier.get_received()
    dealer.disconnect()
    assert _presence(owner)[-1] == ["Lena Hoffmann"]
    assert _presence(supplier) == [], "the former partner left the case room at once"
    assert outsider.emit("view_case", {"case_id": "x"}, callback=True)["ok"] is False


def test_presence_tells_who_is_editing(app: Flask, api: Api) -> None:
    """Someone about to edit a case sees that another person is editing it too."""
    case_id = api.case_id(BRAKES)
    owner = socket(app, token=api("agent@nordwerk.example").token)
    dealer = socket(app, token=api("sales@berger.example").token)
    owner.emit("view_case", {"case_id": case_id, "editing": True}, callback=True)
    dealer.emit("view_case", {"case_id": case_id}, callback=True)
    latest = [m["args"][0] for m in dealer.get_received() if m["name"] == "presence"][-1]
    editing = {v["name"]: v["editing"] for v in latest["viewers"]}
    assert editing == {"Lena Hoffmann": True, "Anna Berger": False}


def test_recent_feed_is_newest_first_and_filtered(api: Api) -> None:
    case_id = api.case_id(BRAKES)
    nordwerk = api("agent@nordwerk.example")
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "a", "audience": "shared"})
    nordwerk.post(f"/cases/{case_id}/timeline", {"body": "b", "audience": "internal"})
    owner = nordwerk.get("/feed/recent?limit=5").body["items"]
    supplier = api("quality@schulz.example").get("/feed/recent?limit=5").body["items"]
    assert [a["id"] for a in owner] == sorted((a["id"] for a in owner), reverse=True)
    assert owner[0]["id"] > supplier[0]["id"], "the internal note is not in the supplier's feed"
    assert api("quality@schulz.example").get("/feed/recent?limit=0").status == 400
