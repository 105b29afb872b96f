from datetime import datetime, timedelta, timezone
from itertools import permutations

import pytest
from pydantic import ValidationError

from agents.facts import Refused, apply_action, apply_attendance, apply_pledge, inline_pledges
from contracts.facts import withdrawal_refused
from contracts.events import Envelope, partner_event
from tests.factories import action, checkin, pledge, rsvp

PHONE = "+15105550123"
T = datetime(2026, 11, 22, 15, tzinfo=timezone.utc)


def ev(item):
    return partner_event.validate_python(item)


def at(minutes: int) -> datetime:
    """When the coalition received an event: ``minutes`` after T."""
    return T + timedelta(minutes=minutes)


def attendance(steps):
    fact = None
    for partner, item, received in steps:
        fact = apply_attendance(fact, ev(item), partner, "pk", received)
    return fact


def test_rsvp_then_checkin_credits_each_to_its_poster():
    fact = attendance([("union-a", rsvp("r1", "rally-1", phone=PHONE), at(0)),
                       ("faith-b", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"), at(1))])
    assert (fact.rsvp, fact.rsvp_by, fact.attended, fact.attended_by) == ("yes", "union-a", True, "faith-b")


def test_checking_in_twice_is_one_attendance_credited_to_the_first_received():
    first = ("union-a", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"), at(0))
    second = ("faith-b", checkin("c2", "rally-1", phone=PHONE, at="2026-12-01T18:10:00Z"), at(5))
    facts = [attendance(list(order)) for order in permutations([first, second, first])]
    assert all(f == facts[0] for f in facts)
    assert facts[0].attended_by == "union-a"


def test_a_backdated_checkin_takes_no_credit():
    honest = ("union-a", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"), at(0))
    backdated = ("faith-b", checkin("c2", "rally-1", phone=PHONE, at="0001-01-01T00:00:00Z"), at(3))
    fact = attendance([honest, backdated])
    assert fact.attended_by == "union-a" and fact == attendance([backdated, honest])


def test_the_last_received_rsvp_is_in_force_whatever_the_processing_order():
    yes = ("union-a", rsvp("r1", "rally-1", "yes", phone=PHONE, at="2026-11-23T15:00:00Z"), at(0))
    no = ("union-a", rsvp("r2", "rally-1", "no", phone=PHONE, at="2026-11-22T15:00:00Z"), at(1))
    assert attendance([yes, no]).rsvp == attendance([no, yes]).rsvp == "no"
    assert attendance([no, yes, yes]) == attendance([yes, no])


def test_a_later_pledge_replaces_the_earlier_and_replays_change_nothing():
    early, late = ev(pledge("p1", "rally-1", 40)), ev(pledge("p2", "rally-1", 55))
    a = apply_pledge(apply_pledge(None, early, "union-a", at(0)), late, "union-a", at(1))
    b = apply_pledge(apply_pledge(None, late, "union-a", at(1)), early, "union-a", at(0))
    assert a == b and a.count == 55
    assert apply_pledge(a, late, "union-a", at(1)) == a


def test_an_older_pledge_posted_again_changes_nothing():
    """An outside probe: pledges of 20 then 15, then the first posted again (a webhook's retry,
    a re-run import): the pledge went back to 20. The same event (id, time and count) seen and
    replaced already is a repeat, however late; a new count under that id is no repeat."""
    p20, p15 = ev(pledge("p1", "rally-1", 20)), ev({**pledge("p2", "rally-1", 15), "occurred_at": "2026-11-23T10:00:00Z"})
    fact = apply_pledge(apply_pledge(apply_pledge(None, p20, "union-a", at(0)), p15, "union-a", at(1)), p20, "union-a", at(2))
    assert fact.count == 15
    assert apply_pledge(fact, p15, "union-a", at(3)).count == 15
    assert apply_pledge(fact, ev(pledge("p1", "rally-1", 25)), "union-a", at(3)).count == 25


def test_a_partners_own_pledge_wins_over_an_inline_one_whatever_their_times():
    env = Envelope(partner="backbone", role="backbone", received_at=at(0), event=ev(action("rally-1", {"union-a": 40, "faith-b": 10})))
    derived = inline_pledges(env)
    assert {(d.partner, d.event.count, d.inline) for d in derived} == {("union-a", 40, True), ("faith-b", 10, True)}
    inline = next(d.event for d in derived if d.partner == "union-a")
    own = ev(pledge("p9", "rally-1", 55))
    first_own = apply_pledge(apply_pledge(None, own, "union-a", at(1)), inline, "union-a", at(2), inline=True)
    first_inline = apply_pledge(apply_pledge(None, inline, "union-a", at(0), inline=True), own, "union-a", at(1))
    assert first_own.count == first_inline.count == 55  # a later action edit does not revert it


def test_an_action_belongs_to_its_first_poster_and_only_it_or_the_backbone_changes_it():
    v1 = ev(action("lock-x"))
    hijack = ev({**action("lock-x", at="9999-12-31T23:59:59Z"), "title": "Hijacked"})
    edit = ev({**action("lock-x"), "title": "Moved indoors"})
    owned = apply_action(None, v1, "faith-b", "member", at(0))
    assert owned.partner == "faith-b"
    assert apply_action(owned, hijack, "union-a", "member", at(5)) == Refused(
        "action 'lock-x' belongs to 'faith-b': only it or the backbone may change it")
    by_owner = apply_action(owned, edit, "faith-b", "member", at(6))
    by_backbone = apply_action(owned, edit, "backbone", "backbone", at(6))
    assert by_owner.action.title == by_backbone.action.title == "Moved indoors"
    assert by_owner.partner == by_backbone.partner == "faith-b"  # changes keep the owner
    # The version received last is kept, whatever order a replay applies them in.
    assert apply_action(by_owner, v1, "faith-b", "member", at(0)).action.title == "Moved indoors"


def test_an_older_version_of_an_action_posted_again_changes_nothing():
    """An outside probe: version 1, version 2, then version 1 posted again (a retry): the action
    went back to version 1, its title and its inline pledges. A version replaced already is a
    repeat, however late; a new version under an old event id is no repeat."""
    v1 = ev({**action("rally-1"), "event_id": "a-1", "title": "Old title"})
    v2 = ev({**action("rally-1"), "event_id": "a-2", "title": "New title"})
    fact = apply_action(apply_action(apply_action(None, v1, "backbone", "backbone", at(0)), v2, "backbone", "backbone", at(1)),
                        v1, "backbone", "backbone", at(2))
    assert fact.action.title == "New title"
    assert apply_action(fact, ev({**action("rally-1"), "event_id": "a-1", "title": "Third"}), "backbone", "backbone", at(3)).action.title == "Third"


def test_only_the_backbone_may_override_quiet_hours():
    loud = ev({**action("alarm"), "override_quiet_hours": True})
    assert isinstance(apply_action(None, loud, "union-a", "member", at(0)), Refused)
    assert apply_action(None, loud, "backbone", "backbone", at(0)).action.override_quiet_hours


def test_an_rsvp_posted_again_moves_no_credit():
    """The probe's finding: faith-b's RSVP, then union-a's, then faith-b's very same event posted
    again (a retry after a 503, a redelivery, a re-run import) moved the credit back to faith-b."""
    faith = rsvp("f-rsvp-1", "rally-1", "yes", phone=PHONE, at="2026-11-22T14:00:00Z")
    union = rsvp("u-rsvp-1", "rally-1", "yes", phone=PHONE, at="2026-11-22T14:30:00Z")
    fact = attendance([("faith-b", faith, at(0)), ("union-a", union, at(1)), ("faith-b", faith, at(2))])
    assert (fact.rsvp, fact.rsvp_by) == ("yes", "union-a")
    # A new answer is no repeat, even with the same event id (the RSVP page's id names the ask).
    changed = attendance([("faith-b", faith, at(0)), ("union-a", union, at(1)), ("faith-b", {**faith, "status": "no"}, at(2))])
    assert (changed.rsvp, changed.rsvp_by) == ("no", "faith-b")


def withdrawal(event_id: str, **kw):
    return {**checkin(event_id, "rally-1", phone=PHONE, at="2026-12-01T18:20:00Z"), "withdrawn": True, **kw}


def test_a_withdrawn_checkin_takes_the_attendance_back_and_a_later_checkin_counts_again():
    tap = ("union-a", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"), at(0))
    undo = ("union-a", withdrawal("c1-undo"), at(1))
    fact = attendance([tap, undo])
    assert (fact.attended, fact.attended_by, fact.checkins["union-a"].withdrawn_received) == (False, None, at(1))
    assert attendance([tap, undo, tap]) == fact  # the mistaken tap read again (a replay) stays withdrawn
    again = ("union-a", checkin("c2", "rally-1", phone=PHONE, at="2026-12-01T18:30:00Z"), at(2))
    assert attendance([tap, undo, again]).attended_by == "union-a"


def test_a_withdrawal_takes_back_only_the_partners_own_checkins_received_before_it_in_any_order():
    """union-a's wrong tap is withdrawn; faith-b checked the person in too, before and after:
    faith-b is credited, however the events are read (a replay, a merge)."""
    tap = ("union-a", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"), at(0))
    undo = ("union-a", withdrawal("c1-undo"), at(2))
    before = ("faith-b", checkin("c2", "rally-1", phone=PHONE, at="2026-12-01T18:06:00Z"), at(1))
    later = ("faith-b", checkin("c3", "rally-1", phone=PHONE, at="2026-12-01T18:30:00Z"), at(3))
    facts = [attendance(list(order)) for order in permutations([tap, undo, before, later])]
    assert all(f == facts[0] for f in facts)
    assert (facts[0].attended_by, facts[0].attended_received) == ("faith-b", at(1))  # its own first check-in: undo was union-a's
    alone = attendance([undo])  # nobody checked them in: kept, for a merge with the record that has the check-in
    assert not alone.attended and alone.first_received is None


def test_a_checkin_or_withdrawal_posted_again_is_a_repeat():
    """A retry of the mistaken tap (same event id), however late, does not check the person in
    again; nor does a withdrawal posted again take back a check-in made since (an outside probe)."""
    tap = ("union-a", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"), at(0))
    undo = ("union-a", withdrawal("w1"), at(1))
    again = ("union-a", checkin("c2", "rally-1", phone=PHONE, at="2026-12-01T18:30:00Z"), at(3))
    assert not attendance([tap, undo, (*tap[:2], at(2))]).attended
    assert attendance([tap, undo, again, (*undo[:2], at(4))]).attended_received == at(3)


def test_a_withdrawal_under_its_checkins_event_id_is_no_repeat():
    """A partner's system that withdraws a record under the record's own id, or checks someone
    in again under it: what makes a repeat is the partner, the event id, whether it withdraws and
    its time, as for RSVPs (an outside probe: the withdrawal was dropped with a 202)."""
    tap = ("union-a", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"), at(0))
    undo = ("union-a", withdrawal("c1"), at(1))
    assert not attendance([tap, undo]).attended
    assert not attendance([tap, undo, (*tap[:2], at(2)), (*undo[:2], at(3))]).attended  # retries of either: repeats
    back = ("union-a", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:40:00Z"), at(4))
    assert attendance([tap, undo, back]).attended_received == at(4)


def test_an_rsvp_naming_a_shift_answers_for_that_shift_and_yes_to_any_shift_is_yes():
    """Mobilize: registered for Saturday's and Sunday's timeslots, then cancelled Sunday's. They
    are still coming (an outside probe: the cancellation read as RSVP no for the whole action)."""
    saturday = ("union-a", {**rsvp("r-sat", "rally-1", "yes", phone=PHONE), "shift": "501"}, at(0))
    sunday = ("union-a", {**rsvp("r-sun", "rally-1", "yes", phone=PHONE), "shift": "502"}, at(1))
    cancel_sunday = ("union-a", {**rsvp("r-sun-x", "rally-1", "no", phone=PHONE), "shift": "502"}, at(2))
    facts = [attendance(list(order)) for order in permutations([saturday, sunday, cancel_sunday])]
    assert all(f == facts[0] for f in facts)
    assert (facts[0].rsvp, facts[0].rsvp_by, facts[0].rsvp_received) == ("yes", "union-a", at(0))  # since Saturday's
    assert facts[0].answer_of("union-a") == "yes"
    cancel_saturday = ("union-a", {**rsvp("r-sat-x", "rally-1", "no", phone=PHONE), "shift": "501"}, at(3))
    assert attendance([saturday, sunday, cancel_sunday, cancel_saturday]).rsvp == "no"
    # An answer for the whole action given after the shifts' is the partner's answer; one before them is not.
    whole_no = ("union-a", rsvp("r-all", "rally-1", "no", phone=PHONE), at(4))
    assert attendance([saturday, whole_no]).rsvp == "no" and attendance([whole_no, (*saturday[:2], at(5))]).rsvp == "yes"
    # The same answer given again for a shift (a Mobilize attendance edited) is no new answer: the
    # whole-action no given since stays (an outside probe: an edit made the person a yes again).
    edited = ("union-a", {**rsvp("r-sat-edit", "rally-1", "yes", phone=PHONE), "shift": "501"}, at(5))
    assert attendance([saturday, whole_no, edited]).rsvp == "no"


def test_a_withdrawal_naming_a_shift_takes_back_only_that_shifts_checkins_in_any_order():
    """A Mobilize event with two timeslots: the person came to Saturday's, was marked not
    attended on Sunday's. They turned out (an outside probe: the Sunday mark took the Saturday
    check-in back). A withdrawal naming no shift still takes back every shift's."""
    saturday = ("union-a", {**checkin("c-sat", "rally-1", phone=PHONE, at="2026-12-05T18:05:00Z"), "shift": "501"}, at(0))
    sunday = ("union-a", {**withdrawal("w-sun"), "shift": "502"}, at(1))
    facts = [attendance(list(order)) for order in permutations([saturday, sunday])]
    assert all(f == facts[0] for f in facts)
    assert (facts[0].attended_by, facts[0].attended_received) == ("union-a", at(0))
    assert not attendance([saturday, ("union-a", {**withdrawal("w-sat"), "shift": "501"}, at(2))]).attended
    assert not attendance([saturday, sunday, ("union-a", withdrawal("w-all"), at(2))]).attended
    # A check-in of the shift after its withdrawal counts again; one of no shift is not taken back by a shift's.
    again = ("union-a", {**checkin("c-sat2", "rally-1", phone=PHONE, at="2026-12-05T18:30:00Z"), "shift": "501"}, at(3))
    assert attendance([saturday, ("union-a", {**withdrawal("w-sat"), "shift": "501"}, at(2)), again]).attended_received == at(3)
    door = ("union-a", checkin("c-door", "rally-1", phone=PHONE, at="2026-12-05T18:06:00Z"), at(0))
    assert attendance([door, ("union-a", {**withdrawal("w-sat"), "shift": "501"}, at(2))]).attended


def test_a_backbone_withdrawal_takes_back_every_partners_earlier_checkins():
    a = ("union-a", checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"), at(0))
    b = ("faith-b", checkin("c2", "rally-1", phone=PHONE, at="2026-12-01T18:06:00Z"), at(1))
    fact = apply_attendance(attendance([a, b]), ev(withdrawal("w")), "hub", "pk", at(2), role="backbone")
    assert not fact.attended and fact.withdrawn_received == at(2)


def test_a_backbone_withdrawal_naming_a_shift_takes_back_every_partners_checkins_of_that_shift():
    """As the backbone's withdrawal naming no shift takes back everyone's (an outside probe: it
    took back only the backbone's own, and credit stayed with the wrong partner)."""
    a = ("union-a", {**checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z"), "shift": "sat"}, at(0))
    b = ("faith-b", {**checkin("c2", "rally-1", phone=PHONE, at="2026-12-01T18:06:00Z"), "shift": "sun"}, at(1))
    hub = ev({**withdrawal("w"), "shift": "sat"})
    fact = apply_attendance(attendance([a, b]), hub, "hub", "pk", at(2), role="backbone")
    assert (fact.attended_by, fact.attended_received) == ("faith-b", at(1))  # its Sunday check-in still counts
    late = apply_attendance(apply_attendance(attendance([b]), hub, "hub", "pk", at(2), role="backbone"), ev(a[1]), "union-a", "pk", at(0))
    assert late == fact  # the same in whatever order they are read
    assert not apply_attendance(attendance([a]), hub, "hub", "pk", at(2), role="backbone").attended
    again = ev({**checkin("c3", "rally-1", phone=PHONE, at="2026-12-01T18:30:00Z"), "shift": "sat"})
    assert apply_attendance(fact, again, "union-a", "pk", at(3)).attended_by == "faith-b"  # credit: the first received that counts


def test_only_the_credited_partner_or_the_backbone_may_withdraw_a_checkin():
    tap = apply_attendance(None, ev(checkin("c1", "rally-1", phone=PHONE, at="2026-12-01T18:05:00Z")), "union-a", "pk", at(0))
    assert "'union-a'" in withdrawal_refused(tap, ev(withdrawal("x")), "faith-b", "member")
    assert apply_attendance(tap, ev(withdrawal("x")), "faith-b", "pk", at(1)).attended_by == "union-a"  # it takes back nothing
    assert withdrawal_refused(tap, ev(withdrawal("x")), "union-a", "member") is None
    assert withdrawal_refused(tap, ev(withdrawal("x")), "coalition-bb", "backbone") is None
    assert not apply_attendance(tap, ev(withdrawal("x")), "coalition-bb", "pk", at(1), role="backbone").attended


def test_a_withdrawal_names_whom_only_and_gives_no_consent():
    with pytest.raises(ValidationError, match="a withdrawn check-in takes no consent"):
        ev(withdrawal("x", consent={"sms": True}))
    with pytest.raises(ValidationError, match="names the person by a phone or an email only"):
        ev(withdrawal("x", person={"phone": PHONE, "given_name": "Ana"}))  # the door list would show the name (an outside probe)
    with pytest.raises(ValidationError, match="not both"):
        ev(withdrawal("x", person={"phone": PHONE, "email": "ana@example.org"}))  # a mistaken undo would merge two people
    assert not ev(withdrawal("x", person={"email": "ana@example.org"})).introduces


def test_a_partner_giving_its_answer_again_takes_no_credit_back():
    """Mobilize: the person registered through faith-b's page, then texted YES to union-a's alert.
    Any later edit of the Mobilize attendance, marking them attended at the door among them, is
    polled as a new RSVP event with the same answer: it had moved the RSVP credit back to faith-b."""
    registered = rsvp("mz-7-rsvp-100", "rally-1", "yes", phone=PHONE, at="2026-11-22T14:00:00Z")
    texted = rsvp("sms:SM1", "rally-1", "yes", phone=PHONE, at="2026-11-22T14:30:00Z")
    edited = rsvp("mz-7-rsvp-200", "rally-1", "yes", phone=PHONE, at="2026-11-22T15:00:00Z")
    steps = [("faith-b", registered, at(0)), ("union-a", texted, at(1)), ("faith-b", edited, at(2))]
    fact = attendance(steps)
    assert (fact.rsvp, fact.rsvp_by, fact.rsvp_at) == ("yes", "union-a", datetime(2026, 11, 22, 14, 30, tzinfo=timezone.utc))
    # A sheet without dates imported again (dated with the file's new time): the same answer again.
    resaved = attendance([*steps, ("faith-b", {**registered, "occurred_at": "2026-11-22T16:00:00Z"}, at(3))])
    assert (resaved.rsvp, resaved.rsvp_by) == ("yes", "union-a")
    # Whatever order the three are read in.
    assert all((f.rsvp, f.rsvp_by) == ("yes", "union-a") for f in (attendance(list(o)) for o in permutations(steps)))
    # A change of answer is a new answer: cancelled on Mobilize, then registered again.
    cancelled = rsvp("mz-7-rsvp-300", "rally-1", "no", phone=PHONE, at="2026-11-22T16:00:00Z")
    again = rsvp("mz-7-rsvp-400", "rally-1", "yes", phone=PHONE, at="2026-11-22T17:00:00Z")
    assert (attendance([*steps, ("faith-b", cancelled, at(3))]).rsvp, attendance([*steps, ("faith-b", cancelled, at(3))]).rsvp_by) == ("no", "faith-b")
    back = attendance([*steps, ("faith-b", cancelled, at(3)), ("faith-b", again, at(4))])
    assert (back.rsvp, back.rsvp_by, back.rsvp_received) == ("yes", "faith-b", at(4))


def test_a_fact_written_before_rsvps_were_kept_per_partner_reads_as_its_answer_in_force():
    from contracts.facts import Attendance

    old = Attendance(action_id="rally-1", person_key="pk", rsvp="yes", rsvp_by="union-a", rsvp_at=at(1), rsvp_received=at(1))
    again = apply_attendance(old, ev(rsvp("u-2", "rally-1", "yes", phone=PHONE, at="2026-11-22T16:00:00Z")), "union-a", "pk", at(5))
    assert (again.rsvp, again.rsvp_by, again.rsvp_received) == ("yes", "union-a", at(1))


def test_the_first_rsvps_shortcut_builds_the_fact_the_general_rule_would():
    """apply_attendance builds a person's first RSVP directly (the intake's common case, measured):
    it must be the fact ``answered`` gives."""
    from agents.facts import answered, said
    from contracts.facts import Attendance

    event = ev(rsvp("r1", "rally-1", "maybe", phone=PHONE, at="2026-11-22T14:00:00Z"))
    general = answered(Attendance(action_id="rally-1", person_key="pk", first_received=at(3)),
                       {"union-a": ((at(3), "maybe", event.occurred_at),)}, {}, (said("union-a", "r1", "maybe", event.occurred_at),))
    assert apply_attendance(None, event, "union-a", "pk", at(3)) == general


def test_a_members_action_derives_its_own_pledge_only():
    # What the ingress refuses, the worker does not apply either (an event written before the rule).
    env = Envelope(partner="union-a", role="member", received_at=at(0), event=ev(action("rally-1", {"union-a": 40, "faith-b": 5000})))
    assert [(d.partner, d.event.count) for d in inline_pledges(env)] == [("union-a", 40)]


def test_an_undated_sheet_imported_again_in_another_order_is_a_repeat():
    """A sheet's undated rows take the file's time; a re-sorted copy is saved later, so its rows
    give another time under the same event ids. An outside probe: the copy checked in again
    someone withdrawn since, and gave back an RSVP the partner had changed since."""
    sheet = ("union-a", checkin("csv-1", "rally-1", phone=PHONE, at="2026-12-01T18:00:00Z"), at(0))
    undo = ("union-a", withdrawal("api-w1"), at(1))
    copy = ("union-a", checkin("csv-1", "rally-1", phone=PHONE, at="2026-12-01T19:30:00Z"), at(2))
    assert not attendance([sheet, undo, copy]).attended
    yes = ("union-a", rsvp("csv-r1", "rally-1", "yes", phone=PHONE, at="2026-12-01T18:00:00Z"), at(0))
    no = ("union-a", rsvp("api-r2", "rally-1", "no", phone=PHONE, at="2026-12-01T18:10:00Z"), at(1))
    yes_copy = ("union-a", rsvp("csv-r1", "rally-1", "yes", phone=PHONE, at="2026-12-01T19:30:00Z"), at(2))
    assert attendance([yes, no, yes_copy]).rsvp == "no"
    # The RSVP page keeps one event id per ask: a changed answer, and a change back, are heard.
    page = [("union-a", rsvp("page-1", "rally-1", s, phone=PHONE, at=f"2026-12-01T18:0{i}:00Z"), at(i)) for i, s in enumerate(("yes", "no", "yes"))]
    assert attendance(page[:2]).rsvp == "no" and attendance(page).rsvp == "yes"


def test_credit_stays_with_the_first_checkin_after_a_withdrawal_however_many_follow():
    """union-a taps, undoes, taps again; faith-b checks the person in; union-a taps once more.
    union-a's second tap still counts and was received first. An outside probe: the last tap
    was taken for union-a's, and the credit moved to faith-b."""
    steps = [("union-a", checkin("c1", "rally-1", phone=PHONE), at(0)), ("union-a", withdrawal("w1"), at(1)),
             ("union-a", checkin("c2", "rally-1", phone=PHONE), at(2)), ("faith-b", checkin("c3", "rally-1", phone=PHONE), at(3)),
             ("union-a", checkin("c4", "rally-1", phone=PHONE), at(4))]
    facts = [attendance(list(order)) for order in permutations(steps)]
    assert all((f.attended_by, f.attended_received) == ("union-a", at(2)) for f in facts), {(f.attended_by, f.attended_received) for f in facts}


def test_the_same_answer_given_many_times_keeps_the_time_it_was_first_given():
    """faith-b yes, union-a no, then faith-b's yes 20 times more: union-a's no stays in force. An
    outside probe: past 20 answers kept per partner, the first yes was dropped and the run of
    yeses seemed to start after union-a's no."""
    first = ("faith-b", rsvp("g0", "rally-1", "yes", phone=PHONE), at(0))
    union = ("union-a", rsvp("u1", "rally-1", "no", phone=PHONE), at(1))
    again = [("faith-b", rsvp(f"g{i}", "rally-1", "yes", phone=PHONE, at=f"2026-11-22T16:{i:02d}:00Z"), at(1 + i)) for i in range(1, 26)]
    fact = attendance([first, union, *again])
    assert (fact.rsvp, fact.rsvp_by) == ("no", "union-a")
    assert len(fact.rsvps["faith-b"]) <= 20
