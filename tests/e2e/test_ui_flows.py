"""The web UI in real Chromium: sign-in, inbox tabs, timeline audiences across organisations,
claims, the language choice and the phone layout, with the CSP in force.

Browser tests run on the SQLite backend only (the `backend` fixture is parametrized here
directly, so no PostgreSQL variant is generated); tests/test_views.py covers both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.servers import ServerThread

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]

BRAKES = "Bremsgeräusche an der Vorderachse"
DEALER = "sales@berger.example"
SUPPLIER = "quality@schulz.example"
MANUFACTURER = "agent@nordwerk.example"


class CspWatch:
    """Collects console messages about Content-Security-Policy violations of every page."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    def attach(self, page: Page) -> Page:
        page.on("console", self._console)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)


@pytest.fixture
def csp() -> Iterator[CspWatch]:
    watch = CspWatch()
    yield watch
    assert watch.violations == [], "the page broke the Content-Security-Policy"


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Extra browser contexts (one per further user), closed after the test."""
    made: list[BrowserContext] = []
    yield made
    for context in made:
        context.close()


def _new_page(
    browser: Browser, contexts: list[BrowserContext], csp: CspWatch, **options: object
) -> Page:
    context = browser.new_context(locale="en-US", **options)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    contexts.append(context)
    return csp.attach(context.new_page())


def sign_in(page: Page, server: ServerThread, email: str, password: str = "demo") -> None:
    """The two-step sign-in: the email address first, then the password."""
    page.goto(server.url + "/login")
    page.fill("#email", email)
    page.locator("#continue").click()
    page.fill("#password", password)
    page.locator("form button[type=submit]").click()


def open_brakes_case(page: Page, server: ServerThread) -> None:
    """From the inbox tab "Shared with us" to the manufacturer's brake case."""
    from playwright.sync_api import expect

    page.goto(server.url + "/")
    page.locator(".inbox-tabs a[data-scope=shared]").click()
    page.get_by_role("link", name=BRAKES).click()
    expect(page.locator("#case-subject")).to_have_text(BRAKES)


def test_failed_sign_in_shows_the_generic_message(
    page: Page, live_server: ServerThread, csp: CspWatch
) -> None:
    """A wrong password gets the same message as an unknown account, and no session."""
    from playwright.sync_api import expect

    csp.attach(page)
    page.context.set_extra_http_headers({"Accept-Language": "en"})
    sign_in(page, live_server, DEALER, "not-the-password")
    expect(page.locator("#login-error")).to_have_text("Email or password is wrong.")
    expect(page.locator("#email")).to_have_value(DEALER)
    sign_in(page, live_server, "nobody@berger.example", "demo")
    expect(page.locator("#login-error")).to_have_text("Email or password is wrong.")
    page.goto(live_server.url + "/")
    expect(page).to_have_url(live_server.url + "/login?next=/")


def test_dealer_finds_the_shared_case_under_shared_with_us(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: ServerThread,
    csp: CspWatch,
) -> None:
    """The manufacturer's case shared with Berger is in the dealer's "shared with us" tab."""
    from playwright.sync_api import expect

    page = _new_page(browser, contexts, csp)
    sign_in(page, live_server, DEALER)
    expect(page.locator("nav.app-navbar")).to_contain_text("Anna Berger")
    page.locator(".inbox-tabs a[data-scope=shared]").click()
    expect(page.locator(".inbox-tabs a.active")).to_have_attribute("data-scope", "shared")
    rows = page.locator("table.case-table tbody tr")
    expect(rows.filter(has_text=BRAKES)).to_have_count(1)
    expect(rows.filter(has_text="Sabine Schäfer")).to_have_count(0)  # Berger's own lead
    row = rows.filter(has_text=BRAKES)
    expect(row).to_contain_text("Jürgen Müller")
    expect(row).to_contain_text("Nordwerk Automobile AG")


def test_note_for_manufacturer_and_dealer_is_hidden_from_the_supplier(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: ServerThread,
    csp: CspWatch,
) -> None:
    """Berger writes for Nordwerk and Berger only: Schulz does not see it, but sees what is
    shared with everyone."""
    from playwright.sync_api import expect

    restricted = "Kulanz mit Nordwerk besprochen, bitte nicht an Zulieferer"
    shared = "Fahrzeug steht ab Montag in unserer Werkstatt"

    dealer = _new_page(browser, contexts, csp)
    sign_in(dealer, live_server, DEALER)
    open_brakes_case(dealer, live_server)
    dealer.fill("#entry-body", restricted)
    dealer.get_by_label("Only these organisations:").check()
    dealer.get_by_label("Nordwerk Automobile AG").check()
    dealer.get_by_role("button", name="Add entry").click()
    expect(dealer.locator(".flash-messages")).to_contain_text(
        "Your entry was added to the timeline."
    )
    entry = dealer.locator(".timeline-item", has_text=restricted)
    expect(entry).to_contain_text("Visible to: Autohaus Berger GmbH, Nordwerk Automobile AG")

    dealer.fill("#entry-body", shared)
    dealer.get_by_label("Everyone who sees this case").check()
    dealer.get_by_role("button", name="Add entry").click()
    expect(dealer.locator(".timeline-item", has_text=shared)).to_contain_text("Shared")

    supplier = _new_page(browser, contexts, csp)
    sign_in(supplier, live_server, SUPPLIER)
    open_brakes_case(supplier, live_server)
    timeline = supplier.locator("#timeline")
    expect(timeline).to_contain_text(shared)
    expect(timeline).to_contain_text("Anruf von Herrn Müller")  # Nordwerk's shared contact
    expect(timeline).not_to_contain_text(restricted)
    expect(timeline).not_to_contain_text("Termin in der Werkstatt")  # also Nordwerk + Berger
    expect(timeline).not_to_contain_text("Intern: Kulanz")  # Nordwerk's internal note

    manufacturer = _new_page(browser, contexts, csp)
    sign_in(manufacturer, live_server, MANUFACTURER)
    manufacturer.goto(dealer.url.split("#")[0])
    expect(manufacturer.locator("#timeline")).to_contain_text(restricted)


def test_claim_by_one_user_is_shown_to_the_others(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: ServerThread,
    csp: CspWatch,
) -> None:
    """The dealer claims the case; the manufacturer's agent sees who handles it, since when."""
    from playwright.sync_api import expect

    dealer = _new_page(browser, contexts, csp)
    sign_in(dealer, live_server, DEALER)
    open_brakes_case(dealer, live_server)
    dealer.locator("#handling").get_by_role("button", name="Claim").click()
    expect(dealer.locator("#handling")).to_contain_text("You are handling this case.")
    expect(dealer.locator("#timeline")).to_contain_text(
        "Anna Berger set the handler to Anna Berger"
    )

    manufacturer = _new_page(browser, contexts, csp)
    sign_in(manufacturer, live_server, MANUFACTURER)
    manufacturer.goto(dealer.url.split("#")[0])
    handler = manufacturer.locator("#case-handler")
    expect(handler).to_contain_text("Anna Berger")
    expect(handler).to_contain_text("Autohaus Berger GmbH")
    expect(handler).to_contain_text("since")
    expect(manufacturer.locator("#handling")).to_contain_text("Anna Berger is handling this case.")
    expect(manufacturer.locator("#handling").get_by_role("button", name="Claim")).to_have_count(0)


def test_choosing_german_in_the_profile_shows_german_labels(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: ServerThread,
    csp: CspWatch,
) -> None:
    """An English browser, German chosen in the profile: the pages speak German."""
    from playwright.sync_api import expect

    page = _new_page(browser, contexts, csp)
    sign_in(page, live_server, DEALER)
    expect(page.locator("nav.app-navbar")).to_contain_text("Inbox")
    page.locator("a.nav-user-name").click()
    expect(page.locator("h1")).to_have_text("Your profile")
    page.select_option("#locale", "de")
    page.locator("#locale").locator("xpath=ancestor::form").get_by_role("button").click()
    expect(page.locator(".flash-messages")).to_contain_text("Sprache gespeichert.")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("h1")).to_have_text("Ihr Profil")
    page.goto(live_server.url + "/")
    expect(page.locator("nav.app-navbar")).to_contain_text("Posteingang")
    expect(page.locator(".inbox-tabs")).to_contain_text("Mit uns geteilt")
    expect(page.get_by_role("button", name="Abmelden")).to_be_visible()


def test_pages_fit_a_phone_screen(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: ServerThread,
    csp: CspWatch,
) -> None:
    """At 390 px nothing scrolls sideways and the navigation opens from its toggler."""
    from playwright.sync_api import expect

    page = _new_page(browser, contexts, csp, viewport={"width": 390, "height": 844})
    sign_in(page, live_server, DEALER)
    open_brakes_case(page, live_server)
    case_url = page.url
    for url in (live_server.url + "/", case_url, live_server.url + "/customers"):
        page.goto(url)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{url} is {overflow}px wider than the phone"
    nav_link = page.locator("#main-nav").get_by_role("link", name="Customers")
    expect(nav_link).to_be_hidden()
    page.locator("button.navbar-toggler").click()
    expect(nav_link).to_be_visible()


def test_customer_contact_is_recorded_with_channel_and_direction(
    browser: Browser,
    contexts: list[BrowserContext],
    live_server: ServerThread,
    csp: CspWatch,
) -> None:
    """Channel and direction appear only for a customer contact and land on the timeline."""
    from playwright.sync_api import expect

    page = _new_page(browser, contexts, csp)
    sign_in(page, live_server, DEALER)
    open_brakes_case(page, live_server)
    channel = page.locator("#entry-channel")
    expect(channel).to_be_hidden()
    page.locator("label[for=entry-kind-interaction]").click()  # a toggle button
    expect(channel).to_be_visible()
    channel.select_option("phone")
    page.select_option("#entry-direction", "out")
    page.fill("#entry-body", "Kunde zurückgerufen, Termin bestätigt")
    page.get_by_label("Everyone who sees this case").check()
    page.get_by_role("button", name="Add entry").click()
    entry = page.locator(".timeline-item", has_text="Kunde zurückgerufen, Termin bestätigt")
    expect(entry).to_contain_text("Phone · Outgoing")
    expect(page.locator("#entry-channel")).to_be_hidden()
