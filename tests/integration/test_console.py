"""The organizer console in a browser (Debian's headless Chromium, driven by playwright)
against a running stack: embedded broker, worker, web app."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from agents.outreach.templates import names_sponsor, render, segments, sms_body
from connectors.web.pages.words import when
from tests.integration.test_dashboard import OUTPUT, browser, sign_in_as_organizer  # noqa: F401 - browser is a fixture
from tests.polling import eventually

pytestmark = pytest.mark.integration

SMS = "{given_name}, vigil for the budget at {place} on {local_time}. Bring a candle and a friend! RSVP: {rsvp_link}"


def test_an_organizer_writes_an_action_sees_its_sms_segments_fixes_a_template_and_posts_it_as_the_backbone(make_stack, browser):  # noqa: F811
    stack = make_stack(partners=("backbone", "union-a"))
    stack.start_worker()
    stack.start_web()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="Europe/Berlin")
    page = context.new_page()
    out = OUTPUT / "test_console"
    out.mkdir(parents=True, exist_ok=True)
    try:
        sign_in_as_organizer(page, stack)
        page.get_by_role("link", name="New action or alert").click()
        expect(page).to_have_url(re.compile(r"/dashboard/console$"))
        expect(page.locator(".bar")).to_contain_text("posting as backbone")
        page.get_by_label("Action id").fill("vigil-7")
        page.get_by_label("Title").fill("Budget vigil")
        page.get_by_label("Kind").select_option("vigil")
        page.get_by_label("Starts (wall time in the action's own zone)").fill("2026-12-10T18:30")
        page.get_by_label("The action's time zone").fill("America/Chicago")
        page.get_by_label("Venue").fill("Daley Plaza")
        page.get_by_label("City").fill("Chicago")
        page.get_by_label("Target postal codes").fill("60601, 60602")
        page.get_by_label("Pledges").fill("union-a: 25")

        page.get_by_label("Text message (en)").fill("Hi {first_name}")
        expect(page.locator("#live-errors")).to_contain_text("unknown placeholder {first_name}")
        page.get_by_label("Text message (en)").fill(SMS)
        expect(page.locator("#live-errors")).to_be_empty()
        # The count the page shows is the one the sender will use, for the same sample values and
        # the posting partner as the sponsor named before the text (the test stack names partners by id).
        sample = {"given_name": "Alexandra", "action_title": "Budget vigil", "local_time": "Wed Dec 2, 3:47 PM PST",
                  "place": "Daley Plaza, Chicago", "rsvp_link": f"{stack.url}/r/vigil-7/" + "x" * 48, "sponsor": "backbone"}
        assert not names_sponsor(SMS)
        encoding, count = segments(sms_body("backbone: " + render(SMS, sample)))
        assert count == 2  # the test means something: a 1-segment answer would be wrong
        expect(page.locator("#sms_en-count")).to_contain_text(f"{count} SMS segments ({encoding})")
        page.screenshot(path=str(out / "console-form.png"), full_page=True)

        page.get_by_role("button", name="Check and review").click()
        expect(page.locator("h1")).to_have_text("Post “Budget vigil”?")
        expect(page.locator(".confirm")).to_contain_text("Thursday, December 10, 2026, 6:30 PM CST")  # the action's zone, not Berlin's
        expect(page.locator(".confirm")).to_contain_text("No asks are sent by posting it")
        page.get_by_role("button", name="Change something").click()
        expect(page.get_by_label("Title")).to_have_value("Budget vigil")
        page.get_by_label("Title").fill("Budget vigil at Daley Plaza")
        page.get_by_role("button", name="Check and review").click()
        page.screenshot(path=str(out / "console-confirm.png"), full_page=True)
        page.get_by_role("button", name="Post the action").click()

        expect(page).to_have_url(re.compile(r"/dashboard\?action=vigil-7$"))
        from datetime import datetime
        from zoneinfo import ZoneInfo
        starts = datetime(2026, 12, 10, 18, 30, tzinfo=ZoneInfo("America/Chicago"))
        expect(page.locator("#action-meta")).to_contain_text(when(starts, "America/Chicago", "en"), timeout=30_000)
        expect(page.locator("#action-heading")).to_have_text("Action: Budget vigil at Daley Plaza")
        rows = eventually(lambda: stack.action_rows("vigil-7"))
        assert rows["union-a"]["pledged"] == 25
        # Posted by the backbone: a member may not change it, as with any partner's action.
        refused = stack.post("union-a", [{"type": "action", "event_id": "x", "occurred_at": "2026-11-20T12:00:00Z", "action_id": "vigil-7",
                                          "title": "Mine now", "kind": "vigil", "starts_at": starts.isoformat(), "time_zone": "America/Chicago"}])
        assert refused.status_code == 422 and "belongs to 'backbone'" in refused.text
    finally:
        context.close()
