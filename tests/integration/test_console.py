"""The organizer console in a browser (Debian's headless Chromium, driven by playwright)
against a running stack: embedded broker, worker, web app."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from agents.outreach.templates import SMS_FOOTER_ES, local_time, names_sponsor, render, segments, sms_body
from connectors.web.pages.words import when
from tests.integration.browsers import OUTPUT, accessible
from tests.integration.test_dashboard import sign_in_as_organizer
from tests.polling import eventually

pytestmark = pytest.mark.integration

SMS_ES = "Vigilia {local_time} en la plaza {rsvp_link}"
SMS = "{given_name}, vigil for the budget at {place} on {local_time}. Bring a candle and a friend! RSVP: {rsvp_link}"


def test_an_organizer_writes_an_action_sees_its_sms_segments_fixes_a_template_and_posts_it_as_the_backbone(make_stack, browser):  # noqa: F811
    # This stack runs on the system clock, and the console refuses a start in the past: the
    # Saturday at least ten days on (a Spanish "sáb" made texts UCS-2: the texts write "sab").
    starts = (datetime.now(ZoneInfo("America/Chicago")) + timedelta(days=10)).replace(hour=18, minute=30, second=0, microsecond=0)
    starts += timedelta(days=(5 - starts.weekday()) % 7)
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
        page.get_by_label("Starts (wall time in the action's own zone)").fill(starts.strftime("%Y-%m-%dT%H:%M"))
        page.get_by_label("The action's time zone").fill("America/Chicago")
        page.get_by_label("Venue").fill("Daley Plaza")
        page.get_by_label("City").fill("Chicago")
        page.get_by_label("Target postal codes").fill("60601, 60602")
        page.get_by_label("Pledges").fill("union-a: 25")

        page.get_by_label("Text message (en)").fill("Hi {first_name}")
        expect(page.locator("#live-errors")).to_contain_text("unknown placeholder {first_name}")
        accessible(page, "console with an error")
        # The error names the box as the form does (not the API's "templates.sms.en") and leads to it.
        page.locator("#live-errors").get_by_role("link", name="Text message (en)").click()
        expect(page.get_by_label("Text message (en)")).to_be_focused()
        page.get_by_role("button", name="Check and review").click()  # posted anyway: refused, the form sent back
        expect(page.locator("#server-errors")).to_contain_text("unknown placeholder {first_name}")
        expect(page.locator("#server-errors").get_by_role("link", name="Text message (en)")).to_be_visible()
        page.get_by_label("Text message (en)").fill(SMS)
        expect(page.locator("#live-errors")).to_be_empty()
        expect(page.locator("#server-errors")).to_be_hidden()  # fixed: the refusal no longer says "Please fix"
        # The count the page shows is the one the sender will use, for the same sample values and
        # the posting partner as the sponsor named before the text (the test stack names partners by id).
        # The start as the texts write it, in each template's language (the page asks the server).
        sample = {"given_name": "Alexandra", "action_title": "Budget vigil", "local_time": local_time(starts, "America/Chicago", "en", sms=True),
                  "place": "Daley Plaza, Chicago", "rsvp_link": f"{stack.url}/r/vigil-7/" + "x" * 48, "sponsor": "backbone"}
        assert not names_sponsor(SMS)
        encoding, count = segments(sms_body("backbone: " + render(SMS, sample)))
        assert count == 2  # the test means something: a 1-segment answer would be wrong
        expect(page.locator("#sms_en-count")).to_contain_text(f"{count} SMS segments ({encoding})")
        # A Spanish text is counted with the Spanish speakers' footer and the start as Spanish
        # texts write it ("sab": no accent that would make it UCS-2), to the character.
        page.get_by_label("Text message (es)").fill(SMS_ES)
        spanish = sms_body("backbone: " + render(SMS_ES, {**sample, "local_time": local_time(starts, "America/Chicago", "es", sms=True)}), SMS_FOOTER_ES)
        assert "sab " in spanish and segments(spanish) == ("GSM-7", 2)
        expect(page.locator("#sms_es-count")).to_contain_text(f"{len(spanish)} characters with sample values")
        expect(page.locator("#sms_es-count")).to_contain_text("2 SMS segments (GSM-7)")
        # A literal brace is written {{ and sent as one (an outside probe: the page counted both).
        braces = "{given_name} {{ok}} {rsvp_link} " + "p" * 137
        sent = sms_body("backbone: " + render(braces, sample))
        assert "{ok}" in sent and segments(sent) == ("GSM-7", 2)
        page.get_by_label("Text message (en)").fill(braces)
        expect(page.locator("#sms_en-count")).to_contain_text(f"{len(sent)} characters with sample values")
        expect(page.locator("#sms_en-count")).to_contain_text("2 SMS segments (GSM-7)")
        page.get_by_label("Text message (en)").fill(SMS)
        page.screenshot(path=str(out / "console-form.png"), full_page=True)
        accessible(page, "console, filled in")
        size = page.viewport_size
        page.set_viewport_size({"width": 320, "height": 640})  # WCAG's reflow width: nothing to scroll sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
        page.set_viewport_size(size)

        page.get_by_role("button", name="Check and review").click()
        expect(page.locator("h1")).to_have_text("Post “Budget vigil”?")
        expect(page.locator(".confirm")).to_contain_text(when(starts, "America/Chicago", "en"))  # the action's zone, not Berlin's
        expect(page.locator(".confirm")).to_contain_text("No asks are sent by posting it")
        page.get_by_role("button", name="Change something").click()
        expect(page.get_by_label("Title")).to_have_value("Budget vigil")
        page.get_by_label("Title").fill("Budget vigil at Daley Plaza")
        page.get_by_role("button", name="Check and review").click()
        page.screenshot(path=str(out / "console-confirm.png"), full_page=True)
        accessible(page, "console's confirmation")
        page.get_by_role("button", name="Post the action").click()

        expect(page).to_have_url(re.compile(r"/dashboard\?action=vigil-7$"))
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


ALERT_SMS = "{given_name}: emergency hearing on the budget, {local_time}. RSVP {rsvp_link}"


def test_an_organizer_previews_an_alert_sends_a_test_to_themselves_then_launches_and_the_inbox_matches(make_stack, browser):  # noqa: F811
    from tests.factories import phone
    from tests.integration.test_outreach import person, signups_seen

    stack = make_stack(outreach=True, partners=("backbone", "union-a"))
    stack.start_sandbox()
    stack.start_web()
    stack.start_worker()
    people = [
        person(1, email="a@example.org"),             # text and email
        person(2, postal="94612"),                    # text; no email consent
        person(3, sms=False, email="c@example.org"),  # email; no text consent
        person(4, postal="60601"),                    # out of the target area
        person(5, scope="partner"),                   # consent for union-a only: covers no sponsor of the backbone's alert
        person(7, postal="10001"),                    # New York: 22:00 there, the text waits for 09:00
    ]
    stack.post_all("union-a", people)
    eventually(lambda: signups_seen(stack, len(people)))
    stack.set_clock("2026-11-25T03:00:00+00:00")  # 19:00 in California, 22:00 in New York
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    out = OUTPUT / "test_console"
    out.mkdir(parents=True, exist_ok=True)
    try:
        sign_in_as_organizer(page, stack)
        page.goto(f"{stack.url}/dashboard/console")
        page.get_by_label("Action id").fill("hearing-9")
        page.get_by_label("Title").fill("Budget hearing")
        page.get_by_label("Kind").select_option("hearing")
        page.get_by_label("Starts (wall time in the action's own zone)").fill("2026-12-10T18:30")
        page.get_by_label("The action's time zone").fill("America/Los_Angeles")
        page.get_by_label("Target postal codes").fill("94607, 94612, 10001")
        page.get_by_label("Text message (en)").fill(ALERT_SMS)
        page.locator("#email_subject_en").fill("Budget hearing")
        page.locator("#email_body_en").fill("Hi {given_name}, come to the hearing: {rsvp_link}")
        page.get_by_role("checkbox", name=re.compile("Rapid response")).check()
        expect(page.locator("#live-errors")).to_be_empty()
        page.get_by_role("button", name="Check and review").click()

        # The preview, counted by the workers from the people table: nothing is sent yet.
        table = page.locator("#audience")
        expect(table).to_be_visible(timeout=30_000)
        expect(page.locator("#audience-partial")).to_have_count(0)
        expect(table.locator('tr.asked td[data-channel="sms"]')).to_have_text("3")
        expect(table.locator('tr.asked td[data-channel="email"]')).to_have_text("2")
        rows = {r.locator("th").inner_text(): (r.locator('td[data-channel="sms"]').inner_text(), r.locator('td[data-channel="email"]').inner_text())
                for r in table.locator("tr.excluded").all()}
        assert rows == {"Left out: out of the target area": ("1", "1"), "Left out: no consent on this channel": ("1", "3"),
                        "Left out: consent covers no sponsor": ("1", "0")}
        expect(page.locator("#audience-deferred")).to_contain_text("1 text is held by the recipients' quiet hours: the first goes Wednesday, November 25, 2026, 6:00 AM PST")
        expect(page.locator("#launch-question")).to_have_text("Send to 3 people by text and 2 by email?")
        assert stack.inbox() == []
        page.screenshot(path=str(out / "console-preview.png"), full_page=True)

        # A test to myself first: the rendered messages, marked, to what I typed and nobody else.
        page.get_by_label("Your phone (for the text)").fill("+1 510 555 0999")
        page.get_by_label("Your email (for the email)").fill("organizer@example.org")
        page.get_by_role("button", name="Send me a test").click()
        expect(page.locator("#test-result")).to_contain_text("Test text sent to +15105550999.", timeout=30_000)
        expect(page.locator("#test-result")).to_contain_text("Test email sent to organizer@example.org.")
        inbox = stack.inbox()
        assert sorted(m["to"] for m in inbox) == ["+15105550999", "organizer@example.org"]
        text = next(m for m in inbox if m["to"] == "+15105550999")["body"]
        assert text.startswith("[TEST] backbone: Alexandra: emergency hearing on the budget") and text.endswith("Reply YES to RSVP, STOP to opt out")
        assert "[TEST]" in str(next(m for m in inbox if m["to"] == "organizer@example.org"))
        expect(page.locator("#launch-question")).to_have_text("Send to 3 people by text and 2 by email?")
        page.screenshot(path=str(out / "console-test-sent.png"), full_page=True)
        accessible(page, "console after a test send")

        page.get_by_role("button", name=re.compile("^Send the alert to")).click()
        expect(page.locator("#posted")).to_have_text("Alert posted. Its asks appear below as they go out.")
        expect(page).to_have_url(re.compile(r"/dashboard\?action=hearing-9$"))  # said once: a reload does not say it again

        def asked(channel):
            return sorted(m["to"] for m in stack.inbox(channel) if "hearing" in str(m).lower() and "[TEST]" not in str(m))

        eventually(lambda: asked("sms") == sorted([phone(1), phone(2)]) and asked("email") == ["a@example.org", "c@example.org"], timeout=60)
        stack.set_clock("2026-11-25T14:01:00+00:00")  # 09:01 in New York: the held text goes
        eventually(lambda: asked("sms") == sorted([phone(1), phone(2), phone(7)]), timeout=60)
        assert len(asked("sms")) == 3 and len(asked("email")) == 2  # as previewed
    finally:
        context.close()
