"""Telephony: caller numbers in every format, screen pops only on the named agent's screen and
only with customers the agent may see, call logging in one transaction, clear 4xx errors."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask_socketio import SocketIOTestClient

from portal.realtime import EXTENSION
from shared_records.normalize import InvalidValue, normalize_caller
from tests.auth.test_clients import as_client, token_for
from tests.support.api import Api, ApiUser
from tests.support.web import csrf_token, login

MUELLER = "Jürgen Müller"
MUELLER_MOBILE = "+491712345678"
BRAKES = "Bremsgeräusche an der Vorderachse"
EN = {"Accept-Language": "en"}

# (raw number as a telephone system or a person writes it, region, outside-line prefix, E.164)
NUMBERS = [
    ("0171 2345678", "DE", None, "+491712345678"),
    ("+49 171 2345678", "DE", None, "+491712345678"),
    ("0049 171 2345678", "DE", None, "+491712345678"),
    ("(0171) 234-5678", "DE", None, "+491712345678"),
    ("0171/2345678", "DE", None, "+491712345678"),
    ("491712345678", "DE", None, "+491712345678"),
    ("tel:+491712345678", "DE", None, "+491712345678"),
    ("00171 2345678", "DE", "0", "+491712345678"),
    ("0491712345678", "DE", "0", "+491712345678"),
    ("+49 171 2345678", "DE", "0", "+491712345678"),
    ("000491712345678", "DE", "0", "+491712345678"),
    ("030 12345678", "DE", None, "+493012345678"),
    ("0664 1234567", "AT", None, "+436641234567"),
    ("+43 1 5331234", "AT", None, "+4315331234"),
    ("436641234567", "AT", None, "+436641234567"),
    ("00664 1234567", "AT", "0", "+436641234567"),
    ("044 668 18 00", "CH", None, "+41446681800"),
    ("079 123 45 67", "CH", None, "+41791234567"),
    ("41446681800", "CH", None, "+41446681800"),
    ("0041 44 668 18 00", "DE", None, "+41446681800"),
    ("+1 (212) 555-0123", "DE", None, "+12125550123"),
    ("0012125550123", "DE", None, "+12125550123"),
    ("+44 20 7946 0958", "CH", None, "+442079460958"),
    ("+33 1 42 68 53 00", "AT", None, "+33142685300"),
]


@pytest.mark.parametrize(("raw", "region", "prefix", "expected"), NUMBERS)
def test_caller_numbers_normalise_to_e164(
    raw: str, region: str, prefix: str | None, expected: str
) -> None:
    assert normalize_caller(raw, region, prefix) == expected


@pytest.mark.parametrize("raw", ["", "anonymous", "0171 ABC", "+49", "123", "0" * 41, "++49171"])
def test_malformed_caller_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidValue):
        normalize_caller(raw, "DE", None)


# --- end to end --------------------------------------------------------------------------


def socket(app: Flask, token: str) -> SocketIOTestClient:
    return app.extensions[EXTENSION].test_client(app, auth={"token": token})


def received(sock: SocketIOTestClient, name: str) -> list[dict[str, Any]]:
    return [m["args"][0] for m in sock.get_received() if m["name"] == name]


def telephone(app: Flask, org_admin: str = "admin@nordwerk.example") -> ApiUser:
    return as_client(app, token_for(app, "cti", org_admin=org_admin))


def ring(
    system: ApiUser, number: str, agent: str = "agent@nordwerk.example", call_id: str = "c-1"
) -> Any:
    return system.post(
        "/cti/events",
        {"call_id": call_id, "event": "ringing", "from": number, "to": "+49301111", "agent": agent},
    )


def event(system: ApiUser, call_id: str, name: str, at: str, agent: str = "201") -> Any:
    body = {"call_id": call_id, "event": name, "from": "0171 2345678", "agent": agent, "at": at}
    return system.post("/cti/events", body)


def calls_count(api: Api) -> int:
    return int(api.query("SELECT count(*) FROM calls")[0][0])


@pytest.mark.parametrize("number", ["0171 2345678", "+49 171 2345678", "(0171) 234-5678"])
def test_ringing_pops_the_caller_on_the_named_agents_screen_only(
    app: Flask, api: Api, number: str
) -> None:
    agent = socket(app, api("agent@nordwerk.example").token)
    colleague = socket(app, api("admin@nordwerk.example").token)
    dealer = socket(app, api("sales@berger.example").token)
    other_chain = socket(app, api("agent@suedstern.example").token)
    answer = ring(telephone(app), number)
    assert answer.status == 200, answer.text
    mueller = api.customer_id(MUELLER)
    brakes = api.case_id(BRAKES)
    assert answer.body["number"] == MUELLER_MOBILE
    assert [m["customer_id"] for m in answer.body["matches"]] == [mueller]
    assert answer.body["matches"][0]["name"] == MUELLER
    assert brakes in answer.body["matches"][0]["open_case_ids"]
    pops = received(agent, "screen_pop")
    assert len(pops) == 1
    assert pops[0]["call_id"] == "c-1"
    assert pops[0]["number"] == MUELLER_MOBILE
    assert pops[0]["matches"] == answer.body["matches"]
    for other in (colleague, dealer, other_chain):
        assert received(other, "screen_pop") == []
        assert received(other, "call_update") == []


def test_extension_names_the_agent(app: Flask, api: Api) -> None:
    agent = socket(app, api("agent@nordwerk.example").token)
    answer = ring(telephone(app), "0171 2345678", agent="201")
    assert answer.status == 200, answer.text
    assert answer.body["agent_user_id"] == api.user_id("agent@nordwerk.example")
    assert len(received(agent, "screen_pop")) == 1


def test_a_number_the_agent_may_not_see_does_not_pop(app: Flask, api: Api) -> None:
    """Kaya's own customer: Nordwerk's agent gets an empty pop (quick-create), never the name."""
    kaya = api("service@kaya.example")
    created = kaya.post("/customers", {"name": "Privatkunde Kaya", "phones": ["0160 9988776"]})
    assert created.status == 201, created.text
    agent = socket(app, api("agent@nordwerk.example").token)
    answer = ring(telephone(app), "0160 9988776")
    assert answer.status == 200
    assert answer.body["matches"] == []
    pops = received(agent, "screen_pop")
    assert [p["matches"] for p in pops] == [[]]
    assert "Privatkunde" not in str(pops) + answer.text


def test_shared_case_without_contact_details_does_not_identify_the_caller(app: Flask) -> None:
    """The supplier sees Müller's brake case but not his contact details: his number does not
    identify him there; the dealer, shared with contact details, is told who calls."""
    import sqlalchemy as sa

    from partners.models import User
    from portal.db import get_session
    from shared_records import telephony

    with app.app_context():
        session = get_session()

        def user(email: str) -> User:
            return session.scalars(sa.select(User).where(User.email == email)).one()

        supplier = telephony.match_caller(session, user("quality@schulz.example"), MUELLER_MOBILE)
        assert supplier == []
        dealer = telephony.match_caller(session, user("sales@berger.example"), MUELLER_MOBILE)
        assert [m.name for m in dealer] == [MUELLER]


def test_a_second_ringing_of_a_call_moves_the_pop_to_the_new_agent(app: Flask, api: Api) -> None:
    """A ringing call id seen before (a transfer) is the same call, popped on the new agent's
    screen; the same call id from another number is refused."""
    system = telephone(app)
    before = calls_count(api)
    agent = socket(app, api("agent@nordwerk.example").token)
    colleague = socket(app, api("admin@nordwerk.example").token)
    first = ring(system, "0171 2345678", call_id="c-20")
    assert first.status == 200, first.text
    moved = ring(system, "+49 171 2345678", agent="admin@nordwerk.example", call_id="c-20")
    assert moved.status == 200, moved.text
    assert moved.body["id"] == first.body["id"]
    assert moved.body["agent_user_id"] == api.user_id("admin@nordwerk.example")
    assert moved.body["matches"] == first.body["matches"] != []
    assert [p["id"] for p in received(agent, "screen_pop")] == [first.body["id"]]
    assert [p["id"] for p in received(colleague, "screen_pop")] == [first.body["id"]]
    reused = ring(system, "030 12345678", call_id="c-20")
    assert reused.status == 409
    assert reused.error_code == "call_id_reused"
    assert calls_count(api) == before + 1


def test_bad_events_get_clear_errors_and_write_nothing(app: Flask, api: Api) -> None:
    system = telephone(app)
    before = calls_count(api)
    unknown_agent = ring(system, "0171 2345678", agent="nobody@nordwerk.example")
    assert unknown_agent.status == 422
    assert unknown_agent.error_code == "unknown_agent"
    unknown_extension = ring(system, "0171 2345678", agent="999")
    assert unknown_extension.error_code == "unknown_agent"
    # An agent of another organisation is unknown to this telephone system.
    foreign = ring(system, "0171 2345678", agent="sales@berger.example")
    assert foreign.error_code == "unknown_agent"
    malformed = ring(system, "anonymous")
    assert malformed.status == 422
    assert malformed.error_code == "invalid_number"
    assert "from" in malformed.body["error"]["fields"]
    missing = system.post("/cti/events", {"call_id": "x", "event": "ringing", "agent": "201"})
    assert missing.status == 422
    wrong_event = system.post(
        "/cti/events", {"call_id": "x", "event": "hangup", "from": "0171 2345678", "agent": "201"}
    )
    assert wrong_event.status == 422
    no_cti = as_client(app, token_for(app, "cases:read", org_admin="admin@nordwerk.example"))
    refused = ring(no_cti, "0171 2345678")
    assert refused.status == 403
    assert refused.error_code == "insufficient_scope"
    person = ring(api("admin@nordwerk.example"), "0171 2345678")
    assert person.status == 403
    assert calls_count(api) == before


def test_answered_ended_and_logged_on_a_case_the_dealer_sees_live(app: Flask, api: Api) -> None:
    system = telephone(app)
    agent_user = api("agent@nordwerk.example")
    agent = socket(app, agent_user.token)
    dealer = socket(app, api("sales@berger.example").token)
    rung = event(system, "c-7", "ringing", "2026-11-22T10:00:00+00:00")
    assert rung.status == 200
    assert event(system, "c-7", "answered", "2026-11-22T10:00:05+00:00").status == 200
    ended = event(system, "c-7", "ended", "2026-11-22T10:03:17+00:00")
    assert ended.status == 200
    assert ended.body["state"] == "ended"
    assert ended.body["duration_seconds"] == 192
    updates = received(agent, "call_update")
    assert [u["state"] for u in updates] == ["answered", "ended"]
    dealer.get_received()

    brakes = api.case_id(BRAKES)
    logged = agent_user.post(
        f"/calls/{rung.body['id']}/log", {"case_id": brakes, "note": "Rückruf vereinbart"}
    )
    assert logged.status == 201, logged.text
    assert logged.body["channel"] == "phone"
    assert logged.body["kind"] == "interaction"
    assert logged.body["duration_seconds"] == 192
    assert "3:12" in logged.body["body"]
    live = received(dealer, "activity")
    assert [a["type"] for a in live] == ["call.logged"]
    assert live[0]["case_id"] == brakes
    timeline = api("sales@berger.example").get(f"/cases/{brakes}/timeline")
    assert any(e["id"] == logged.body["id"] for e in timeline.body["items"])
    again = agent_user.post(f"/calls/{rung.body['id']}/log", {"case_id": brakes})
    assert again.status == 409
    assert again.error_code == "already_logged"
    # After the end, the call cannot ring or be answered again.
    late = event(system, "c-7", "answered", "2026-11-22T10:04:00+00:00")
    assert late.status == 409


def test_log_on_a_new_case_is_one_transaction(app: Flask, api: Api) -> None:
    system = telephone(app)
    agent_user = api("agent@nordwerk.example")
    rung = ring(system, "0171 2345678", call_id="c-9")
    call = rung.body["id"]
    mueller = api.customer_id(MUELLER)
    cases_before = api.query("SELECT count(*) FROM cases")[0][0]
    # Neither or both targets: refused, nothing written.
    assert agent_user.post(f"/calls/{call}/log", {"note": "x"}).status == 422
    both = {"case_id": 1, "new_case": {"customer_id": mueller, "subject": "Anruf"}}
    assert agent_user.post(f"/calls/{call}/log", both).status == 422
    # A customer the agent may not see: refused, and no case is left behind.
    hidden = api("service@kaya.example").post("/customers", {"name": "Nur Kaya"})
    bad = agent_user.post(
        f"/calls/{call}/log", {"new_case": {"customer_id": hidden.body["id"], "subject": "Anruf"}}
    )
    assert bad.status == 422
    assert api.query("SELECT count(*) FROM cases")[0][0] == cases_before
    good = agent_user.post(
        f"/calls/{call}/log",
        {"new_case": {"customer_id": mueller, "subject": "Anruf wegen Termin"}},
    )
    assert good.status == 201, good.text
    assert api.query("SELECT count(*) FROM cases")[0][0] == cases_before + 1
    case = agent_user.get(f"/cases/{good.body['case_id']}")
    assert case.body["subject"] == "Anruf wegen Termin"
    assert case.body["customer_id"] == mueller


def test_calls_are_private_to_their_agent(app: Flask, api: Api) -> None:
    rung = ring(telephone(app), "0171 2345678", call_id="c-11")
    call = rung.body["id"]
    assert api("agent@nordwerk.example").get(f"/calls/{call}").status == 200
    assert api("admin@nordwerk.example").get(f"/calls/{call}").status == 404
    assert api("sales@berger.example").get(f"/calls/{call}").status == 404
    logged = api("admin@nordwerk.example").post(f"/calls/{call}/log", {"case_id": 1})
    assert logged.status == 404
    mine = api("agent@nordwerk.example").get("/calls")
    assert [c["id"] for c in mine.body["items"]] == [call]
    assert api("admin@nordwerk.example").get("/calls").body["items"] == []


def test_several_matches_and_the_panel(app: Flask, api: Api) -> None:
    """A family sharing a landline: the pop lists both, the panel offers a chooser."""
    nordwerk = api("agent@nordwerk.example")
    for name in ("Anna Familie", "Bernd Familie"):
        assert nordwerk.post("/customers", {"name": name, "phones": ["030 7654321"]}).status == 201
    rung = ring(telephone(app), "+49 30 7654321", call_id="c-12")
    assert sorted(m["name"] for m in rung.body["matches"]) == ["Anna Familie", "Bernd Familie"]
    browser = app.test_client()
    login(browser, "agent@nordwerk.example")
    panel = browser.get(f"/calls/{rung.body['id']}/panel", headers=EN)
    assert panel.status_code == 200
    html = panel.get_data(as_text=True)
    assert 'id="caller-chooser"' in html
    assert "Anna Familie" in html
    assert "Bernd Familie" in html
    chosen = browser.get(
        f"/calls/{rung.body['id']}/panel?customer={rung.body['matches'][0]['customer_id']}",
        headers=EN,
    )
    assert 'id="caller-customer"' in chosen.get_data(as_text=True)
    other = app.test_client()
    login(other, "admin@nordwerk.example")
    assert other.get(f"/calls/{rung.body['id']}/panel").status_code == 404


def test_panel_shows_history_and_logs_in_one_click(app: Flask, api: Api) -> None:
    system = telephone(app)
    rung = event(system, "c-13", "ringing", "2026-11-22T09:00:00+00:00")
    event(system, "c-13", "answered", "2026-11-22T09:00:02+00:00")
    event(system, "c-13", "ended", "2026-11-22T09:01:02+00:00")
    browser = app.test_client()
    login(browser, "agent@nordwerk.example")
    html = browser.get(f"/calls/{rung.body['id']}/panel", headers=EN).get_data(as_text=True)
    assert MUELLER in html
    assert 'id="caller-cases"' in html
    assert 'id="caller-history"' in html
    assert 'href="tel:+491712345678"' in html
    brakes = api.case_id(BRAKES)
    response = browser.post(
        f"/calls/{rung.body['id']}/log",
        data={"case_id": str(brakes), "csrf_token": csrf_token(browser, "/calls")},
        headers=EN,
    )
    assert response.status_code == 302
    timeline = api("agent@nordwerk.example").get(f"/cases/{brakes}/timeline").body["items"]
    assert timeline[-1]["channel"] == "phone"
    assert timeline[-1]["duration_seconds"] == 60
    page = browser.get("/calls", headers=EN).get_data(as_text=True)
    assert "Logged on" in page


def test_unknown_caller_quick_create(app: Flask, api: Api) -> None:
    rung = ring(telephone(app), "0151 11223344", call_id="c-14")
    assert rung.body["matches"] == []
    browser = app.test_client()
    login(browser, "agent@nordwerk.example")
    html = browser.get(f"/calls/{rung.body['id']}/panel", headers=EN).get_data(as_text=True)
    assert 'id="quick-create"' in html
    assert 'value="+4915111223344"' in html
    created = browser.post(
        f"/calls/{rung.body['id']}/customer",
        data={"name": "Neue Anruferin", "csrf_token": csrf_token(browser, "/calls")},
    )
    assert created.status_code == 302
    again = api("agent@nordwerk.example").get(f"/calls/{rung.body['id']}")
    assert [m["name"] for m in again.body["matches"]] == ["Neue Anruferin"]
    assert ring(telephone(app), "0151 11223344", call_id="c-15").body["matches"][0]["name"] == (
        "Neue Anruferin"
    )


def test_admin_sets_outside_line_prefix_and_extensions(app: Flask, api: Api) -> None:
    browser = app.test_client()
    login(browser, "admin@nordwerk.example")
    agent_id = api.user_id("agent@nordwerk.example")
    admin_id = api.user_id("admin@nordwerk.example")
    token = csrf_token(browser, "/admin")
    # Invalid values: nothing saved.
    bad = browser.post(
        "/admin/telephony",
        data={
            "csrf_token": token,
            "phone_region": "XX",
            "outside_line_prefix": "0",
            f"ext-{agent_id}": "77",
        },
        headers=EN,
    )
    assert bad.status_code == 302
    assert api.query("SELECT outside_line_prefix FROM organizations WHERE slug='nordwerk'") == [
        (None,)
    ]
    # Swapping two extensions and setting the prefix in one go.
    saved = browser.post(
        "/admin/telephony",
        data={
            "csrf_token": token,
            "phone_region": "DE",
            "outside_line_prefix": "0",
            f"ext-{agent_id}": "200",
            f"ext-{admin_id}": "201",
        },
    )
    assert saved.status_code == 302
    agent = socket(app, api("agent@nordwerk.example").token)
    answer = ring(telephone(app), "00171 2345678", agent="200", call_id="c-16")
    assert answer.status == 200, answer.text
    assert answer.body["number"] == MUELLER_MOBILE
    assert [m["name"] for m in answer.body["matches"]] == [MUELLER]
    assert len(received(agent, "screen_pop")) == 1
    # Only admins change telephone settings.
    agent_browser = app.test_client()
    login(agent_browser, "agent@nordwerk.example")
    refused = agent_browser.post(
        "/admin/telephony",
        data={"csrf_token": csrf_token(agent_browser, "/"), "phone_region": "AT"},
    )
    assert refused.status_code == 403
