import random
from datetime import datetime, timezone

from contracts.events import ActionEvent
from contracts.facts import ActionRecord, Attendance, Membership, Pledge
from contracts.tallies import TallyBook
from tests.factories import action

T = datetime(2026, 11, 22, tzinfo=timezone.utc)


def records():
    """A stream of fact-topic records, including superseded versions of the same keys."""
    out = [
        ("action", "rally-1", ActionRecord(partner="union-a", action=ActionEvent.model_validate(action("rally-1")))),
        ("pledge", "rally-1|union-a", Pledge(action_id="rally-1", partner="union-a", count=30, occurred_at=T, event_id="p1")),
        ("pledge", "rally-1|union-a", Pledge(action_id="rally-1", partner="union-a", count=40, occurred_at=T, event_id="p2")),
        ("pledge", "rally-1|faith-b", Pledge(action_id="rally-1", partner="faith-b", count=10, occurred_at=T, event_id="p3")),
        ("membership", "union-a|pk1", Membership(partner="union-a", person_key="pk1", joined_at=T)),
        ("membership", "faith-b|pk1", Membership(partner="faith-b", person_key="pk1", joined_at=T)),
        ("attendance", "rally-1|pk1", Attendance(action_id="rally-1", person_key="pk1", rsvp="yes", rsvp_at=T, rsvp_by="union-a")),
        ("attendance", "rally-1|pk1", Attendance(action_id="rally-1", person_key="pk1", rsvp="yes", rsvp_at=T, rsvp_by="union-a", attended_at=T, attended_by="union-a")),
        ("attendance", "rally-1|pk2", Attendance(action_id="rally-1", person_key="pk2", rsvp="yes", rsvp_at=T, rsvp_by="faith-b")),
        ("attendance", "rally-1|pk2", Attendance(action_id="rally-1", person_key="pk2", rsvp="no", rsvp_at=T, rsvp_by="faith-b")),
    ]
    return out


def book_of(recs):
    book = TallyBook()
    for kind, key, fact in recs:
        book.apply(kind, key, fact)
    return book


def test_counts_are_the_latest_fact_per_key():
    t = book_of(records()).action("rally-1")
    rows = {r.partner: r for r in t.partners}
    assert (rows["union-a"].pledged, rows["union-a"].rsvp_yes, rows["union-a"].attended) == (40, 1, 1)
    assert rows["union-a"].production_ratio == 0.025
    assert (rows["faith-b"].pledged, rows["faith-b"].rsvp_yes, rows["faith-b"].attended) == (10, 0, 0)
    assert rows["faith-b"].production_ratio == 0.0
    assert (t.totals.pledged, t.totals.rsvp_yes, t.totals.attended) == (50, 1, 1)


def test_duplicates_and_replays_do_not_move_a_number():
    once = book_of(records())
    recs = records()
    replayed = book_of(recs + recs + recs[4:] + recs[-2:])  # the tail of each key ends the same
    assert replayed.action("rally-1") == once.action("rally-1")
    assert replayed.coalition() == once.coalition()


def test_any_duplication_that_keeps_each_keys_last_value_gives_the_same_tallies():
    rng = random.Random(7)
    expected = book_of(records()).coalition()
    for _ in range(50):
        recs = records()
        noisy = recs + [rng.choice(recs) for _ in range(10)] + _last_per_key(recs)
        assert book_of(noisy).coalition() == expected


def _last_per_key(recs):
    last = {}
    for kind, key, fact in recs:
        last[(kind, key)] = (kind, key, fact)
    return list(last.values())


def test_coalition_signups_are_distinct_partner_memberships():
    c = book_of(records() + records()).coalition()
    assert c.totals.signups == 2
    assert {p.partner: p.signups for p in c.partners} == {"union-a": 1, "faith-b": 1}
    assert c.totals.actions == 1


def test_a_tombstone_removes_a_facts_contribution():
    book = book_of(records())
    book.apply("attendance", "rally-1|pk1", None)
    assert book.action("rally-1").totals.attended == 0


def test_nothing_pledged_means_no_ratio():
    book = TallyBook()
    book.apply("attendance", "r|pk", Attendance(action_id="r", person_key="pk", attended_at=T, attended_by="x"))
    assert book.action("r").partners[0].production_ratio is None


def test_a_pledge_of_0_gives_its_partner_a_row():
    """A pledge of 0 co-sponsors an alert (README: "a pledge of 0 co-sponsors without a
    number"): the partner is listed with 0 pledged, in the action and across the coalition (an
    outside probe: it had no row at all until someone turned out through it)."""
    book = book_of(records()[:1] + [("pledge", "rally-1|faith-c", Pledge(action_id="rally-1", partner="faith-c", count=0, occurred_at=T, event_id="p9"))])
    [row] = book.action("rally-1").partners
    assert (row.partner, row.pledged, row.production_ratio) == ("faith-c", 0, None)
    assert [(p.partner, p.pledged) for p in book.coalition().partners] == [("faith-c", 0)]
    book.apply("pledge", "rally-1|faith-c", None)  # gone: so is its row
    assert book.action("rally-1").partners == [] and book.coalition().partners == []


def test_counts_for_an_action_nobody_posted_show_once_it_is_posted():
    recs = records()
    unposted = book_of(recs[1:])
    assert unposted.action_ids() == set() and not unposted.knows_action("rally-1")
    c = unposted.coalition()
    assert (c.totals.actions, c.totals.pledged, c.totals.rsvp_yes, c.totals.signups) == (0, 0, 0, 2)
    posted = book_of(recs[1:] + recs[:1])
    assert posted.coalition() == book_of(recs).coalition() and posted.coalition().totals.pledged == 50


def came(action_id, person, rsvp_by=None, attended_by=None, rsvp="yes"):
    return ("attendance", f"{action_id}|{person}", Attendance(action_id=action_id, person_key=person, rsvp=rsvp if rsvp_by else None,
                                                              rsvp_at=T if rsvp_by else None, rsvp_by=rsvp_by, attended_at=T if attended_by else None,
                                                              attended_by=attended_by))


def posted(action_id):
    return ("action", action_id, ActionRecord(partner="union-a", action=ActionEvent.model_validate(action(action_id))))


def test_people_are_counted_once_per_action_and_coalition_wide_and_show_rate_is_per_rsvping_partner():
    book = book_of([
        posted("rally-1"), posted("rally-2"),
        came("rally-1", "ana", "union-a", "faith-b"),   # union-a's RSVP, faith-b checked her in
        came("rally-1", "ben", "union-a"),              # said yes, did not come
        came("rally-1", "cy", None, "union-a"),         # came without an RSVP
        came("rally-2", "ana", "faith-b", "faith-b"),   # Ana again, at the next action
        came("rally-3", "dee", "union-a", "union-a"),   # an action nobody posted (yet)
    ])
    rally = book.action("rally-1")
    rows = {r.partner: r for r in rally.partners}
    assert (rows["union-a"].rsvp_yes, rows["union-a"].showed, rows["union-a"].show_rate) == (2, 1, 0.5)
    assert (rows["faith-b"].attended, rows["faith-b"].show_rate) == (1, None)
    assert (rally.totals.unique_rsvp_yes, rally.totals.unique_attended, rally.totals.show_rate) == (2, 2, 0.5)
    totals = book.coalition().totals
    assert (totals.attended, totals.unique_attended, totals.rsvp_yes, totals.unique_rsvp_yes) == (3, 2, 3, 2)
    book.apply(*posted("rally-3"))  # counted from the moment it is posted
    assert (book.coalition().totals.unique_attended, book.coalition().totals.unique_rsvp_yes) == (3, 3)
    book.apply("action", "rally-2", None)
    book.apply(*came("rally-1", "ana", "union-a", None))  # her check-in at rally-1 withdrawn
    assert book.coalition().totals.unique_attended == 2  # cy, dee


def test_overlap_and_merges_are_counted_from_their_facts():
    from contracts.identity import Merge

    member = lambda p, k: ("membership", f"{p}|{k}", Membership(partner=p, person_key=k, joined_at=T))  # noqa: E731
    book = book_of([member("union-a", "ana"), member("faith-b", "ana"), member("seniors-c", "ana"), member("union-a", "ben"),
                    member("faith-b", "cy"), member("union-a", "cy"), member("union-a", "ben"),
                    ("merge", "ana-email", Merge(person="ana-email", into="ana", at=T))])
    assert book.coalition().identity.model_dump() == {"merges": 1, "overlap": 2}
    book.apply("membership", "union-a|cy", None)  # folded into another person
    book.apply("merge", "ana-email", None)
    assert book.coalition().identity.model_dump() == {"merges": 0, "overlap": 1}


def test_conversion_across_actions_counts_the_rsvps_of_the_actions_asked_about():
    # RSVP yes ÷ asked over every action divided the RSVPs of actions nobody was asked about by
    # the asks of others: a newcomer saw a coalition conversion of 1.33 and a partner's 0.83
    # with no RSVP on the only action it asked for.
    from contracts.asks import AskFact, ask_id

    recs = [("action", a, ActionRecord(partner="union-a", action=ActionEvent.model_validate(action(a)))) for a in ("rally-1", "alert-2")]
    recs += [("attendance", f"rally-1|pk{i}", Attendance(action_id="rally-1", person_key=f"pk{i}", rsvp="yes", rsvp_at=T, rsvp_by="union-a"))
             for i in range(3)]  # the sign-in sheet's RSVPs: nobody was asked about rally-1
    recs += [("ask", ask_id("alert-2", f"pk{i}", "sms"), AskFact(ask_id=ask_id("alert-2", f"pk{i}", "sms"), action_id="alert-2", person_key=f"pk{i}",
                                                                 channel="sms", partner="union-a", status="delivered", updated_at=T)) for i in range(4)]
    recs += [("attendance", "alert-2|pk0", Attendance(action_id="alert-2", person_key="pk0", rsvp="yes", rsvp_at=T, rsvp_by="union-a"))]
    book = book_of(recs)
    assert book.action("rally-1").totals.conversion is None and book.action("alert-2").totals.conversion == 0.25
    coalition = book.coalition()
    (union,) = coalition.partners
    assert (union.rsvp_yes, union.asked_sms, union.conversion) == (4, 4, 0.25)  # 1 RSVP of the asked action ÷ 4 asks
    assert coalition.totals.conversion == 0.25


def test_production_across_actions_counts_the_turnout_of_the_actions_pledged_to():
    """An outside probe: faith-b pledged 7 for rally-1 (3 came) and 3 for vigil-2 (none came),
    and turned out 1 at march-3, which it made no pledge for: its ratio across actions was 4/10."""
    recs = [posted(a) for a in ("rally-1", "vigil-2", "march-3")]
    recs += [("pledge", f"{a}|faith-b", Pledge(action_id=a, partner="faith-b", count=n, occurred_at=T, event_id=f"p-{a}"))
             for a, n in (("rally-1", 7), ("vigil-2", 3))]
    recs += [came("rally-1", f"r{i}", attended_by="faith-b") for i in range(3)] + [came("march-3", "m0", attended_by="faith-b")]
    coalition = book_of(recs).coalition()
    (faith,) = coalition.partners
    assert (faith.pledged, faith.attended, faith.production_ratio) == (10, 4, 0.3)
    assert coalition.totals.production_ratio == 0.3
    assert book_of(recs).action("march-3").partners[0].production_ratio is None  # per action: no pledge, no ratio


def test_asks_waiting_for_the_morning_are_counted_until_they_go():
    # A night-time alert planned 156 asks; the tallies showed the 57 emails and nothing of the
    # 99 texts waiting for 09:00 in the recipients' zones.
    from contracts.asks import AskFact, ask_id

    def ask(i: int, status: str) -> tuple[str, str, AskFact]:
        aid = ask_id("alert-2", f"pk{i}", "sms")
        return "ask", aid, AskFact(ask_id=aid, action_id="alert-2", person_key=f"pk{i}", channel="sms", partner="union-a", status=status, updated_at=T)

    book = book_of([("action", "alert-2", ActionRecord(partner="union-a", action=ActionEvent.model_validate(action("alert-2")))),
                    ask(0, "deferred"), ask(1, "deferred"), ask(2, "delivered")])
    assert (book.action("alert-2").totals.deferred, book.action("alert-2").totals.asked_sms) == (2, 1)
    book.apply(*ask(0, "delivered"))  # morning
    assert (book.action("alert-2").totals.deferred, book.action("alert-2").totals.asked_sms) == (1, 2)
    assert book.coalition().totals.deferred == 1
