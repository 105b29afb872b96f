"""A partner relays an opt-out ("stop texting me", said at its office or on its own list):
an `opt_out` event, applied coalition-wide at once, as a STOP reply or an unsubscribe is."""

import pytest
from pydantic import ValidationError

from agents.outreach.eligibility import decide
from contracts.events import Envelope, partner_event
from streams.keys import person_key
from tests.factories import action, signup
from tests.fakes import memory_pipeline
from tests.unit.test_introduce import SECRET, T, post  # an event as the intake takes it
ANA, ANA_EMAIL = "+15105550123", "ana@example.org"


def opt_out(event_id, channels, **person):
    return {"type": "opt_out", "event_id": event_id, "occurred_at": "2026-11-22T14:00:00Z", "person": person, "channels": channels}


def signed_up(p, partner="union-a"):
    item = signup("s1", phone=ANA, email=ANA_EMAIL, given_name="Ana", postal_code="94607")
    item["consent"] = {"sms": {"granted": True, "scope": "coalition"}, "email": True}
    return post(p, partner, item)


def rally():
    templates = {"sms": {"en": "{action_title} {rsvp_link}"}, "email": {"en": {"subject": "{action_title}", "body": "{rsvp_link}"}}}
    return partner_event.validate_python(action("rally-1") | {"templates": templates})


def test_an_opt_out_names_a_person_and_at_least_one_channel():
    event = partner_event.validate_python(opt_out("o1", ["sms"], phone="(510) 555-0123"))
    assert (event.person.phone, event.channels) == (ANA, ("sms",))
    for bad, field in [(opt_out("o1", []), "channels"), (opt_out("o1", ["fax"], phone=ANA), "channels"),
                       (opt_out("o1", ["sms"]), "person"), (opt_out("o1", ["sms"], phone=ANA, given_name="Ana"), "given_name")]:
        with pytest.raises(ValidationError, match=field):
            partner_event.validate_python(bad)
    # Each problem said once, in words: not also "Tuple should have at least 1 item" after an unknown channel.
    for channels, says in [(["fax"], ["Input should be 'sms' or 'email'"]), ([], ["Value error, name the channels to stop: sms, email or both"]),
                           (["sms", "sms"], ["Value error, name each channel once"])]:
        with pytest.raises(ValidationError) as refused:
            partner_event.validate_python(opt_out("o1", channels, phone=ANA))
        assert [e["msg"] for e in refused.value.errors()] == says


def test_another_partners_opt_out_stops_that_channel_for_every_partner():
    p = memory_pipeline()
    pk = signed_up(p)
    assert decide(p.people.get(pk), rally(), recent_asks=0, cap=3).channels == ("sms", "email")
    assert post(p, "faith-b", opt_out("o1", ["sms"], phone=ANA), minute=5) == pk
    person = p.people.get(pk)
    assert person.opted_out == {"sms": T.replace(minute=5)}
    assert person.consent["sms"].granted  # the record of consent stays; the opt-out wins over it
    assert decide(person, rally(), recent_asks=0, cap=3).channels == ("email",)
    post(p, "faith-b", opt_out("o2", ["email", "sms"], phone=ANA), minute=6)
    assert p.people.get(pk).opted_out == {"sms": T.replace(minute=5), "email": T.replace(minute=6)}  # the first STOP's time stays
    assert decide(p.people.get(pk), rally(), recent_asks=0, cap=3).channels == ()


def test_an_opt_out_naming_a_phone_and_an_email_opts_out_each_and_links_nobody():
    # A sign-up naming both says they are one person; an opt-out only restricts. X's phone and Y's
    # email in one opt-out merged X and Y (an outside probe): Y was silenced, and X's erasure took Y's key.
    import asyncio

    from connectors.web.ingress import envelopes
    from streams.data_keys import MemoryDataKeys

    records, result = asyncio.run(envelopes([opt_out("o1", ["sms"], phone=ANA, email="y@example.org")], "faith-b", T, SECRET, "US",
                                            MemoryDataKeys()))
    assert result.accepted == 1
    envs = [Envelope.model_validate_json(value, context={"normalized": True}) for _, value in records]
    assert {e.person_key for e in envs} == {person_key(SECRET, ANA, None), person_key(SECRET, None, "y@example.org")}
    assert all(e.email_key is None for e in envs) and len(envs) == 2


def test_an_opt_out_of_someone_nobody_signed_up_yet_outlasts_a_later_signup():
    p = memory_pipeline()
    pk = post(p, "faith-b", opt_out("o1", ["sms"], phone=ANA))
    remembered = p.people.get(pk)
    assert (remembered.partners, remembered.phone, remembered.opted_out) == ((), None, {"sms": T})  # no contact details kept
    assert signed_up(p) == pk
    person = p.people.get(pk)
    assert (person.recruited_by, person.opted_out) == ("union-a", {"sms": T})
    assert decide(person, rally(), recent_asks=0, cap=3).channels == ("email",)
    assert pk == person_key(SECRET, ANA, None)


def waiting(p, pk, *channels):
    """An ask per channel waiting for the morning (deferred), as planning leaves one."""
    from contracts.asks import AskCommand, RecentAsks, ask_id

    for channel in channels:
        aid = ask_id("rally-1", pk, channel)
        ask = AskCommand(ask_id=aid, action_id="rally-1", person_key=pk, channel=channel, partner="union-a", referral="r",
                         to=ANA if channel == "sms" else ANA_EMAIL, body="hi", subject="s" if channel == "email" else None,
                         planned_at=T, send_after=T.replace(hour=23))
        p.deferred.put(0, aid, ask)
        p.asks.put(0, aid, ask.fact("deferred", T, deferred_until=T.replace(hour=23)))
        recent = p.recent_asks.get(pk) or RecentAsks()
        p.recent_asks.put(0, pk, RecentAsks(asks=(*recent.asks, (aid, T))))
    return [ask_id("rally-1", pk, c) for c in channels]


def test_an_opt_out_cancels_the_asks_waiting_for_the_morning_at_once():
    """An outside probe: someone opted out while their text waited for the morning was counted
    "waiting for an allowed hour" all night, and only cancelled when it came due."""
    p = memory_pipeline()
    pk = signed_up(p)
    sms_ask, email_ask = waiting(p, pk, "sms", "email")
    post(p, "faith-b", opt_out("o1", ["sms"], phone=ANA), minute=5)
    assert (p.asks.get(sms_ask).status, p.asks.get(sms_ask).error) == ("cancelled", "opted out")
    assert p.deferred.get(sms_ask) is None
    assert p.asks.get(email_ask).status == "deferred" and p.deferred.get(email_ask) is not None  # the other channel still goes


def test_a_stop_reply_or_an_unsubscribe_cancels_the_asks_waiting_for_the_morning():
    from agents.outreach.callbacks import apply
    from contracts.providers import PersonOptOut, ProviderEnvelope, SmsReply
    from tests.unit.test_outreach_decisions import outreach

    p = memory_pipeline()
    pk = signed_up(p)
    sms_ask, email_ask = waiting(p, pk, "sms", "email")
    apply(p, outreach(), 0, ProviderEnvelope(person_key=pk, received_at=T.replace(minute=5), event=SmsReply(message_sid="SM1", keyword="STOP")))
    assert p.asks.get(sms_ask).status == "cancelled" and p.deferred.get(sms_ask) is None
    assert p.asks.get(email_ask).status == "deferred"
    apply(p, outreach(), 0, ProviderEnvelope(person_key=pk, received_at=T.replace(minute=6), event=PersonOptOut(channel="email")))
    assert (p.asks.get(email_ask).status, p.asks.get(email_ask).error) == ("cancelled", "opted out")


def test_an_opt_out_leaves_a_merged_in_records_waiting_ask_to_its_own_partition():
    """The person's recent asks may name another record's ask (merged in); its waiting copy, if
    this worker holds it, belongs to that record's partition and is decided there when due."""
    from contracts.asks import RecentAsks

    p = memory_pipeline()
    pk = signed_up(p)
    [other] = waiting(p, "pk-merged", "sms")
    p.recent_asks.put(0, pk, RecentAsks(asks=((other, T),)))
    post(p, "faith-b", opt_out("o1", ["sms"], phone=ANA), minute=5)
    assert p.asks.get(other).status == "deferred" and p.deferred.get(other) is not None
