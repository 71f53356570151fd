"""Headless Chromium for browser tests, driven by Playwright's sync API.

Playwright cannot download its own browsers on our machines, so this launches Debian's
``/usr/bin/chromium`` (installed by ``scripts/install-browser.sh``, which ``make test`` runs).
If it is missing the calling test is skipped with the reason (and CI fails on skips).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

#: The browser binary; override with PORTAL_TEST_CHROMIUM for unusual machines.
CHROMIUM_PATH = Path(os.environ.get("PORTAL_TEST_CHROMIUM", "/usr/bin/chromium"))

#: Flags for a sandbox with no network but loopback (root, no GPU, no Google services).
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def chromium_missing_reason() -> str | None:
    """Why a browser test cannot run here, or ``None`` if it can."""
    if not os.access(CHROMIUM_PATH, os.X_OK):
        return (
            f"{CHROMIUM_PATH} is not installed: run `bash scripts/install-browser.sh` "
            "(as root) or `make test`; never `playwright install`"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    return None


@contextmanager
def launch_browser(*, slow_mo: float | None = None) -> Iterator[Browser]:
    """Launch headless Chromium via Playwright; skip the calling test if it is unavailable.

    Usage::

        with launch_browser() as browser:
            page = browser.new_page()
            page.goto(server.url)
    """
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)

    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM_PATH),
            headless=True,
            args=list(CHROMIUM_ARGS),
            slow_mo=slow_mo,
        )
        try:
            yield browser
        finally:
            browser.close()
