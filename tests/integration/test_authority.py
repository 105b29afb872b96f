"""Authority in a coalition, through the real ingress and worker: what an outside tester could do
to another partner's actions, figures, credit and people, now refused or harmless."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.factories import action, checkin, phone, pledge, signup
from tests.integration.test_outreach import person, rapid, sms_to
from tests.polling import eventually

pytestmark = pytest.mark.integration


def test_another_partners_action_figures_and_credit_cannot_be_taken(make_stack):
    stack = make_stack(partners=("backbone", "union-a", "faith-b"))
    stack.start_web()
    stack.start_worker()
    b = stack.post("faith-b", [action("lock-x"), pledge("fb-p", "lock-x", 90)])
    assert b.json()["accepted"] == 2
    eventually(lambda: stack.action_rows("lock-x")["faith-b"]["pledged"] == 90)

    # The hijack: A re-posts B's action far in the future, retitled, with B's pledge at 0.
    hijack = {**action("lock-x", {"faith-b": 0}, at="9999-12-31T23:59:59Z"), "title": "Hijacked", "event_id": "h-1"}
    r = stack.post("union-a", [hijack])
    assert r.status_code == 422 and r.json()["rejected"][0]["index"] == 0
    assert {e["field"] for e in r.json()["rejected"][0]["errors"]} == {"occurred_at", "action_id", "pledges.0.partner"}
    # Even dated now, it is refused by name.
    r = stack.post("union-a", [{**hijack, "occurred_at": "2026-11-22T15:00:00Z"}])
    assert r.json()["rejected"][0]["errors"][0]["message"] == "action 'lock-x' belongs to 'faith-b': only it or the backbone may change it"
    # B's own edit still applies and its pledge stands.
    assert stack.post("faith-b", [{**action("lock-x"), "title": "Lock-in at the Capitol", "event_id": "a-2"}]).json()["accepted"] == 1
    eventually(lambda: stack.get("/v1/actions/lock-x/tallies").json()["title"] == "Lock-in at the Capitol")
    assert stack.action_rows("lock-x")["faith-b"]["pledged"] == 90

    # Backdated credit: B checks Ana in; A then posts a check-in dated the year 1.
    stack.post_all("faith-b", [signup("s-ana", phone=phone(1)), checkin("c-b", "lock-x", phone=phone(1))])
    eventually(lambda: stack.action_rows("lock-x")["faith-b"]["attended"] == 1)
    stack.post_all("union-a", [checkin("c-a", "lock-x", phone=phone(1), at="0001-01-01T00:00:00Z"), pledge("ua-p", "lock-x", 1)])
    eventually(lambda: stack.action_rows("lock-x")["union-a"]["pledged"] == 1)  # A's events are processed
    assert stack.action_rows("lock-x")["faith-b"]["attended"] == 1 and stack.action_rows("lock-x")["union-a"]["attended"] == 0

    # The backbone's inline pledge, the partner's own, then a typo fix by the backbone.
    stack.post_all("backbone", [action("hearing", {"union-a": 40})])
    eventually(lambda: stack.action_rows("hearing")["union-a"]["pledged"] == 40)
    stack.post_all("union-a", [pledge("ua-h", "hearing", 55)])
    eventually(lambda: stack.action_rows("hearing")["union-a"]["pledged"] == 55)
    stack.post_all("backbone", [{**action("hearing", {"union-a": 40}), "title": "Budget hearing", "event_id": "a-h2"}])
    eventually(lambda: stack.get("/v1/actions/hearing/tallies").json()["title"] == "Budget hearing")
    assert stack.action_rows("hearing")["union-a"]["pledged"] == 55


def outreach_stack(make_stack):
    """The backbone and two members, with the sandbox providers, a web app and a worker."""
    stack = make_stack(outreach=True, partners=("backbone", "union-a", "faith-b"))
    stack.start_sandbox()
    stack.start_web()
    stack.start_worker()
    return stack


def test_a_member_alert_reaches_only_people_whose_consent_covers_a_sponsor(make_stack):
    stack = outreach_stack(make_stack)
    stack.post_all("union-a", [person(1, scope="partner")])
    stack.post_all("faith-b", [person(2, scope="partner") | {"event_id": "f-2"}, person(3, scope="coalition") | {"event_id": "f-3"}])
    eventually(lambda: stack.get("/v1/tallies").json()["totals"]["signups"] == 3)

    loud = rapid("blast", "Blast", ["94607"], override_quiet_hours=True)
    r = stack.post("union-a", [loud])
    assert r.status_code == 422 and r.json()["rejected"][0]["errors"][0]["field"] == "override_quiet_hours"

    assert stack.post("union-a", [rapid("vigil", "Union vigil", ["94607"])]).status_code == 202
    eventually(lambda: sms_to(stack, "Union vigil") == Counter({phone(1): 1, phone(3): 1}))

    # faith-b co-sponsors the next one: its own people are reached too.
    stack.post_all("union-a", [action("march", at="2026-11-24T18:00:00Z")])
    eventually(lambda: stack.get("/v1/actions/march/tallies").status_code == 200)
    stack.post_all("faith-b", [pledge("fb-m", "march", 5)])
    eventually(lambda: stack.action_rows("march")["faith-b"]["pledged"] == 5)
    assert stack.post("union-a", [rapid("march", "Joint march", ["94607"], event_id="a-march-2")]).status_code == 202
    eventually(lambda: sms_to(stack, "Joint march") == Counter({phone(1): 1, phone(2): 1, phone(3): 1}))
    assert phone(2) not in sms_to(stack, "Union vigil")


def test_a_partner_cannot_make_another_partners_person_read_as_erased(make_stack):
    stack = outreach_stack(make_stack)
    stack.post_all("faith-b", [person(2, scope="partner")])
    eventually(lambda: stack.get("/v1/tallies").json()["totals"]["signups"] == 1)

    # A signs B's supporter up again, with a name shaped like a sealed field: the newest sign-up's
    # name wins, and one no key opens would leave the person unreadable, as if erased.
    r = stack.post("union-a", [signup("ua-2", phone=phone(2), given_name="enc1:00aa:AAAA")])
    assert r.status_code == 422 and [e["field"] for e in r.json()["rejected"][0]["errors"]] == ["person.given_name"]

    assert stack.post("faith-b", [rapid("vigil", "Faith vigil", ["94607"])]).status_code == 202
    eventually(lambda: sms_to(stack, "Faith vigil") == Counter({phone(2): 1}))
