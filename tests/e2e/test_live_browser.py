"""Live collaboration in real Chromium: the dealer's open case page shows the manufacturer's
shared note and claim without reloading; the inbox moves the case up; the supplier's open
page never shows what it may not see."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.e2e.test_ui_flows import (
    BRAKES,
    DEALER,
    MANUFACTURER,
    SUPPLIER,
    CspWatch,
    _new_page,
    open_brakes_case,
    sign_in,
)
from tests.support.servers import ServerThread

if TYPE_CHECKING:
    from flask import Flask
    from playwright.sync_api import Browser, BrowserContext

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]


def test_dealer_sees_note_and_claim_live(
    app: Flask,
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: ServerThread,
    csp: CspWatch,
) -> None:
    from playwright.sync_api import expect

    app.config["BASE_URL"] = live_server.url  # the browser's origin for the live connection
    shared = "Kunde ruft morgen früh an, bitte bereithalten"
    internal = "Nur für Nordwerk: Kulanzrahmen ausgeschöpft"

    dealer = _new_page(browser, contexts, csp)
    sign_in(dealer, live_server, DEALER)
    open_brakes_case(dealer, live_server)
    expect(dealer.locator("body[data-live=online]")).to_have_count(1)

    supplier = _new_page(browser, contexts, csp)
    sign_in(supplier, live_server, SUPPLIER)
    open_brakes_case(supplier, live_server)
    expect(supplier.locator("body[data-live=online]")).to_have_count(1)

    manufacturer = _new_page(browser, contexts, csp)
    sign_in(manufacturer, live_server, MANUFACTURER)
    manufacturer.goto(dealer.url.split("#")[0])
    manufacturer.fill("#entry-body", internal)
    manufacturer.get_by_label("Only my organisation (internal)").check()
    manufacturer.get_by_role("button", name="Add entry").click()
    manufacturer.fill("#entry-body", shared)
    manufacturer.get_by_label("Everyone who sees this case").check()
    manufacturer.get_by_role("button", name="Add entry").click()
    manufacturer.locator("#handling").get_by_role("button", name="Claim").click()
    expect(manufacturer.locator("#handling")).to_contain_text("You are handling this case.")

    # Without reloading: the dealer's page shows the shared note and who handles the case.
    expect(dealer.locator("#timeline-entries")).to_contain_text(shared)
    expect(dealer.locator("#case-handler")).to_contain_text("Lena Hoffmann")
    expect(dealer.locator("#handling")).to_contain_text("Lena Hoffmann is handling this case.")
    expect(dealer.locator("#timeline-entries")).not_to_contain_text(internal)
    expect(dealer.locator("#feed-list")).to_contain_text("is handling")
    expect(dealer.locator("#feed-unread")).not_to_have_text("0")

    expect(supplier.locator("#timeline-entries")).to_contain_text(shared)
    expect(supplier.locator("#case-handler")).to_contain_text("Lena Hoffmann")
    expect(supplier.locator("#timeline-entries")).not_to_contain_text(internal)
    assert BRAKES in dealer.title() or dealer.locator("#case-subject").inner_text() == BRAKES
