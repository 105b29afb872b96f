"""The live dashboard in a real browser (Debian's headless Chromium, driven by playwright)
against a running stack: embedded broker, worker, web app."""

from __future__ import annotations

import csv
import io
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from streams.stack import child_env
from tests.factories import action, checkin, phone, pledge, signup
from tests.polling import eventually

from .conftest import TOKEN

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.output = OUTPUT / request.node.name
    page.output.mkdir(parents=True, exist_ok=True)
    yield page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(page.output / "dashboard.png"), full_page=True)
    context.close()


def screenshot_dir(page: Page) -> Path:
    return page.output


def sign_in_as_organizer(page: Page, url: str) -> None:
    page.goto(f"{url}/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    page.get_by_label("Organizer token").fill(TOKEN)
    page.get_by_role("button", name="Sign in as organizer").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def attended(page: Page, partner: str):
    return page.locator(f'#action-table tbody tr[data-partner="{partner}"] td[data-metric="attended"]')


@pytest.fixture
def rally(make_stack):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    started = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()  # under way: no-shows are flagged
    stack.post_all("union-a", [{**action("rally-1", {"union-a": 20, "faith-b": 5}), "starts_at": started}, pledge("p1", "rally-1", 20)])
    stack.post_all("faith-b", [pledge("p2", "rally-1", 5)])
    stack.post_all("union-a", [signup(f"s{i}", phone=phone(i), email=f"person{i}@example.org", given_name=f"Given{i}") for i in range(3)])
    stack.post_all("union-a", [checkin("c0", "rally-1", phone=phone(0))])
    return stack


def test_a_check_in_shows_up_on_the_open_page_without_a_reload(rally, page):
    sign_in_as_organizer(page, rally.url)
    expect(attended(page, "union-a")).to_have_text("1", timeout=30_000)
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")

    rally.post_all("union-a", [checkin("c1", "rally-1", phone=phone(1))])

    expect(attended(page, "union-a")).to_have_text("2", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
    expect(page.locator('#action-table tbody tr[data-partner="faith-b"]')).to_contain_text("pledged, none turned out")
    expect(page.locator("#chart-legend")).to_contain_text("union-a: 2")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone at the rally door
    page.screenshot(path=str(screenshot_dir(page) / "dashboard-phone.png"), full_page=True)
    content = page.content()
    for i in range(3):
        assert phone(i)[2:] not in content and f"person{i}" not in content and f"Given{i}" not in content


def test_the_page_resumes_live_updates_after_the_web_app_restarts(rally, page):
    sign_in_as_organizer(page, rally.url)
    expect(attended(page, "union-a")).to_have_text("1", timeout=30_000)
    page.evaluate("window.__sameDocument = true")

    rally.stop(rally.procs[-1], signal.SIGTERM)  # the web app
    expect(page.locator("#status")).to_have_attribute("data-state", re.compile("reconnecting|stale"), timeout=15_000)
    expect(page.locator("#status")).to_contain_text("out of date")
    rally.start_web()
    rally.post_all("union-a", [checkin("c2", "rally-1", phone=phone(2))])

    expect(attended(page, "union-a")).to_have_text("2", timeout=30_000)
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    assert page.evaluate("window.__sameDocument") is True


def test_a_partner_sees_its_own_row_and_only_an_aggregate_of_the_rest(rally, page):
    page.goto(f"{rally.url}/dashboard/login")
    page.get_by_label("Partner id").fill("faith-b")
    page.get_by_label("Partner secret").fill(rally.secrets["faith-b"])
    page.get_by_role("button", name="Sign in as partner").click()
    rows = page.locator("#action-table tbody tr")
    expect(rows).to_have_count(2, timeout=30_000)
    expect(rows.nth(0)).to_have_attribute("data-partner", "faith-b")
    expect(rows.nth(1)).to_contain_text("Rest of the coalition")
    expect(rows.nth(1)).to_contain_text("not shown: fewer than 3 partners")  # union-a alone: its figures stay hidden
    expect(rows.nth(1).locator('td[data-metric="attended"]')).to_have_text("not shown")
    assert "union-a" not in page.content()
    expect(page.locator("#exports")).to_be_hidden()


def test_exports_from_the_web_app_and_the_cli_agree_and_suppress_small_counts(rally):
    """rally-1: union-a pledged 20 with 1 check-in; faith-b pledged 5; 12 more check-ins for union-a."""
    rally.post_all("union-a", [checkin(f"x{i}", "rally-1", phone=phone(100 + i)) for i in range(12)])
    eventually(lambda: rally.action_rows("rally-1")["union-a"]["attended"] == 13)
    web = rally.get("/v1/exports/tallies.csv").text
    web_aggregate = rally.get("/v1/exports/aggregate.csv").text
    out = rally.tmp / "tallies.csv"
    cli = subprocess.run([sys.executable, "-m", "streams.cli", "export", "--out", str(out)], env=child_env(rally.settings), capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    aggregate = subprocess.run([sys.executable, "-m", "streams.cli", "export", "--aggregate"], env=child_env(rally.settings), capture_output=True, text=True, timeout=120)
    assert aggregate.returncode == 0, aggregate.stderr
    assert out.read_text() == web and aggregate.stdout == web_aggregate

    rows = {r["partner"]: r for r in csv.DictReader(io.StringIO(web))}
    assert (rows["union-a"]["pledged"], rows["union-a"]["attended"], rows["faith-b"]["pledged"]) == ("20", "13", "5")
    note, body = aggregate.stdout.split("\n", 1)
    assert "suppressed" in note
    (row,) = csv.DictReader(io.StringIO(body))
    assert (row["pledged"], row["attended"], row["partners"], row["rsvp_yes"]) == ("25", "13", "<11", "0")
    for text in (web, aggregate.stdout):
        assert "union-a@" not in text and "example.org" not in text and "Given" not in text
        assert not any(phone(i)[2:] in text for i in range(112))
