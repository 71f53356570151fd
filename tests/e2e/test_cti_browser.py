"""The interaction center in real Chromium: a simulated call rings, the agent's page pops the
caller's history, the agent logs the call in one click when it ends, and the dealer's open
case page shows the logged call without reloading."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.test_ui_flows import (
    DEALER,
    MANUFACTURER,
    CspWatch,
    _new_page,
    open_brakes_case,
    sign_in,
)
from tests.shared_records.test_cti import MUELLER, event, telephone
from tests.support.servers import ServerThread

if TYPE_CHECKING:
    from flask import Flask
    from playwright.sync_api import Browser, BrowserContext

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]


def test_call_pops_on_the_agents_screen_and_the_logged_call_reaches_the_dealer(
    app: Flask,
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: ServerThread,
    csp: CspWatch,
) -> None:
    from playwright.sync_api import expect

    app.config["BASE_URL"] = live_server.url  # the browser's origin for the live connection

    dealer = _new_page(browser, contexts, csp)
    sign_in(dealer, live_server, DEALER)
    open_brakes_case(dealer, live_server)
    expect(dealer.locator("body[data-live=online]")).to_have_count(1)

    agent = _new_page(browser, contexts, csp)
    sign_in(agent, live_server, MANUFACTURER)
    agent.goto(live_server.url + "/")
    expect(agent.locator("body[data-live=online]")).to_have_count(1)
    colleague = _new_page(browser, contexts, csp)
    sign_in(colleague, live_server, "admin@nordwerk.example")
    colleague.goto(live_server.url + "/")
    expect(colleague.locator("body[data-live=online]")).to_have_count(1)

    system = telephone(app)
    rung = event(system, "e2e-1", "ringing", "2026-11-22T10:00:00+00:00")
    assert rung.status == 200, rung.text

    pop = agent.locator("#screen-pop")
    expect(pop).to_be_visible()
    expect(pop.locator("#screen-pop-title")).to_contain_text("Incoming call")
    expect(pop.locator("#caller-customer")).to_contain_text(MUELLER)
    expect(pop.locator("#caller-cases")).to_contain_text("Bremsgeräusche")
    expect(pop.locator("#caller-history li").first).to_be_visible()
    expect(pop.locator("a[href='tel:+491712345678']")).to_be_visible()

    event(system, "e2e-1", "answered", "2026-11-22T10:00:04+00:00")
    expect(pop.locator("#screen-pop-title")).to_contain_text("Call in progress")
    event(system, "e2e-1", "ended", "2026-11-22T10:02:09+00:00")
    expect(pop.locator("#call-duration")).to_contain_text("2:05")

    pop.locator("#caller-cases li", has_text="Bremsgeräusche").locator("[data-log-call]").click()
    expect(agent.locator(".alert-success")).to_contain_text("Call logged on")

    # The dealer's case page shows the logged call without reloading.
    expect(dealer.locator("#timeline-entries")).to_contain_text("Phone call with")
    expect(dealer.locator("#timeline-entries")).to_contain_text("2:05")
    # Nobody else in the agent's organisation got the pop.
    expect(colleague.locator("#screen-pop")).to_be_hidden()
    assert csp.violations == []
