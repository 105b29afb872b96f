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
from playwright.sync_api import Page, expect

from streams.stack import child_env
from tests.factories import action, checkin, phone, pledge, rsvp, signup
from tests.accounts import PASSWORD
from tests.polling import eventually

from .browsers import OUTPUT, accessible

pytestmark = pytest.mark.integration

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


def accounts(stack, *args: str) -> str:
    """`turnout accounts ...` against the stack's broker; its standard output."""
    run = subprocess.run([sys.executable, "-m", "streams.cli", "accounts", *args], env=child_env(stack.settings), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def invite(stack, email: str, *args: str) -> str:
    """A one-time sign-in link for a new account, as `turnout accounts invite` prints it."""
    link = accounts(stack, "invite", email, *args, "--url", stack.url).strip().splitlines()[-1]
    assert link.startswith(f"{stack.url}/dashboard/welcome#"), link
    return link


def choose_password(page: Page, link: str, email: str | None = None) -> None:
    page.goto(link)
    if email is not None:  # the page says whose link it is (and gives a password manager the username)
        expect(page.get_by_label("Your email")).to_have_value(email)
        expect(page.get_by_label("Your email")).to_have_attribute("autocomplete", "username")
    page.get_by_label("New password").fill(PASSWORD)
    page.get_by_label("The same password again").fill(PASSWORD)
    page.get_by_role("button", name="Save password and sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def sign_in_as_organizer(page: Page, stack) -> None:
    page.goto(f"{stack.url}/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    choose_password(page, invite(stack, "organizer@example.org", "--organizer"), "organizer@example.org")


def attended(page: Page, partner: str):
    return page.locator(f'#action-table tbody tr[data-partner="{partner}"] td[data-metric="attended"]')


@pytest.fixture
def rally(make_stack):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    started = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()  # under way: no-shows are flagged
    stack.post_all("union-a", [{**action("rally-1", {"union-a": 20}), "starts_at": started}, pledge("p1", "rally-1", 20)])
    stack.post_all("faith-b", [pledge("p2", "rally-1", 5)])
    stack.post_all("union-a", [signup(f"s{i}", phone=phone(i), email=f"person{i}@example.org", given_name=f"Given{i}") for i in range(3)])
    stack.post_all("union-a", [checkin("c0", "rally-1", phone=phone(0))])
    return stack


def test_a_check_in_shows_up_on_the_open_page_without_a_reload(rally, page):
    sign_in_as_organizer(page, rally)
    expect(attended(page, "union-a")).to_have_text("1", timeout=30_000)
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")

    rally.post_all("union-a", [checkin("c1", "rally-1", phone=phone(1))])

    expect(attended(page, "union-a")).to_have_text("2", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
    expect(page.locator('#action-table tbody tr[data-partner="faith-b"]')).to_contain_text("pledged, none turned out")
    expect(page.locator("#chart-legend")).to_contain_text("union-a: 2")
    minutes = page.locator("#chart-table tbody th")
    expect(minutes.first).to_have_text(re.compile(r"^\d{1,2}:\d{2}\s?[AP]M$"))  # one day: the clock says enough
    # Asks still being handed over and asks in doubt have columns of their own, apart from "sent";
    # so have the asks never sent (expired, cancelled).
    for heading in ("In doubt (no answer, never resent)", "Waiting (quiet hours or the sender's queue)", "Expired (too late to send)", "Cancelled (decided against at sending)"):
        expect(page.locator("#action-table thead")).to_contain_text(heading)
    for metric in ("sent", "sending", "in_doubt", "deferred", "expired", "cancelled"):
        expect(page.locator(f'#action-table tbody tr[data-partner="union-a"] td[data-metric="{metric}"]')).to_have_text("0")
    expect(page.locator("#coalition-heading")).to_have_text("Coalition: 1 active action")  # not "1 active actions"
    # What an organizer can open: the console; the door is partner staff's (it answers an organizer 403).
    expect(page.locator("#console-link")).to_be_visible()
    expect(page.locator("#new-action-link")).to_be_visible()
    expect(page.locator("#checkin-link")).to_be_hidden()
    page.set_viewport_size({"width": 390, "height": 844})  # a phone at the rally door
    # The action's table scrolls sideways there, and the keyboard can scroll it too (it takes focus).
    expect(page.locator("#action-section > .scroll")).to_have_attribute("tabindex", "0")
    expect(page.get_by_role("region", name=re.compile("^Per partner: pledged.*scrolls sideways"))).to_be_visible()  # a named stop
    # An email in the accounts table wraps in its column, never drawn over the next (an outside probe).
    expect(page.locator("#accounts-table th[scope=row]").first).to_be_visible()
    spill = page.eval_on_selector_all("#accounts-table th[scope=row]", "cells => cells.filter(c => c.scrollWidth > c.clientWidth).map(c => c.textContent)")
    assert spill == []
    page.screenshot(path=str(screenshot_dir(page) / "dashboard-phone.png"), full_page=True)
    accessible(page, "dashboard on a phone")
    content = page.content()
    for i in range(3):
        assert phone(i)[2:] not in content and f"person{i}" not in content and f"Given{i}" not in content

    # A check-in from two days before (a sign-in sheet typed in late): the times say which day.
    early = (datetime.now(timezone.utc) - timedelta(days=2)).isoformat(timespec="seconds")
    rally.post_all("union-a", [checkin("c2", "rally-1", phone=phone(2), at=early)])
    expect(page.locator("#chart-legend")).to_contain_text("union-a: 3", timeout=10_000)
    expect(minutes.first).to_have_text(re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{1,2}:\d{2}\s?[AP]M$"))
    ticks = page.locator("#chart svg text.tick-label").all_text_contents()
    assert ticks and all(re.match(r"^[A-Z][a-z]{2} \d{1,2}", t) for t in ticks), ticks
    # One with last year's date (a mistyped year on a sheet): the times say which year (an outside probe).
    last_year = (datetime.now(timezone.utc) - timedelta(days=400)).isoformat(timespec="seconds")
    rally.post_all("union-a", [checkin("c3", "rally-1", phone=phone(3), at=last_year)])
    expect(page.locator("#chart-legend")).to_contain_text("union-a: 4", timeout=10_000)
    expect(minutes.first).to_have_text(re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d{2}\s?[AP]M$"))


def test_the_page_resumes_live_updates_after_the_web_app_restarts(rally, page):
    sign_in_as_organizer(page, rally)
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


def test_an_invited_partner_viewer_sees_only_its_rows_and_is_signed_out_when_removed(rally, page):
    """The link `turnout accounts invite` prints; faith-b's own row and the rest of the
    coalition (union-a alone) withheld; `turnout accounts remove` ends the open page's session."""
    choose_password(page, link := invite(rally, "staff@faith-b.example.org", "--partner", "faith-b", "--role", "viewer"))
    expect(page.locator("#who")).to_contain_text("partner faith-b (staff@faith-b.example.org)")
    rows = page.locator("#action-table tbody tr")
    expect(rows).to_have_count(2, timeout=30_000)
    expect(rows.nth(0)).to_have_attribute("data-partner", "faith-b")
    expect(rows.nth(0).locator("th")).to_have_text(re.compile(r"\S you( |$)"))  # read apart from its name (an outside probe: "…Local 1you")
    expect(rows.nth(0).locator('td[data-metric="pledged"]')).to_have_text("5")
    expect(rows.nth(1)).to_contain_text("Rest of the coalition")
    # union-a alone: none of its figures is shown, nor the action's total (25 - 5 would be union-a's pledge)
    expect(rows.nth(1).locator('td[data-metric="all"]')).to_have_text("not shown: fewer than 3 partners")
    expect(page.locator('#action-table tfoot td[data-metric="all"]')).to_have_text("not shown: fewer than 3 partners")
    expect(page.locator('#capacity-table tr[data-partner="rest"]')).to_contain_text("not shown: fewer than 3 partners")
    # The chart's rest line too, named "not shown", not left out (an outside probe: "No check-ins yet." with union-a's in)
    expect(page.locator('#chart-legend li[data-partner="rest"]')).to_have_text("Rest of the coalition: not shown: fewer than 3 partners")
    expect(page.locator("#status")).to_have_attribute("data-state", "live")
    assert "union-a" not in page.content()
    expect(page.locator("#exports")).to_be_hidden()
    expect(page.locator("#accounts")).to_be_hidden()  # a viewer manages no accounts
    expect(page.locator("#checkin-link")).to_be_visible()  # partner staff check their people in
    expect(page.locator("#console-link")).to_be_hidden()  # the console is the organizers'
    expect(page.locator("#new-action-link")).to_be_hidden()
    page.screenshot(path=str(screenshot_dir(page) / "partner-viewer.png"), full_page=True)
    accessible(page, "a partner viewer's dashboard")
    # Projected, the header still says its sums leave figures out, and no account control shows (an outside probe).
    expect(page.locator("#header-note")).to_be_visible()
    page.get_by_role("button", name="Projector mode").click()
    expect(page.locator("#header-note")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    page.get_by_role("button", name="Leave projector mode").click()

    assert "sessions have ended" in accounts(rally, "remove", "staff@faith-b.example.org")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"), timeout=15_000)
    page.goto(f"{rally.url}/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/login$"))
    # The link, used: said at once, and the password boxes closed with the button (an outside
    # probe: only the button was, the boxes took a password no button could send).
    page.goto(link)
    expect(page.locator("#link-problem")).to_be_visible()
    for box in ("New password", "The same password again"):
        expect(page.get_by_label(box)).to_be_disabled()
    expect(page.get_by_role("button", name="Save password and sign in")).to_be_disabled()


def test_a_partner_admin_invites_a_colleague_from_the_dashboard(rally, page, browser):
    choose_password(page, invite(rally, "admin@faith-b.example.org", "--partner", "faith-b", "--role", "admin"))
    expect(page.locator("#accounts")).to_be_visible()
    page.get_by_label("Email", exact=True).fill("colleague@faith-b.example.org")
    page.get_by_role("button", name="Create a sign-in link").click()
    link = page.get_by_label("Sign-in link for colleague@faith-b.example.org")
    expect(link).to_have_value(re.compile(r"/dashboard/welcome#"))
    expect(page.locator('#accounts-table tr[data-email="colleague@faith-b.example.org"]')).to_contain_text("invited")

    colleague = browser.new_context().new_page()
    try:
        choose_password(colleague, link.input_value(), "colleague@faith-b.example.org")
        used = colleague.context.new_page()  # the same link again: the page says at once it is used
        used.goto(link.input_value())
        expect(used.get_by_role("alert")).to_contain_text("used already")
        expect(used.get_by_role("button", name="Save password and sign in")).to_be_disabled()
        expect(colleague.locator("#who")).to_contain_text("partner faith-b (colleague@faith-b.example.org)")
    finally:
        colleague.context.close()
    page.reload()
    expect(page.locator('#accounts-table tr[data-email="colleague@faith-b.example.org"]')).to_contain_text("active")


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
    excel = rally.tmp / "unique.csv"  # for Excel: a byte-order mark first, as the dashboard's links give
    cli = subprocess.run([sys.executable, "-m", "streams.cli", "export", "--unique", "--bom", "--out", str(excel)], env=child_env(rally.settings),
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert excel.read_bytes() == rally.get("/v1/exports/unique.csv?bom=true").content and excel.read_bytes().startswith(b"\xef\xbb\xbfaction_id,")

    rows = {r["partner"]: r for r in csv.DictReader(io.StringIO(web))}
    assert (rows["union-a"]["pledged"], rows["union-a"]["attended"], rows["faith-b"]["pledged"]) == ("20", "13", "5")
    assert aggregate.stdout.startswith("action_id,") and "1 to 10 is suppressed" in aggregate.stderr  # the note is beside the data
    (row,) = csv.DictReader(io.StringIO(aggregate.stdout))
    assert (row["pledged"], row["attended"], row["partners"], row["rsvp_yes"]) == ("25", "13", "<11", "0")
    for text in (web, aggregate.stdout):
        assert "union-a@" not in text and "example.org" not in text and "Given" not in text
        assert not any(phone(i)[2:] in text for i in range(112))


def test_the_action_time_is_the_action_zone_on_a_browser_in_another_zone(rally, browser):
    """The browser is in Tokyo, the action in Los Angeles: the page writes the start as the
    action's texts do (Pacific time, named so), and the browser's own zone only labelled as
    "your time". Also: projector mode and the phone layout, for the screenshots; the favicon."""
    from connectors.web.pages.words import when

    starts = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3)
    rally.post_all("union-a", [{**action("later-1", {"union-a": 10}), "starts_at": starts.isoformat()}, rsvp("r-later", "later-1", phone=phone(0))])
    context = browser.new_context(viewport={"width": 1280, "height": 720}, timezone_id="Asia/Tokyo", locale="en-US")
    page = context.new_page()
    out = OUTPUT / "test_the_action_time_is_the_action_zone_on_a_browser_in_another_zone"
    out.mkdir(parents=True, exist_ok=True)
    try:
        assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "Asia/Tokyo"
        sign_in_as_organizer(page, rally)
        page.goto(f"{rally.url}/dashboard?action=later-1")
        pacific = when(starts, "America/Los_Angeles", "en")
        assert pacific.endswith(("PST", "PDT"))
        meta = page.locator("#action-meta")
        expect(meta).to_contain_text(pacific, timeout=30_000)
        expect(meta).to_contain_text("your time")
        expect(meta).to_contain_text("figures so far")  # three days away
        expect(page.locator("#attended-heading")).to_have_text("Turned out so far")
        # Nobody can have shown yet: not "0%" as if nobody came (an outside probe).
        expect(page.locator("#action-table tbody tr[data-partner=union-a] td[data-metric=show_rate]")).to_have_text("0% so far")
        expect(page.locator("#action-select option[value=later-1]")).to_contain_text(pacific)
        assert rally.get("/favicon.ico").headers["content-type"].startswith("image/svg+xml")

        page.goto(f"{rally.url}/dashboard?action=rally-1")
        expect(attended(page, "union-a")).to_have_text("1", timeout=30_000)
        expect(page.locator("#action-table tbody tr[data-partner=union-a] td[data-metric=production_ratio]")).to_contain_text("5% of pledge")
        page.get_by_role("button", name="Projector mode").click()
        expect(page.locator("body")).to_have_class(re.compile("projector"))
        # The chart is drawn again in the next frame: measure the one that stays (None while replaced).
        def chart_above_the_fold():
            box = page.locator("#chart svg").bounding_box()
            assert box is not None and box["y"] + box["height"] <= 720, box
            return True
        eventually(chart_above_the_fold, timeout=10)
        page.screenshot(path=str(out / "projector-1280x720.png"))
        accessible(page, "projector mode")
        page.get_by_role("button", name="Leave projector mode").click()
        page.set_viewport_size({"width": 390, "height": 844})
        expect(page.locator(".scroll-cue").first).to_be_visible()  # the wide table says it scrolls
        page.screenshot(path=str(out / "phone-390.png"), full_page=True)
    finally:
        context.close()


def test_last_update_stays_when_the_server_it_was_heard_from_is_gone(rally, browser):
    """The page's clock is playwright's: two minutes of page time pass in a moment, every timer
    firing on the way. The time of the last update must not move once the server is gone."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.clock.install()
        sign_in_as_organizer(page, rally)
        status = page.locator("#status")
        expect(attended(page, "union-a")).to_have_text("1", timeout=30_000)
        expect(status).to_have_attribute("data-state", "live")
        rally.stop(rally.procs[-1], signal.SIGTERM)  # the web app
        expect(status).to_contain_text("Last update", timeout=15_000)
        page.clock.run_for("00:20")  # past two missed heartbeats
        expect(status).to_have_attribute("data-state", re.compile("stale|reconnecting"))
        first = re.search(r"Last update ([^(]+)\(your time\)", status.inner_text())
        assert first, status.inner_text()
        for _ in range(6):
            page.clock.run_for("00:20")
            assert f"Last update {first[1]}(your time)" in status.inner_text(), status.inner_text()
        assert "out of date" in status.inner_text() or "Stale" in status.inner_text()
    finally:
        context.close()
