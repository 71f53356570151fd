"""@mentions: a mentioned person who may see the entry is notified (live and in the API); a
person who may not see it is never notified, so a mention leaks nothing."""

from __future__ import annotations

from flask import Flask

from portal.realtime import EXTENSION
from tests.support.api import Api

BRAKES = "Bremsgeräusche an der Vorderachse"


def test_mention_notifies_who_may_see_the_entry(app: Flask, api: Api) -> None:
    case_id = api.case_id(BRAKES)
    dealer_socket = app.extensions[EXTENSION].test_client(
        app, auth={"token": api("sales@berger.example").token}
    )
    nordwerk = api("agent@nordwerk.example")
    answer = nordwerk.post(
        f"/cases/{case_id}/timeline",
        {
            "body": "@Anna Berger bitte Termin bestätigen, @quality auch, @agent@suedstern.example",
            "audience": [api.org_id("berger")],
        },
    )
    assert answer.status == 201
    dealer = api("sales@berger.example").get("/me/notifications").body
    assert dealer["unread"] == 1
    assert dealer["items"][0]["case_id"] == case_id
    assert "Lena Hoffmann mentioned you" in dealer["items"][0]["summary"]
    live = [m["args"][0] for m in dealer_socket.get_received() if m["name"] == "notification"]
    assert len(live) == 1
    assert live[0]["unread"] == 1
    # Schulz is named too but the entry is for Nordwerk and Berger only; Südstern never sees
    # the case at all.
    assert api("quality@schulz.example").get("/me/notifications").body["unread"] == 0
    assert api("agent@suedstern.example").get("/me/notifications").body["items"] == []
    assert api("sales@berger.example").post("/me/notifications/read").status == 204
    assert api("sales@berger.example").get("/me/notifications").body["unread"] == 0


def test_mentions_by_email_handle_in_shared_entries(api: Api) -> None:
    case_id = api.case_id(BRAKES)
    api("sales@berger.example").post(
        f"/cases/{case_id}/timeline", {"body": "Frage an @quality zur Charge", "audience": "shared"}
    )
    supplier = api("quality@schulz.example").get("/me/notifications").body
    assert supplier["unread"] == 1
    api("agent@nordwerk.example").delete(f"/cases/{case_id}/shares/{api.org_id('schulz')}")
    after = api("quality@schulz.example").get("/me/notifications").body
    assert after["items"] == [], "notifications about a case no longer visible disappear"
    assert after["unread"] == 0
