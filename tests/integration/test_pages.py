"""Supporters' pages end to end, in a real browser (Debian's headless Chromium through playwright):
real workers plan the asks, the real Twilio and SendGrid SDKs hand them to the sandbox, and the
links in what the sandbox received are what a supporter opens."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from playwright.sync_api import expect

from contracts.asks import ask_id
from streams.keys import person_key
from tests.factories import phone, pledge, signup
from tests.polling import eventually

from .browsers import OUTPUT, accessible
from .test_dashboard import sign_in_as_organizer
from .test_outreach import ask_states, markers, rows

pytestmark = pytest.mark.integration

SMS = {"en": "{given_name}: {action_title} at {place}, {local_time}. RSVP {rsvp_link}",
       "es": "{given_name}: {action_title} en {place}, {local_time}. Confirma: {rsvp_link}"}
EMAIL = {"en": {"subject": "{action_title}", "body": "Hi {given_name}, join us: {rsvp_link}"}}
RSVP_LINK = re.compile(r"https?://\S+/r/[\w-]+/[\w-]+")
FOOTER_LINK = re.compile(r"Unsubscribe: (https?://\S+/unsubscribe/[\w-]+/[\w-]+)")


def rapid(action_id: str, title: str, postal_codes: list[str]) -> dict:
    return {"type": "action", "event_id": f"a-{action_id}", "occurred_at": "2026-11-24T18:00:00Z", "action_id": action_id,
            "title": title, "kind": "rally", "starts_at": "2026-11-25T02:00:00Z", "time_zone": "America/Los_Angeles",
            "location": {"venue": "City Hall", "locality": "Oakland"}, "target": {"postal_codes": postal_codes},
            "templates": {"sms": SMS, "email": EMAIL}, "rapid_response": True}


def supporter(i: int, email: str | None = None, language: str = "en", scope: str = "partner") -> dict:
    item = signup(f"s-{i}", phone=phone(i), email=email, given_name=f"P{i}", postal_code="94607", language=language)
    item["consent"] = {"sms": {"granted": True, "scope": scope}, "email": {"granted": email is not None, "scope": scope}}
    return item


@pytest.fixture
def shots(request):
    folder = OUTPUT / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def phone_page(browser):
    """A 390 px phone, JavaScript off (the pages must not need it), in a zone other than the action's."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  java_script_enabled=False, timezone_id="Asia/Tokyo", locale="en-US")
    yield context.new_page()
    context.close()


@pytest.fixture
def outreach(make_stack):
    # A generous cap: an ask left out by the cap must not pass for one left out by an opt-out.
    stack = make_stack(outreach=True, partners=("backbone", "union-a"), frequency_cap=10)
    stack.start_sandbox()
    stack.start_web()
    stack.start_worker()
    return stack


def sms_for(stack, number: str, title: str) -> str:
    return next(m["body"] for m in stack.inbox("sms") if m["to"] == number and title in m["body"])


def test_a_supporter_answers_yes_on_a_phone_and_the_open_dashboard_shows_it(outreach, browser, phone_page, shots):
    stack = outreach
    # Signed up by union-a, which co-sponsors the backbone's alert: the asks, and so the RSVP, are
    # union-a's, not the action owner's.
    stack.post_all("union-a", [supporter(1, scope="coalition"), supporter(2, language="es", scope="coalition"), pledge("p-1", "vigil-1", 10)])
    eventually(lambda: stack.get("/v1/tallies").json()["totals"]["signups"] == 2)
    assert stack.post("backbone", [rapid("vigil-1", "Budget vigil", ["94607"])]).status_code == 202
    eventually(lambda: rows(stack, "vigil-1")["union-a"]["delivered"] == 2)  # the web app has read both asks too

    organizer = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in_as_organizer(organizer, stack)
    organizer.goto(f"{stack.url}/dashboard?action=vigil-1")
    rsvps = organizer.locator('#action-table tbody tr[data-partner="union-a"] td[data-metric="rsvp_yes"]')
    expect(rsvps).to_have_text("0", timeout=30_000)
    organizer.evaluate("window.__sameDocument = true")

    link = RSVP_LINK.search(sms_for(stack, phone(1), "Budget vigil")).group()
    assert len(link) < 100  # leaves room for the message in a text
    phone_page.goto(link)
    expect(phone_page.get_by_role("heading", name="Budget vigil")).to_be_visible()
    expect(phone_page.locator("main")).to_contain_text("union-a invites you")
    expect(phone_page.locator("time")).to_have_text("Tuesday, November 24, 2026, 6:00 PM PST")  # the action's zone, not Tokyo's
    expect(phone_page.locator("main")).to_contain_text("City Hall")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing to scroll sideways
    phone_page.screenshot(path=str(shots / "rsvp-phone.png"), full_page=True)
    accessible(phone_page, "RSVP page", browser)

    phone_page.get_by_role("button", name="Yes").click()  # one tap, a plain form post
    expect(phone_page.get_by_role("status")).to_contain_text("see you there")
    phone_page.screenshot(path=str(shots / "rsvp-phone-answered.png"), full_page=True)
    accessible(phone_page, "RSVP page, answered", browser)

    expect(rsvps).to_have_text("1", timeout=30_000)  # on the organizer's open page, pushed, not reloaded
    assert organizer.evaluate("window.__sameDocument") is True
    organizer.screenshot(path=str(shots / "dashboard.png"), full_page=True)
    accessible(organizer, "organizer's dashboard")
    assert rows(stack, "vigil-1")["union-a"]["rsvp_yes"] == 1 and "backbone" not in rows(stack, "vigil-1")

    # Reopened later, the link shows the answer in force; in Spanish for a Spanish speaker.
    phone_page.goto(link)
    expect(phone_page.locator("main")).to_contain_text("Your answer: Yes")
    # Changed to No: only No looks (and is, to a screen reader) pressed; a solid Yes beside it read as chosen.
    phone_page.get_by_role("button", name="No").click()
    expect(phone_page.get_by_role("status")).to_contain_text("you're down as not coming")
    expect(phone_page.get_by_role("button", name="No")).to_have_attribute("aria-pressed", "true")
    expect(phone_page.get_by_role("button", name="Yes")).to_have_attribute("aria-pressed", "false")
    fill = "el => getComputedStyle(el).backgroundColor"
    assert phone_page.get_by_role("button", name="Yes").evaluate(fill) == phone_page.locator("html").evaluate(fill)  # the page's own
    phone_page.get_by_role("button", name="Yes").click()
    expect(phone_page.get_by_role("status")).to_contain_text("see you there")
    phone_page.goto(RSVP_LINK.search(sms_for(stack, phone(2), "Budget vigil")).group())
    expect(phone_page.locator("html")).to_have_attribute("lang", "es")
    expect(phone_page.get_by_role("button", name="Sí")).to_be_visible()
    expect(phone_page.locator("time")).to_have_text("martes, 24 de noviembre de 2026, 6:00 p. m. PST")
    phone_page.screenshot(path=str(shots / "rsvp-phone-es.png"), full_page=True)
    accessible(phone_page, "RSVP page in Spanish", browser)

    stack.set_clock("2026-11-25T05:00:00+00:00")  # three hours after the start
    phone_page.goto(link)
    expect(phone_page.get_by_role("heading")).to_have_text("This RSVP link has expired")
    phone_page.screenshot(path=str(shots / "rsvp-phone-expired.png"), full_page=True)
    accessible(phone_page, "expired RSVP link", browser)
    organizer.context.close()


def test_one_click_unsubscribe_from_the_email_header_opts_out_and_later_emails_skip_them(outreach, browser, phone_page, shots):
    """Ana unsubscribes with her mail client's one-click button (the header URL); Cy from the
    link in the email's footer, ticking "stop texts too"; Dee does nothing."""
    stack = outreach
    ana, cy, dee = (1, "ana@example.org"), (3, "cy@example.org"), (4, "dee@example.org")
    mark = markers(stack)
    stack.post_all("union-a", [supporter(i, email) for i, email in (ana, cy, dee)] + mark)
    eventually(lambda: stack.get("/v1/tallies").json()["totals"]["signups"] == 3 + len(mark))
    assert stack.post("union-a", [rapid("first", "First rally", ["94607"])]).status_code == 202
    eventually(lambda: rows(stack, "first")["union-a"]["delivered"] == 6)  # three texts, three emails
    emails = {m["to"]: m for m in stack.inbox("email")}

    header = emails[ana[1]]["headers"]
    assert header["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"  # RFC 8058
    one_click = re.fullmatch(r"<(https?://[^>]+)>", header["List-Unsubscribe"]).group(1)
    assert FOOTER_LINK.search(emails[ana[1]]["text"]).group(1) == one_click  # the same link is visible in the body
    # What a mail client sends: a POST with this body, no cookies, no page.
    answer = stack.http.post(one_click, content=b"List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200

    phone_page.goto(FOOTER_LINK.search(emails[cy[1]]["text"]).group(1))
    phone_page.get_by_label("Stop text messages too").check()
    phone_page.screenshot(path=str(shots / "unsubscribe-phone.png"), full_page=True)
    accessible(phone_page, "unsubscribe page", browser)
    phone_page.get_by_role("button", name="Unsubscribe").click()
    expect(phone_page.get_by_role("status")).to_contain_text("no more emails or text messages")
    phone_page.screenshot(path=str(shots / "unsubscribe-phone-done.png"), full_page=True)
    accessible(phone_page, "unsubscribe page, done", browser)

    # Applied by the workers: Ana's email ask, Cy's email and text are opted out.
    eventually(lambda: rows(stack, "first")["union-a"]["opted_out"] == 3)

    assert stack.post("union-a", [rapid("second", "Second rally", ["94607", "94609"])]).status_code == 202
    # Once every marker (one per partition) has its text, every partition has planned "second".
    eventually(lambda: all(any(m["to"] == s["person"]["phone"] and "Second rally" in m["body"] for m in stack.inbox("sms")) for s in mark), timeout=60)
    eventually(lambda: any(m["to"] == dee[1] and m["subject"] == "Second rally" for m in stack.inbox("email")))  # emails still go out
    texts = Counter(m["to"] for m in stack.inbox("sms") if "Second rally" in m["body"])
    assert texts[phone(ana[0])] == 1 and texts[phone(dee[0])] == 1 and texts[phone(cy[0])] == 0
    assert not [m for m in stack.inbox("email") if m["subject"] == "Second rally" and m["to"] in (ana[1], cy[1])]
    states = ask_states(stack)
    secret = stack.settings.person_key_bytes()
    for i, channel in ((ana[0], "email"), (cy[0], "email"), (cy[0], "sms")):
        assert ask_id("second", person_key(secret, phone(i), None), channel) not in states  # never even planned
