"""Debian's headless Chromium through playwright, as every browser test drives it
(playwright's own browser download does not work on the machines these tests run on)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Screenshots and page dumps, one folder per test.
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


@contextmanager
def chromium() -> Iterator:
    """A launched browser, closed on the way out; a clear failure when Chromium is missing."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def accessible(page, what: str, browser=None) -> None:
    """axe-core (the engine browsers' accessibility audits use) finds no violation of its default
    rules on ``page`` as it stands: WCAG 2.0/2.1 A and AA and its best practices. ``browser``:
    the page has JavaScript off, which axe needs: its URL is checked in a page of ``browser``
    with JavaScript on, as wide."""
    if browser is not None:
        context = browser.new_context(viewport=page.viewport_size)
        try:
            other = context.new_page()
            other.goto(page.url)
            return accessible(other, what)
        finally:
            context.close()
    from axe_playwright_python.sync_playwright import Axe

    found = [(v["id"], v["impact"], [node["target"] for node in v["nodes"]][:3]) for v in Axe().run(page).response["violations"]]
    assert not found, f"{what}: {found}"
