"""The door check-in page on a volunteer's phone (Debian's headless Chromium, driven by
playwright) against a running stack: embedded broker, worker, web app."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
from playwright.sync_api import Page, Route, expect

from tests.factories import action, checkin, phone, rsvp, signup
from tests.integration.browsers import OUTPUT, accessible
from tests.integration.test_dashboard import choose_password, invite
from tests.polling import eventually

pytestmark = pytest.mark.integration

ANA, BEN, CY, DEE = phone(1), phone(2), phone(3), phone(4)


@pytest.fixture
def door(make_stack):
    """rally-1 under way; union-a signed up Ana and Ben and RSVP'd them yes; faith-b signed up
    Cy and RSVP'd her yes."""
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    started = (datetime.now(timezone.utc) - timedelta(minutes=30)).isoformat()
    stack.post_all("union-a", [{**action("rally-1", {"union-a": 10}), "starts_at": started}])
    stack.post_all("union-a", [signup("s1", phone=ANA, given_name="Ana", family_name="Díaz"), signup("s2", phone=BEN, given_name="Ben", family_name="Okafor"),
                               rsvp("r1", "rally-1", phone=ANA), rsvp("r2", "rally-1", phone=BEN)])
    stack.post_all("faith-b", [signup("s3", phone=CY, given_name="Cy"), rsvp("r3", "rally-1", phone=CY)])
    return stack


def named(event: dict, given: str, family: str) -> dict:
    """An RSVP or check-in that names the person (it introduces them)."""
    return {**event, "person": {**event["person"], "given_name": given, "family_name": family}}


@contextmanager
def volunteer_phone(door, browser, rsvp_yes: int, viewport: dict | None = None) -> Iterator[Page]:  # noqa: ANN001
    """A union-a volunteer's phone, signed in, once the web app has read the action (union-a's
    ``rsvp_yes`` RSVPs by then); closed after, however the test ends."""
    context = browser.new_context(viewport=viewport or {"width": 375, "height": 667}, has_touch=True, is_mobile=True)
    try:
        page = context.new_page()
        choose_password(page, invite(door, "door@union-a.example.org", "--partner", "union-a", "--role", "viewer"))
        eventually(lambda: door.action_rows("rally-1")["union-a"]["rsvp_yes"] == rsvp_yes)
        yield page
    finally:
        context.close()


def union_attended(stack) -> int:
    return stack.action_rows("rally-1").get("union-a", {}).get("attended", 0)


def test_a_volunteer_checks_in_an_rsvp_and_a_walk_in_and_a_tap_made_offline_counts_once(door, browser):  # noqa: F811
    out = OUTPUT / "test_door_check_in"
    out.mkdir(parents=True, exist_ok=True)
    with volunteer_phone(door, browser, rsvp_yes=2, viewport={"width": 390, "height": 844}) as page:
        page.goto(f"{door.url}/dashboard/checkin/rally-1")
        people = page.locator("#people")
        expect(people).to_contain_text("Ana Díaz", timeout=30_000)
        expect(people).to_contain_text("Ben Okafor")
        expect(people).not_to_contain_text("Cy")  # faith-b's person
        expect(page.locator(".qr svg")).to_be_visible()

        # An RSVP'd person, found by name
        page.get_by_label("Find by name or last 4 digits of their phone").fill("ana")
        expect(people.locator("li")).to_have_count(1)
        people.get_by_role("button", name="Check in Ana Díaz").click()
        expect(page.locator("#flash")).to_contain_text("Checked in: Ana Díaz.")
        expect(people.locator('li[class="in"]')).to_contain_text("✓ Checked in")  # sent, not waiting

        # A walk-in, with consent to texts
        page.get_by_label("First name", exact=True).fill("Dee")
        page.get_by_label("Last name", exact=True).fill("Walker")
        page.get_by_label("Phone", exact=True).fill(DEE)
        page.get_by_label("by text message").check()
        page.get_by_role("button", name="Check in walk-in").click()
        expect(page.locator("#queued")).to_be_hidden(timeout=15_000)
        eventually(lambda: union_attended(door) == 2, timeout=30)

        # Offline at the door: the tap waits on the phone, then goes; its first answer is lost on
        # the way back, so the phone sends the same event again.
        page.context.set_offline(True)
        page.get_by_label("Find by name or last 4 digits of their phone").fill(BEN[-4:])
        people.get_by_role("button", name="Check in Ben Okafor").click()
        expect(page.locator("#queued")).to_have_text(" (1 waiting to be sent)")
        expect(page.locator("#net")).to_have_attribute("data-state", "offline")
        page.screenshot(path=str(out / "offline-queued-390.png"), full_page=True)
        accessible(page, "door page, a check-in waiting offline")
        posts: list[str] = []
        online = False

        def lose_the_first_answer(route: Route) -> None:
            if route.request.method != "POST":
                return route.continue_()
            if not online:
                return route.abort("internetdisconnected")  # a retry that fires while still offline
            posts.append(route.request.post_data or "")
            if len(posts) == 1:
                route.fetch()  # the server takes it...
                return route.abort("connectionreset")  # ...and the answer never reaches the phone
            route.continue_()

        page.route(re.compile(r".*/dashboard/checkin/rally-1$"), lose_the_first_answer)
        online = True
        page.context.set_offline(False)
        expect(page.locator("#queued")).to_be_hidden(timeout=30_000)
        expect(page.locator("#net")).to_have_attribute("data-state", "online")
        assert len(posts) == 2 and posts[0] == posts[1]  # the same event id, twice
        assert "event_id=" in posts[0]

        eventually(lambda: union_attended(door) == 3, timeout=30)
        page.get_by_label("Find by name or last 4 digits of their phone").fill("")
        expect(page.locator("#checked-in")).to_have_text("3")
        page.reload()  # from the server's list, not the phone's memory
        expect(page.locator("#checked-in")).to_have_text("3", timeout=15_000)
        expect(people.locator("li.in")).to_have_count(3)
        page.screenshot(path=str(out / "door-390.png"), full_page=True)
        accessible(page, "door page")
        assert union_attended(door) == 3 and door.action_rows("rally-1")["union-a"]["rsvp_yes"] == 2

        # One line per person, however they are known (an outside probe). faith-b's sign-ups link
        # Kim's and Mo's phones and emails. union-a RSVP'd Kim by phone and checked her in by
        # email: one line, not a walk-in. It RSVP'd Mo by email, and faith-b checked him in by
        # phone: the tallies count him in, under the person's key, and so does the list.
        door.post_all("faith-b", [signup("s5", phone=phone(5), email="kim@example.org", given_name="Kim"),
                                  signup("s6", phone=phone(6), email="mo@example.org", given_name="Mo")])
        door.post_all("union-a", [named(rsvp("r5", "rally-1", phone=phone(5)), "Kim", "Lee"), named(checkin("c5", "rally-1", email="kim@example.org"), "Kim", "Lee"),
                                  named(rsvp("r6", "rally-1", email="mo@example.org"), "Mo", "Ruiz")])
        door.post_all("faith-b", [checkin("c6", "rally-1", phone=phone(6))])
        eventually(lambda: union_attended(door) == 4 and door.action_rows("rally-1").get("faith-b", {}).get("attended") == 1, timeout=30)
        page.reload()
        expect(people.locator("li", has_text="Kim Lee")).to_have_count(1, timeout=15_000)
        expect(people.locator("li.in", has_text="Kim Lee")).to_have_count(1)
        expect(people.locator("li.in", has_text="Mo Ruiz")).to_have_count(1)
        expect(page.locator("#checked-in")).to_have_text("5")

        # A wrong tap: Ana's check-in is taken back with "Undo"; the tallies no longer count her.
        page.get_by_label("Find by name or last 4 digits of their phone").fill("ana")
        people.get_by_role("button", name="Undo the check-in of Ana Díaz").click()
        expect(page.locator("#flash")).to_contain_text("Check-in withdrawn: Ana Díaz.")
        eventually(lambda: union_attended(door) == 3, timeout=30)
        page.reload()
        expect(page.locator("#checked-in")).to_have_text("4", timeout=15_000)
        expect(people.locator("li", has_text="Ana Díaz").get_by_role("button", name="Check in Ana Díaz")).to_be_visible()


def test_a_double_tap_keyboard_use_and_curly_apostrophes_at_the_door(door, browser):
    """Outside probes on a phone: a double tap on "Check in" hit the "Undo" that took its place
    once the answer came, and took the check-in back; focus went to the page's top at every
    answer and every refresh; "o'brien" found nobody called O’Brien."""
    door.post_all("union-a", [named(rsvp("r7", "rally-1", phone=phone(7)), "Seán", "O’Brien")])
    with volunteer_phone(door, browser, rsvp_yes=3) as page:
        page.clock.install()
        page.clock.pause_at(datetime.now(timezone.utc) + timedelta(seconds=5))  # the page's timers move when the test says
        page.goto(f"{door.url}/dashboard/checkin/rally-1")
        people = page.locator("#people")
        expect(people).to_contain_text("Seán O’Brien", timeout=30_000)
        page.get_by_label("Find by name or last 4 digits of their phone").fill("o'brien")
        expect(people.locator("li")).to_have_count(1)
        expect(people).to_contain_text("Seán O’Brien")

        people.get_by_role("button", name="Check in Seán O’Brien").click()
        undo = people.get_by_role("button", name="Undo the check-in of Seán O’Brien")
        expect(undo).to_be_visible()
        undo.click()  # the double tap's second tap, where "Check in" was
        expect(page.locator("#flash")).to_contain_text("Checked in: Seán O’Brien.")
        expect(people.locator("li.in")).to_have_count(1)
        eventually(lambda: union_attended(door) == 1, timeout=30)
        # At 375 px the name keeps a readable width beside "✓ Checked in" and "Undo" (it had 80 px, "Support/er1").
        eventually(lambda: (people.locator(".name").first.bounding_box() or {"width": 0})["width"] >= 150, timeout=10)  # None while the list is redrawn

        page.clock.fast_forward(2_000)  # a deliberate undo, later
        undo.click()
        expect(page.locator("#flash")).to_contain_text("Check-in withdrawn: Seán O’Brien.")
        eventually(lambda: union_attended(door) == 0, timeout=30)

        # By keyboard: focus stays on the person through the tap, the answer and the list's refresh.
        check_in = people.get_by_role("button", name="Check in Seán O’Brien")
        check_in.focus()
        page.keyboard.press("Enter")
        expect(undo).to_be_focused()
        page.clock.run_for(11_000)  # the roster is fetched again and the list drawn anew
        expect(undo).to_be_focused()
        eventually(lambda: union_attended(door) == 1, timeout=30)

        page.get_by_role("link", name="Not on the list? Add a walk-in").click()  # past a long list, in one tap
        expect(page.get_by_role("heading", name="Walk-in")).to_be_in_viewport()


def test_oneil_finds_o_neil_as_you_type_and_a_refused_walk_in_comes_back_into_its_form(door, browser):
    """Outside probes: the live search kept apostrophes that the server drops ("oneil" found
    nobody called O’Neil until the page was reloaded without its script); and a walk-in the
    server refused came back as a message at the top of the page with its form emptied: the
    volunteer had to ask the person for everything again, consent included."""
    door.post_all("union-a", [named(rsvp("r8", "rally-1", phone=phone(8)), "Siobhán", "O’Neil")])
    with volunteer_phone(door, browser, rsvp_yes=3) as page:
        page.goto(f"{door.url}/dashboard/checkin/rally-1")
        people = page.locator("#people")
        expect(people).to_contain_text("Siobhán O’Neil", timeout=30_000)
        expect(page.locator("#net")).to_have_text("Online.")  # the script says it; the page as served does not
        page.get_by_label("Find by name or last 4 digits of their phone").fill("oneil")
        expect(people.locator("li")).to_have_count(1)
        expect(people).to_contain_text("Siobhán O’Neil")

        walk_in = page.locator("#walk-in")
        walk_in.get_by_label("First name").fill("Mañuel")
        walk_in.get_by_label("Last name").fill("O'Brien")
        walk_in.get_by_label("Phone").fill("510-555-CALL")
        walk_in.get_by_label("by text message").check()
        walk_in.get_by_role("button", name="Check in walk-in").click()
        expect(walk_in.locator("#walk-in-problem")).to_contain_text("not a phone number", timeout=30_000)
        expect(walk_in.get_by_label("First name")).to_have_value("Mañuel")
        expect(walk_in.get_by_label("Last name")).to_have_value("O'Brien")
        expect(walk_in.get_by_label("Phone")).to_have_value("510-555-CALL")
        expect(walk_in.get_by_label("Phone")).to_have_attribute("aria-invalid", "true")
        expect(walk_in.get_by_label("Phone")).to_be_focused()
        expect(walk_in.get_by_label("by text message")).to_be_checked()

        walk_in.get_by_label("Phone").fill(phone(9))  # mended: checked in, the form emptied for the next one
        walk_in.get_by_role("button", name="Check in walk-in").click()
        expect(page.locator("#flash")).to_contain_text("Checked in: Mañuel O'Brien.", timeout=30_000)
        expect(walk_in.get_by_label("First name")).to_have_value("")
        expect(walk_in.locator("#walk-in-problem")).to_be_hidden()
        expect(walk_in.get_by_label("Phone")).not_to_have_attribute("aria-invalid", "true")
