"""A landline, a number that does not exist, a mailbox that hard-bounced: once the provider says
so, that address is not asked again, at the next action or any later one, until the person
gives another; and the audience preview says why they are left out."""

import asyncio
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from agents.outreach.agents import plan_partition
from agents.outreach.callbacks import apply
from agents.outreach.eligibility import decide
from agents.outreach.receipts import mark_undeliverable, opts_out, undeliverable_code
from agents.people import join_people, merge_person
from connectors.providers.errors import PermanentFailure
from contracts.events import ActionEvent, SignupEvent
from contracts.people import ConsentRecord
from contracts.providers import EmailEvent, ProviderEnvelope, SmsStatus
from tests.integration.test_outreach import rapid
from tests.unit.test_send_batch import Clock, Sms, command, key, oakland, person, setup, status

NOON = oakland("12:00")


def action(action_id: str, days_later: int = 0) -> ActionEvent:
    item = rapid(action_id, "Rally", ["94607"])
    return ActionEvent.model_validate({**item, "starts_at": (datetime.fromisoformat(item["starts_at"]) + timedelta(days=days_later)).isoformat()})


def fan_out(p, o, action_id: str, days_later: int = 0) -> None:
    for partition in range(o.partitions):
        asyncio.run(plan_partition(p, o, action(action_id, days_later), partition, owned=lambda: True))


def errors(provider: str, code: str) -> float:
    return REGISTRY.get_sample_value("turnout_provider_errors_total", {"provider": provider, "code": code}) or 0.0


def text(status: str, code: str | None) -> SmsStatus:
    return SmsStatus(ask_id="x", message_sid="SM1", status=status, error_code=code)


def email(event: str, **kw) -> EmailEvent:
    return EmailEvent(ask_id="x", sg_event_id="e1", event=event, **kw)


@pytest.mark.parametrize("event, code", [
    (text("undelivered", "30006"), "30006"),  # a landline
    (text("failed", "30005"), "30005"),  # no such number
    (text("failed", "21211"), "21211"),
    (text("failed", "21614"), "21614"),  # not a mobile number
    (text("undelivered", "30003"), None),  # a handset switched off: it comes back
    (text("undelivered", "30007"), None),  # the carrier filtered this text, not the number
    (text("sent", "30006"), None),
    (email("bounce", bounce_type="bounce"), "bounce"),
    (email("bounce"), "bounce"),  # SendGrid's events before bounce types: a bounce
    (email("bounce", bounce_type="blocked"), None),  # the server refused this time
    (email("dropped", reason="Bounced Address"), "dropped"),
    (email("dropped", reason="Invalid"), "dropped"),
    (email("dropped", reason="Invalid SMTPAPI header"), None),  # our request, not the address
    (email("deferred"), None),
])
def test_which_callbacks_say_an_address_can_never_take_a_message(event, code):
    assert undeliverable_code(event) == code


def test_a_drop_for_an_address_that_unsubscribed_at_sendgrid_opts_the_person_out():
    assert opts_out(email("dropped", reason="Unsubscribed Address")) == "email"
    assert opts_out(email("dropped", reason="Spam Reporting Address")) == "email"
    assert opts_out(email("dropped", reason="Bounced Address")) is None


def signup(phone: str, at) -> SignupEvent:
    return SignupEvent.model_validate({"type": "signup", "event_id": f"s-{phone}-{at:%H%M}", "occurred_at": at.isoformat(),
                                       "person": {"phone": phone, "postal_code": "94607"}, "consent": {"sms": {"granted": True}}})


def test_the_mark_is_about_the_address_it_failed_and_a_newer_one_is_asked_again():
    ana = merge_person(None, signup("+15105550101", oakland("08:00")), "union-a", key(1))
    marked = mark_undeliverable(ana, "sms", "30006", NOON, sent_at=oakland("11:00"))
    assert decide(marked, action("rally-2"), recent_asks=0, cap=3).reasons["sms"] == "undeliverable"
    assert mark_undeliverable(marked, "sms", "30006", NOON + timedelta(hours=1), oakland("11:00")) is marked  # again: nothing new
    # A number given after the text left is not condemned by the old number's failure.
    newer = merge_person(ana, signup("+15105550199", oakland("11:30")), "faith-b", key(1))
    assert mark_undeliverable(newer, "sms", "30006", NOON, sent_at=oakland("11:00")) is newer
    # Given again by a newer sign-up (a new number, or the same one confirmed): asked again.
    again = merge_person(marked, signup("+15105550199", oakland("12:30")), "faith-b", key(1))
    assert decide(again, action("rally-2"), recent_asks=0, cap=3).channels == ("sms",)
    # A sign-up dated before the failure (a late import) does not change the number: still left out.
    late = merge_person(marked, signup("+15105550177", oakland("07:00")), "faith-b", key(1))
    assert late.phone == ana.phone and decide(late, action("rally-2"), recent_asks=0, cap=3).reasons["sms"] == "undeliverable"


def test_a_text_deferred_before_its_number_was_found_undeliverable_is_cancelled():
    from agents.outreach.quiet_hours import QuietHours
    from agents.outreach.sending import Cancel, gate

    deferred = command(1).fact("deferred", oakland("08:00"))
    marked = mark_undeliverable(person(1), "sms", "30006", oakland("10:00"), oakland("09:00"))
    assert gate(command(1), deferred, marked, NOON, QuietHours()) == Cancel("undeliverable")


def test_two_records_merged_keep_the_mark_of_the_number_they_keep_in_either_order():
    a = mark_undeliverable(merge_person(None, signup("+15105550101", oakland("08:00")), "union-a", key(1)), "sms", "30006", NOON,
                           oakland("11:00"))
    b = merge_person(None, signup("+15105550102", oakland("07:00")), "faith-b", key(2))
    c = merge_person(None, signup("+15105550103", oakland("09:00")), "faith-b", key(3))
    assert join_people(a, b, key(1)) == join_people(b, a, key(1))
    assert join_people(a, b, key(1)).undeliverable == a.undeliverable  # a's number is newer: kept, and its mark
    assert join_people(a, c, key(1)).undeliverable == {} == join_people(c, a, key(1)).undeliverable  # c's is newer


def test_a_landline_found_at_one_action_is_not_texted_at_the_next():
    """rally-1 texts four people: Twilio refuses person 2's number outright (21211), and the
    carrier reports person 1's as a landline (30006) by status callback. rally-2 texts the other two."""
    clock = Clock(NOON)
    sms = Sms(clock)
    sms.failures["+15105550002"] = PermanentFailure("21211", "Invalid 'To' Phone Number")
    p, o = setup(4, clock, sms)
    for i in range(4):
        p.asks.delete(0, f"rally-1:{key(i)}:sms")  # setup's planned facts: planned here instead
    fan_out(p, o, "rally-1")
    assert sorted(m["to"] for m in sms.sent) == ["+15105550000", "+15105550001", "+15105550003"] and status(p, 2) == "failed"
    landline = p.asks.get(f"rally-1:{key(1)}:sms")
    clock.now += timedelta(minutes=1)
    counted = errors("twilio", "30006")
    for _ in range(2):  # the callback again: counted once (an outside probe: a failure by callback was not counted at all)
        apply(p, o, 0, ProviderEnvelope(person_key=key(1), received_at=clock(),
                                       event=SmsStatus(ask_id=landline.ask_id, message_sid=landline.provider_id, status="undelivered", error_code="30006")))
    assert errors("twilio", "30006") == counted + 1
    assert (p.people.get(key(1)).undeliverable["sms"].code, p.people.get(key(2)).undeliverable["sms"].code) == ("30006", "21211")
    sms.sent.clear()
    clock.now += timedelta(days=1)
    fan_out(p, o, "rally-2", days_later=1)
    assert sorted(m["to"] for m in sms.sent) == ["+15105550000", "+15105550003"]


def test_a_hard_bounce_keeps_the_address_from_later_emails():
    clock = Clock(NOON)
    p, o = setup(1, clock, Sms(clock))
    at = oakland("08:00")
    p.people.put(0, key(0), person(0).model_copy(update={"phone": None, "email": "ana@example.org",
                                                         "consent": {"email": ConsentRecord(granted=True, partner="union-a", at=at)}}))
    p.asks.delete(0, f"rally-1:{key(0)}:sms")
    fan_out(p, o, "rally-1")
    [sent] = o.outbox.email.sent
    ask = p.asks.get(f"rally-1:{key(0)}:email")
    counted = errors("sendgrid", "bounce")
    apply(p, o, 0, ProviderEnvelope(person_key=key(0), received_at=clock(),
                                   event=EmailEvent(ask_id=ask.ask_id, sg_event_id="e9", event="bounce", bounce_type="bounce", reason="550 5.1.1")))
    assert errors("sendgrid", "bounce") == counted + 1
    assert p.asks.get(ask.ask_id).status == "failed" and p.people.get(key(0)).undeliverable["email"].code == "bounce"
    o.outbox.email.sent.clear()
    fan_out(p, o, "rally-2")
    assert o.outbox.email.sent == [] and p.asks.get(f"rally-2:{key(0)}:email") is None


def test_what_a_refusal_at_hand_over_does_to_the_person():
    from agents.outreach.receipts import after_refusal
    from contracts.asks import SendResult

    ana = person(1)
    refused = lambda **kw: after_refusal(ana, "sms", SendResult(ask_id="x", **kw), oakland("11:00"), NOON)  # noqa: E731
    assert "sms" in refused(error_code="21610", opted_out=True).opted_out
    assert refused(error_code="21211").undeliverable["sms"].code == "21211"
    assert refused(error_code="30007") is ana and refused(error_code="400") is ana
    assert after_refusal(ana, "email", SendResult(ask_id="x", error_code="21211"), oakland("11:00"), NOON) is ana  # a Twilio code on an email: no


def test_a_number_refused_at_hand_over_cancels_that_persons_other_texts_waiting_for_the_morning():
    from contracts.asks import RecentAsks

    clock = Clock(NOON)
    sms = Sms(clock)
    sms.failures["+15105550002"] = PermanentFailure("21211", "Invalid 'To' Phone Number")
    p, o = setup(4, clock, sms)
    for i in range(4):
        p.asks.delete(0, f"rally-1:{key(i)}:sms")
    held = command(2).model_copy(update={"ask_id": f"rally-0:{key(2)}:sms", "action_id": "rally-0", "send_after": NOON + timedelta(hours=12)})
    p.deferred.put(0, held.ask_id, held)
    p.asks.put(0, held.ask_id, held.fact("deferred", NOON, deferred_until=held.send_after))
    p.recent_asks.put(0, key(2), RecentAsks(asks=((held.ask_id, NOON),)))
    fan_out(p, o, "rally-1")
    assert status(p, 2) == "failed"
    assert (p.asks.get(held.ask_id).status, p.asks.get(held.ask_id).error) == ("cancelled", "undeliverable")
    assert p.deferred.get(held.ask_id) is None
