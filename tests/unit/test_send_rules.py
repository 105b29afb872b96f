"""The rules decided at the moment of sending (pure): validity with the queue wait, staleness,
re-deferral after Twilio's 30036, the predicted sender queue, and what a reply answers."""

from datetime import datetime, time, timedelta, timezone

from agents.outreach.planning import send_until
from agents.outreach.quiet_hours import QuietHours
from agents.outreach.receipts import reply_target, stop_confirmed
from agents.outreach.sending import Cancel, Defer, Expire, Orphaned, Send, SenderQueue, Skip, after_validity_expired, gate, rezoned, unreadable, window_closed
from contracts.asks import AskCommand, AskFact, RecentAsks, ask_id
from contracts.events import ActionEvent
from contracts.facts import PersonRecord
from contracts.people import ConsentRecord
from tests.factories import action as action_event

QUIET = QuietHours(time(21), time(9))
PK = "p0123456789abcdef0123456789abcdef"
LA = "America/Los_Angeles"


def at(hhmm: str, day: int = 24) -> datetime:
    """A wall-clock time in Oakland (PST, UTC-8) on November ``day``, 2026, as UTC."""
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 11, day, h, m, tzinfo=timezone.utc) + timedelta(hours=8)


def person(opted_out=()) -> PersonRecord:
    return PersonRecord(person_key=PK, phone="+15105550123", email="ana@example.org", postal_code="94607",
                        consent={c: ConsentRecord(granted=True, partner="union-a", at=at("08:00")) for c in ("sms", "email")},
                        opted_out={c: at("08:00") for c in opted_out}, partners=("union-a",),
                        recruited_by="union-a", recruited_at=at("08:00"), updated_at=at("08:00"))


def sms(until: datetime | None = None, channel="sms", quiet=True) -> AskCommand:
    return AskCommand(ask_id=ask_id("rally-1", PK, channel), action_id="rally-1", person_key=PK, channel=channel, partner="union-a",
                      referral="r", to="+15105550123", body="hi", time_zone=LA, quiet_hours_apply=quiet, planned_at=at("08:00"),
                      send_until=until)


def fact(status: str, aid: str | None = None) -> AskFact:
    return AskFact(ask_id=aid or ask_id("rally-1", PK, "sms"), action_id="rally-1", person_key=PK, channel="sms",
                   partner="union-a", status=status, updated_at=at("08:00"))


def test_validity_ends_when_quiet_hours_begin_or_the_action_starts_whichever_is_first():
    assert gate(sms(), None, person(), at("20:00"), QUIET) == Send(validity_period=3600)
    assert gate(sms(until=at("20:30")), None, person(), at("20:00"), QUIET) == Send(validity_period=1800)
    # Twilio's maximum is ten hours; an email has no validity.
    assert gate(sms(quiet=False), None, person(), at("10:00"), QUIET) == Send(validity_period=36000)
    assert gate(sms(channel="email"), None, person(), at("20:59"), QUIET) == Send()


def test_a_text_that_would_only_expire_in_the_queue_waits_for_the_next_window():
    until = at("18:00", day=26)
    assert gate(sms(until=until), None, person(), at("20:00"), QUIET, queue_wait=3599) == Send(validity_period=3600)
    assert gate(sms(until=until), None, person(), at("20:00"), QUIET, queue_wait=3600) == Defer(at("09:00", day=25))
    # When the action starts before the queue empties, there is no next window.
    assert isinstance(gate(sms(until=at("20:30")), None, person(), at("20:00"), QUIET, queue_wait=1800), Expire)


def test_nothing_is_sent_once_the_action_has_started():
    assert isinstance(gate(sms(until=at("19:00")), None, person(), at("19:00"), QUIET), Expire)
    assert isinstance(gate(sms(channel="email", until=at("19:00")), None, person(), at("19:01"), QUIET), Expire)
    # At night, a deferral to a morning after the action is an expiry.
    assert isinstance(gate(sms(until=at("08:00", day=25)), None, person(), at("22:00"), QUIET), Expire)
    assert gate(sms(until=at("10:00", day=25)), None, person(), at("22:00"), QUIET) == Defer(at("09:00", day=25))


def test_a_rapid_response_action_may_be_sent_for_its_grace_after_it_was_posted():
    item = action_event("call-in")
    planned = ActionEvent.model_validate({**item, "starts_at": at("12:00").isoformat()})
    rapid = ActionEvent.model_validate({**item, "starts_at": at("12:00").isoformat(), "rapid_response": True,
                                        "templates": {"sms": {"en": "Call now"}}})
    grace = timedelta(hours=2)
    assert send_until(planned, at("11:50"), grace) == at("12:00")
    assert send_until(rapid, at("11:50"), grace) == at("13:50")
    assert send_until(rapid, at("08:00"), grace) == at("12:00")


def test_a_rapid_response_alert_about_something_over_before_it_was_posted_is_never_sent():
    """An outside probe posted the README's own example (its start two weeks gone) and an
    action replayed with a start two days past: both texted and emailed at once, naming a time
    long gone, with an RSVP link that answered 410. The grace is for an alert posted as its
    action starts ("call now", a start typed a few minutes ago): one whose start was more than
    the grace before it was first posted gets none, and is never sent."""
    item = action_event("call-in")
    rapid = ActionEvent.model_validate({**item, "starts_at": at("12:00").isoformat(), "rapid_response": True,
                                        "templates": {"sms": {"en": "Call now"}}})
    grace = timedelta(hours=2)
    assert send_until(rapid, at("14:00"), grace) == at("16:00")  # started just the grace before: still an alert
    assert send_until(rapid, at("14:01"), grace) == at("12:00")
    assert send_until(rapid, at("12:00", day=26), grace) == at("12:00")


def test_opt_outs_and_replays_are_decided_at_the_moment_of_sending():
    assert gate(sms(), None, person(opted_out=("sms",)), at("12:00"), QUIET).__class__.__name__ == "Cancel"
    assert gate(sms(), fact("sent"), person(), at("12:00"), QUIET) == Skip("already sent")
    assert gate(sms(), fact("expired"), person(), at("12:00"), QUIET) == Skip("already expired")
    # "sending" found by a later reader: the worker that marked it never recorded an answer.
    assert gate(sms(), fact("sending"), person(), at("12:00"), QUIET) == Orphaned()


def test_a_text_that_expired_in_the_queue_is_deferred_to_the_next_window_while_the_action_is_ahead():
    until = at("18:00", day=25)
    assert after_validity_expired(sms(until=until), at("21:00"), QUIET) == Defer(at("09:00", day=25))
    # Reported a little early (clocks differ): the window about to close is not used again.
    assert after_validity_expired(sms(until=until), at("20:59"), QUIET) == Defer(at("09:00", day=25))
    assert isinstance(after_validity_expired(sms(until=at("08:00", day=25)), at("21:00"), QUIET), Expire)
    assert isinstance(after_validity_expired(sms(until=until), until, QUIET), Expire)


def test_an_unreadable_ask_is_cancelled_only_when_its_key_was_erased_and_otherwise_decided_again_a_minute_later():
    assert unreadable(True, at("12:00")) == Cancel("person erased")
    assert unreadable(False, at("12:00")) == Defer(at("12:01"))


def test_the_predicted_queue_drains_at_the_senders_mps():
    queue, now = SenderQueue(2), at("12:00")
    assert queue.wait(now) == 0
    for _ in range(10):
        queue.add(now)
    assert queue.wait(now) == 5.0
    assert queue.wait(now + timedelta(seconds=4)) == 1.0
    assert queue.wait(now + timedelta(seconds=9)) == 0
    queue.add(now + timedelta(seconds=9), segments=3)  # an empty queue starts again from now
    assert queue.wait(now + timedelta(seconds=9)) == 1.5
    unpaced = SenderQueue(0)
    unpaced.add(now)
    assert unpaced.wait(now) == 0


def test_a_clock_moved_back_does_not_leave_a_queue_no_provider_could_hold():
    # A rehearsal moved its file clock back five weeks: the queue predicted from the later time
    # made every text wait "five weeks", and each was deferred a day at a time, never sent (an
    # outside probe). Twilio holds at most 10 hours of texts per sender.
    queue = SenderQueue(2)
    queue.add(at("12:00") + timedelta(days=35))
    assert queue.wait(at("12:00")) == 0
    queue.add(at("12:00"))
    assert queue.wait(at("12:00")) == 0.5


def test_a_reply_answers_the_newest_ask_the_person_actually_received():
    a, b, c = (ask_id(x, PK, "sms") for x in ("a", "b", "c"))
    recent = RecentAsks(asks=((a, at("10:00")), (ask_id("b", PK, "email"), at("10:30")), (b, at("11:00")), (c, at("12:00"))))
    facts = lambda statuses: {aid: fact(status, aid) for aid, status in statuses.items()}.get  # noqa: E731
    statuses = {a: "delivered", b: "sent", c: "deferred"}
    assert reply_target(recent, PK, facts(statuses)) == b
    assert reply_target(recent, PK, facts({a: "delivered", b: "failed", c: "planned"})) == a
    assert reply_target(recent, PK, {}.get) is None
    assert reply_target(None, PK, facts(statuses)) is None
    # An ask of another record of the person, merged in, reached them (a merge carries only
    # those); its fact is on that record's partition, so it is not looked up here.
    merged = ask_id("d", "pk-merged", "sms")
    with_merged = RecentAsks(asks=(*recent.asks, (merged, at("12:30"))))
    assert reply_target(with_merged, PK, facts(statuses)) == merged


def test_a_reply_answers_the_text_handed_over_last_not_the_ask_planned_last():
    """An outside probe: an alert held for the morning (planned at night) and an override sent at
    night (planned after it): the YES to the morning's text was credited to the night's alert
    and its partner. Asks are remembered when planned; what counts is when each was handed over."""
    held, night = ask_id("held", PK, "sms"), ask_id("night", PK, "sms")
    recent = RecentAsks(asks=((held, at("22:00")), (night, at("22:30"))))
    handed = {held: fact("delivered", held).model_copy(update={"marked_at": at("09:00", day=25)}),
              night: fact("delivered", night).model_copy(update={"marked_at": at("22:30")})}
    assert reply_target(recent, PK, handed.get) == held
    handed[held] = handed[held].model_copy(update={"status": "deferred", "marked_at": None})  # not yet sent: the night's
    assert reply_target(recent, PK, handed.get) == night


def test_a_deferred_text_is_rezoned_to_where_its_person_lives_now():
    opened = lambda name, value: value  # noqa: E731 - the fields are not sealed here
    moved = person().model_copy(update={"postal_code": "10001", "phone": "+12125550123"})
    assert rezoned(sms(), moved, opened).time_zone == "America/New_York"
    assert rezoned(sms(), person(), opened) == sms()  # still in Oakland: the same ask
    unreadable = lambda name, value: None  # noqa: E731 - their data key is not read here
    assert rezoned(sms(), moved, unreadable).time_zone == LA  # what cannot be read keeps the planned zone
    assert rezoned(sms(quiet=False), moved, opened).time_zone == LA and rezoned(sms(), None, opened) == sms()
    assert rezoned(sms(channel="email"), moved, opened).time_zone == LA


def test_each_stop_is_confirmed_but_a_replay_of_the_one_that_opted_them_out():
    assert stop_confirmed(None, at("12:00"))  # someone unknown
    assert stop_confirmed(person(), at("12:00"))
    assert stop_confirmed(person(opted_out=("sms",)), at("12:00"))  # opted out another way at 08:00: nobody confirmed that
    assert not stop_confirmed(person(opted_out=("sms",)), at("08:00"))  # this very STOP, read again


def test_a_text_with_less_than_a_second_of_its_window_left_is_not_handed_over():
    nine_pm = datetime(2026, 11, 25, 5, 0, tzinfo=timezone.utc)
    assert not window_closed(None, nine_pm) and not window_closed(nine_pm, nine_pm - timedelta(seconds=1))
    assert window_closed(nine_pm, nine_pm - timedelta(milliseconds=999)) and window_closed(nine_pm, nine_pm + timedelta(hours=1))


def test_asks_to_a_person_whose_link_may_still_be_on_its_way_wait_until_it_settles():
    from agents.outreach.planning import LINK_SETTLE, OutreachPolicy, plan, wait_for_link

    sent = at("12:00")
    linking = person().model_copy(update={"link_sent_at": sent})
    rally = ActionEvent.model_validate({**action_event("rally-1"), "rapid_response": True,
                                        "templates": {"sms": {"en": "Rally {rsvp_link}"}, "email": {"en": {"subject": "Rally", "body": "Come"}}}})
    now = sent + timedelta(seconds=1)
    planned = plan(linking, rally, None, set(), now, OutreachPolicy())
    asks = wait_for_link(planned, linking, now, LINK_SETTLE)
    assert [(a.channel, a.send_after) for a in asks] == [("sms", sent + LINK_SETTLE), ("email", sent + LINK_SETTLE)]
    assert wait_for_link(planned, person(), now, LINK_SETTLE) == planned  # no link sent
    assert wait_for_link(planned, linking, sent + LINK_SETTLE, LINK_SETTLE) == planned  # settled
    assert wait_for_link(planned, linking, now, None) == planned  # a file clock: no wait
    assert wait_for_link(planned, linking, sent - timedelta(hours=1), LINK_SETTLE) == planned  # another clock's stamp
    assert wait_for_link(planned, linking, sent - timedelta(seconds=1), LINK_SETTLE) == asks  # the web app's a little ahead
    # Either channel waits for its send_after, then goes.
    for ask in asks:
        assert gate(ask, None, linking, now, QUIET) == Defer(sent + LINK_SETTLE)
        assert isinstance(gate(ask, fact("deferred"), linking, sent + LINK_SETTLE, QUIET), Send)
    # A text in quiet hours waits for the morning as before.
    night = at("21:30")
    (text, _) = wait_for_link(plan(linking, rally, None, set(), night, OutreachPolicy()), linking.model_copy(update={"link_sent_at": night}), night, LINK_SETTLE)
    assert text.send_after == at("09:00", day=25)
