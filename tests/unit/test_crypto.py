"""Crypto-shredding's rules without a broker: sealing, key records, erasure of keys, what the
ingress writes, and how planning and sending treat a person whose keys are gone."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from agents.intake import handle
from agents.outreach.agents import Outreach, Queued, plan_partition, send_batch
from agents.outreach.planning import OutreachPolicy
from agents.outreach.receipts import on_email_event
from connectors.providers.email import FakeEmail
from connectors.providers.outbox import ProviderOutbox
from connectors.providers.sms import FakeSms
from connectors.web.ingress import envelopes
from contracts.asks import AskCommand
from contracts.providers import EmailEvent
from contracts.events import ActionEvent, Envelope, partner_event
from streams.crypto import DataKey, KeyRing, MasterKey, UnknownMasterKey, is_sealed, key_id_of, key_record
from streams.data_keys import MemoryDataKeys
from streams.keys import person_key
from streams.sealing import open_ask, open_person, seal_ask, sealing_key
from tests.factories import signup
from tests.fakes import memory_pipeline
from tests.integration.test_outreach import rapid
from tests.unit.test_send_batch import Clock, command, oakland, person, setup

SECRET = b"k"
T = datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)  # 11:00 in Oakland
ANA = {"phone": "+15105550123", "email": "ana.diaz@example.org", "given_name": "Zenobia", "family_name": "Quist", "postal_code": "94607"}


def ring(*masters: bytes) -> KeyRing:
    return KeyRing([MasterKey(m) for m in masters or (b"master",)])


def ana_signup(event_id: str = "u1") -> dict:
    item = signup(event_id, phone=ANA["phone"], email=ANA["email"], at="2026-11-20T10:00:00Z",
                  given_name=ANA["given_name"], family_name=ANA["family_name"], postal_code=ANA["postal_code"], language="es")
    item["consent"] = {c: {"granted": True, "scope": "coalition"} for c in ("sms", "email")}
    return item


def test_a_sealed_field_opens_only_as_itself_with_its_own_key():
    key = DataKey("00aa", "p1", bytes(32))
    sealed = key.seal("phone", "+15105550123")
    assert is_sealed(sealed) and key_id_of(sealed) == "00aa" and "5550123" not in sealed
    assert key.open("phone", sealed) == "+15105550123"
    assert key.open("email", sealed) is None  # the field name is the associated data
    assert DataKey("00aa", "p1", bytes([1]) * 32).open("phone", sealed) is None
    assert key.seal("phone", "+15105550123") != sealed  # a fresh nonce each time


def test_a_key_record_is_read_back_only_with_a_master_key_that_wrapped_it():
    old, new = MasterKey(b"old"), MasterKey(b"new")
    key = DataKey("00aa", "p1", bytes(range(32)))
    rk, value = key_record(old, key)
    assert rk == b"p1:00aa" and bytes(range(32)).hex() not in value.decode()
    rotated = ring(b"new", b"old")  # after a rotation: wraps with the new one, still reads the old
    rotated.apply(rk, value)
    assert rotated.get("00aa") == key and rotated.wrapped_by["p1:00aa"] == old.id != new.id
    with pytest.raises(UnknownMasterKey):
        ring(b"new").apply(rk, value)
    forged = json.loads(value) | {"person_key": "p2"}  # a key record moved to another person does not unwrap
    with pytest.raises(Exception):
        ring(b"old").apply(b"p2:00aa", json.dumps(forged).encode())


def test_a_tombstone_makes_everything_sealed_with_that_key_unreadable():
    r = ring()
    key = r.new_key("p1")
    r.apply(*key_record(r.master, key))
    sealed = key.seal("email", "ana@example.org")
    assert r.open("email", sealed) == "ana@example.org" and r.readable(sealed)
    r.apply(key.record_key, None)
    assert r.open("email", sealed) is None and not r.readable(sealed) and r.for_person("p1") is None
    assert r.open("email", "plain@example.org") == "plain@example.org"  # written before sealing: read as it is


def test_a_forgotten_person_named_by_an_event_that_introduces_nobody_stays_forgotten_in_every_web_app():
    """The key records say whether their key was made for events that introduce nobody: another
    web app reading them (the RSVP links' pages, ``KeyRing.forgotten``) tells an RSVP naming the
    person's email alone from a sign-up again."""
    here = MemoryDataKeys()
    asyncio.run(here.keys_for(["p1"]))
    asyncio.run(here.forget(["p1"]))
    there = KeyRing([here.ring.master])
    key = asyncio.run(here.keys_for(["p1"], introducing=()))["p1"]
    asyncio.run(here.keys_for(["p1"], introducing=()))  # named again the same way: nothing more written
    for rk, value in here.records:
        there.apply(rk, value)
    assert here.ring.forgotten("p1") and there.forgotten("p1")
    assert len(here.records) == 3 and json.loads(here.records[-1][1])["introduces"] is False
    asyncio.run(here.keys_for(["p1"], introducing=["p1"]))  # signed up again: the same key, its record written again
    there.apply(*here.records[-1])
    assert not here.ring.forgotten("p1") and not there.forgotten("p1") and there.for_person("p1") == key
    assert "introduces" not in json.loads(here.records[-1][1])


def test_a_person_keeps_one_key_and_erasure_deletes_every_key_two_web_apps_made():
    keys = MemoryDataKeys()
    first = asyncio.run(keys.keys_for(["p1", "p1", "p2"]))
    assert asyncio.run(keys.keys_for(["p1"]))["p1"] == first["p1"] and len(keys.ring) == 2
    other = keys.ring.new_key("p1")  # another web app met p1 at the same moment
    keys.ring.apply(*key_record(keys.ring.master, other))
    assert keys.ring.for_person("p1") == first["p1"]  # the oldest is used; both are kept
    assert asyncio.run(keys.forget(["p1", "nobody"])) == 2
    assert keys.ring.for_person("p1") is None and keys.ring.for_person("p2") == first["p2"]
    assert [v for _, v in keys.records[-2:]] == [None, None]


def test_the_ingress_writes_no_personal_field_in_clear_and_workers_read_the_rest():
    keys = MemoryDataKeys()
    records, result = asyncio.run(envelopes([ana_signup()], "union-a", T, SECRET, "US", keys))
    assert result.accepted == 1
    (key, value), = records
    assert not [v for v in ANA.values() if v.encode() in key + value] and b"5550123" not in value
    env = Envelope.model_validate_json(value, context={"normalized": True})
    pk = person_key(SECRET, ANA["phone"], None)
    assert env.person_key == pk and env.email_key == person_key(SECRET, None, ANA["email"])
    assert env.event.person.language == "es" and env.event.consent.sms.granted  # not personal fields: as posted
    assert {f: keys.ring.open(f, getattr(env.event.person, f)) for f in ANA} == ANA
    assert {key_id_of(getattr(env.event.person, f)) for f in ANA} == {keys.ring.for_person(pk).key_id}


def test_partners_cannot_post_sealed_looking_values_past_validation():
    sealed = DataKey("00aa", "p1", bytes(32)).seal("postal_code", "94607")
    item = signup("u1", phone=ANA["phone"], postal_code=sealed)
    with pytest.raises(ValidationError, match="postal_code"):
        partner_event.validate_python(item)
    event = partner_event.validate_python(item, context={"normalized": True})  # only turnout's own records
    assert event.person.postal_code == sealed


@pytest.mark.parametrize("field", ["given_name", "family_name"])
@pytest.mark.parametrize("value", ["enc1:00aa:AAAA", " enc1:00aa:AAAA"])
def test_a_partner_cannot_post_a_name_that_looks_sealed(field, value):
    # The ingress seals what is not sealed yet: a name posted looking sealed would stay as it came,
    # open with no key, and make the person's record read as erased for every partner.
    item = signup("u1", phone=ANA["phone"], **{field: value})
    with pytest.raises(ValidationError, match=f"person.{field}"):
        partner_event.validate_python(item)
    assert getattr(partner_event.validate_python(signup("u1", phone=ANA["phone"], **{field: "Encarnación"})).person, field) == "Encarnación"


def two_signed_up(keys: MemoryDataKeys):  # noqa: ANN201
    """A pipeline where Ana (SMS and email) and Bartholomew (SMS) signed up, sealed with ``keys``."""
    p = memory_pipeline()
    ben = signup("u2", phone="+15105550188", at="2026-11-20T10:00:00Z", given_name="Bartholomew", postal_code="94607")
    ben["consent"] = {"sms": {"granted": True, "scope": "coalition"}, "email": False}
    records, _ = asyncio.run(envelopes([ana_signup(), ben], "union-a", T, SECRET, "US", keys))
    for k, v in records:
        handle(p, 0, k.decode(), v, SECRET, lambda: T)
    return p


def test_planning_opens_the_person_seals_what_waits_and_skips_an_erased_person_quietly():
    """At 22:00 in Oakland Ana's email leaves at once, with her name; both texts wait for the
    morning in the deferred table, sealed with each person's own key."""
    keys = MemoryDataKeys()
    p = two_signed_up(keys)
    sms, email, clock = FakeSms(), FakeEmail(), Clock(oakland("22:00") - timedelta(days=1))
    o = Outreach(outbox=ProviderOutbox(sms, email, "http://web"), policy=OutreachPolicy(), clock=clock, partitions=4, keys=keys)
    ana, ben = person_key(SECRET, ANA["phone"], None), person_key(SECRET, "+15105550188", None)
    for partition in range(4):
        asyncio.run(plan_partition(p, o, ActionEvent.model_validate(rapid("alert-1", "Hearing", ["94607"])), partition, owned=lambda: True))
    assert [(m.to, "Zenobia" in m.text) for m in email.sent] == [(ANA["email"], True)] and sms.sent == []
    stored = json.dumps(list(p.deferred.table.data.values()))
    assert len(p.deferred.table.data) == 2 and not [x for x in ("Zenobia", "5550123", "ana.diaz", "Bartholomew", "5550188") if x in stored]
    waiting = {a.person_key: a for v in p.deferred.table.data.values() if (a := open_ask(AskCommand.model_validate(v), keys.ring))}
    assert {k: a.to for k, a in waiting.items()} == {ana: ANA["phone"], ben: "+15105550188"} and "Zenobia" in waiting[ana].body

    asyncio.run(keys.forget([ana]))
    assert open_person(p.people.get(ana), keys.ring) is None
    clock.now = T
    for partition in range(4):
        asyncio.run(plan_partition(p, o, ActionEvent.model_validate(rapid("alert-2", "Vote", ["94607"])), partition, owned=lambda: True))
    assert [m["to"] for m in sms.sent] == ["+15105550188"] and len(email.sent) == 1
    assert not [k for k in p.asks.table.data if k.startswith("alert-2:") and ana in k]


class SlowKeys:
    """A worker's view of ``source``'s data keys that reads the topic to its end only at its
    ``after``-th try (the broker was slow to answer before)."""

    def __init__(self, source: MemoryDataKeys, after: int) -> None:
        self.source, self.after, self.tries = source, after, 0
        self.ring = KeyRing(list(source.ring.masters.values()))

    async def caught_up(self, timeout: float = 30.0) -> bool:
        self.tries += 1
        if self.tries < self.after:
            return False
        for record_key, value in self.source.records:
            self.ring.apply(record_key, value)
        return True


def planned_with(keys: SlowKeys, source: MemoryDataKeys, owned) -> tuple[int, list[str]]:  # noqa: ANN001
    """Two people signed up through ``source``; plan an alert with a worker reading ``keys``."""
    p = two_signed_up(source)
    o = Outreach(outbox=None, policy=OutreachPolicy(), clock=lambda: T, partitions=1, keys=keys)  # type: ignore[arg-type]
    count = asyncio.run(plan_partition(p, o, ActionEvent.model_validate(rapid("alert-1", "Hearing", ["94607"])), 0, owned=owned))
    return count, sorted(p.asks.table.data)  # recorded cancelled: no provider


def test_a_data_keys_topic_slow_to_answer_delays_planning_and_skips_nobody():
    source = MemoryDataKeys()
    keys = SlowKeys(source, after=3)
    count, asks = planned_with(keys, source, owned=lambda: True)
    assert keys.tries == 3 and count == len(asks) == 3  # Ana's text and email, Ben's text


def test_planning_that_waits_for_the_data_keys_stops_when_the_partition_is_taken_over():
    source = MemoryDataKeys()
    keys, checks = SlowKeys(source, after=99), iter([True, False])
    count, asks = planned_with(keys, source, owned=lambda: next(checks))
    assert keys.tries == 2 and (count, asks) == (0, [])  # nobody skipped as erased: the next owner plans them


def test_an_ask_whose_key_was_erased_is_cancelled_without_reaching_a_provider():
    clock = Clock(oakland("10:00"))
    sms = FakeSms()
    p, o = setup(2, clock, sms)
    keys = MemoryDataKeys()
    o = Outreach(outbox=o.outbox, policy=o.policy, clock=clock, partitions=4, keys=keys)
    kept, erased = (asyncio.run(keys.keys_for([c.person_key]))[c.person_key] for c in (command(0), command(1)))
    assert sealing_key(person(0).model_copy(update={"phone": kept.seal("phone", person(0).phone)}), keys.ring) == kept
    sealed = [seal_ask(command(0), kept), seal_ask(command(1), erased)]
    asyncio.run(keys.forget([command(1).person_key]))
    asyncio.run(send_batch(p, o, [Queued(0, 1, c) for c in sealed], lambda generation: True))
    assert [m["to"] for m in sms.sent] == [command(0).to] and command(0).body in sms.sent[0]["body"]
    assert [p.asks.get(c.ask_id).status for c in sealed] == ["sent", "cancelled"]


def test_an_ask_whose_key_is_not_read_here_yet_waits_instead_of_being_cancelled():
    """A worker that took the partition over before reading the person's key: not sent, not lost."""
    clock = Clock(oakland("10:00"))
    sms = FakeSms()
    p, _ = setup(1, clock, sms)
    elsewhere = MemoryDataKeys()  # the web app's keys, not (yet) in this worker's ring
    key = asyncio.run(elsewhere.keys_for([command(0).person_key]))[command(0).person_key]
    o = Outreach(outbox=ProviderOutbox(sms, FakeEmail(), "http://web"), policy=OutreachPolicy(), clock=clock, partitions=4,
                 keys=MemoryDataKeys(list(elsewhere.ring.masters.values())))
    sealed = seal_ask(command(0), key)
    asyncio.run(send_batch(p, o, [Queued(0, 1, sealed)], lambda generation: True))
    assert sms.sent == []
    assert p.asks.get(sealed.ask_id).status == "deferred"
    assert p.deferred.get(sealed.ask_id).send_after == oakland("10:01")


def test_a_bounce_that_quotes_the_address_is_recorded_without_it():
    fact = command(0).fact("sent", T).model_copy(update={"channel": "email"})
    bounce = EmailEvent(ask_id=fact.ask_id, sg_event_id="e1", event="bounce", reason="550 5.1.1 <ana.diaz@example.org>: no such user at +15105550123")
    failed = on_email_event(fact, bounce, T)
    assert failed.status == "failed" and "550 5.1.1" in failed.error
    assert "ana.diaz" not in failed.error and "5550123" not in failed.error


def test_a_key_this_process_made_is_used_only_once_written_and_its_own_record_is_not_read_again():
    r = ring()
    key = r.new_key("p1")
    record = key_record(r.master, key)
    r.writing([key])
    r.apply(*record)  # read back before the write was even acknowledged: not in use yet
    assert r.for_person("p1") is None
    r.made(key)
    assert r.for_person("p1") == key
    r.apply(key.record_key, None)  # erased here
    assert r.get(key.key_id) is None and r.for_person("p1") is None
    other = ring()
    other.apply(*record)  # another process reads the record as usual
    assert other.get(key.key_id) == key
