"""Helpers for the Wertkette test suite: databases, live WSGI servers and a headless browser.

- :mod:`tests.support.postgres` finds or starts a PostgreSQL server and creates test databases.
- :mod:`tests.support.servers` serves a WSGI app on a free loopback port in a thread.
- :mod:`tests.support.browser` launches Debian's Chromium through Playwright.
"""
