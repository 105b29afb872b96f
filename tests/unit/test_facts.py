from itertools import permutations

from agents.facts import apply_action, apply_attendance, apply_pledge, inline_pledges
from contracts.events import Envelope, partner_event
from tests.factories import action, checkin, pledge, rsvp

PHONE = "+15105550123"


def ev(item):
    return partner_event.validate_python(item)


def attendance(steps):
    fact = None
    for partner, item in steps:
        fact = apply_attendance(fact, ev(item), partner, "pk")
    return fact


def test_rsvp_then_checkin_credits_each_to_its_poster():
    fact = attendance([("union-a", rsvp("r1", "rally-1", phone=PHONE)), ("faith-b", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"))])
    assert (fact.rsvp, fact.rsvp_by, fact.attended, fact.attended_by) == ("yes", "union-a", True, "faith-b")


def test_checking_in_twice_is_one_attendance_credited_to_the_first():
    first = ("union-a", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"))
    second = ("faith-b", checkin("c2", "rally-1", phone=PHONE, at="2026-12-01T18:10:00Z"))
    facts = {attendance(list(order)) for order in permutations([first, second, first])}
    assert len(facts) == 1
    assert facts.pop().attended_by == "union-a"


def test_the_latest_rsvp_is_in_force_whatever_the_arrival_order():
    yes = ("union-a", rsvp("r1", "rally-1", "yes", phone=PHONE, at="2026-11-22T15:00:00Z"))
    no = ("union-a", rsvp("r2", "rally-1", "no", phone=PHONE, at="2026-11-23T15:00:00Z"))
    assert attendance([yes, no]).rsvp == attendance([no, yes]).rsvp == "no"
    assert attendance([no, yes, yes]) == attendance([yes, no])


def test_a_later_pledge_replaces_the_earlier_and_replays_change_nothing():
    early = ev(pledge("p1", "rally-1", 40, at="2026-11-20T00:00:00Z"))
    late = ev(pledge("p2", "rally-1", 55, at="2026-11-21T00:00:00Z"))
    a = apply_pledge(apply_pledge(None, early, "union-a"), late, "union-a")
    b = apply_pledge(apply_pledge(None, late, "union-a"), early, "union-a")
    assert a == b and a.count == 55
    assert apply_pledge(a, late, "union-a") == a


def test_an_actions_inline_pledges_become_pledges_of_the_named_partners():
    env = Envelope(partner="backbone", received_at="2026-11-22T15:00:00Z", event=ev(action("rally-1", {"union-a": 40, "faith-b": 10})))
    derived = inline_pledges(env)
    assert {(d.partner, d.event.count) for d in derived} == {("union-a", 40), ("faith-b", 10)}
    own = ev(pledge("p9", "rally-1", 60, at="2026-11-23T00:00:00Z"))
    inline = apply_pledge(None, derived[0].event, "union-a")
    assert apply_pledge(inline, own, "union-a").count == 60


def test_the_latest_action_version_is_kept():
    v1 = ev(action("rally-1", at="2026-11-20T00:00:00Z"))
    v2 = ev({**action("rally-1", at="2026-11-21T00:00:00Z"), "title": "Moved indoors"})
    assert apply_action(apply_action(None, v2, "b"), v1, "b").action.title == "Moved indoors"
