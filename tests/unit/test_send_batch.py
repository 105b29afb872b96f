"""The send agent's orchestration without a broker: the real ``send_batch`` and receipts over
the real ``FactTable`` (tests/fakes.py), the real ``ProviderOutbox`` over in-memory senders."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from agents.outreach.agents import Budget, Outreach, PeopleIndex, Queued, close, plan_partition, send_batch, take
from agents.outreach.callbacks import answer, apply
from agents.outreach.planning import OutreachPolicy
from connectors.providers.email import FakeEmail
from connectors.providers.errors import PermanentFailure
from connectors.providers.outbox import ProviderOutbox
from connectors.providers.sms import FakeSms
from contracts.asks import AskCommand, AskFact, RecentAsks, TargetAction, ask_id
from contracts.events import ActionEvent
from contracts.facts import PersonRecord
from contracts.people import ConsentRecord
from contracts.providers import ProviderEnvelope, SmsReply
from streams.data_keys import MemoryDataKeys
from streams.keys import partition_of
from streams.transport import Lease
from tests.fakes import memory_pipeline

LA = "America/Los_Angeles"


def oakland(hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(2026, 11, 24, h, m, tzinfo=timezone.utc) + timedelta(hours=8)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class Sms(FakeSms):
    """Texts that take ``step`` of the clock each, and an optional hook run at each send."""

    def __init__(self, clock: Clock, step: timedelta = timedelta(0), on_send=None, known: dict | None = None) -> None:
        super().__init__()
        self.clock, self.step, self.on_send, self.known = clock, step, on_send, known or {}

    async def send(self, to, body, *, status_callback=None, validity_period=None):
        if self.on_send:
            self.on_send(len(self.sent))
        sent = await super().send(to, body, status_callback=status_callback, validity_period=validity_period)
        self.sent[-1]["at"] = self.clock()
        self.clock.now += self.step
        return sent

    async def find(self, to, body, since):
        return self.known.get(to)


def key(i: int) -> str:
    return f"p{i:032x}"


def person(i: int) -> PersonRecord:
    at = oakland("08:00")
    return PersonRecord(person_key=key(i), phone=f"+1510555{i:04d}", postal_code="94607",
                        consent={"sms": ConsentRecord(granted=True, partner="union-a", at=at)},
                        partners=("union-a",), recruited_by="union-a", recruited_at=at, updated_at=at)


def command(i: int, action: str = "rally-1", until: datetime | None = None) -> AskCommand:
    return AskCommand(ask_id=ask_id(action, key(i), "sms"), action_id=action, person_key=key(i), channel="sms",
                      partner="union-a", referral="r", to=f"+1510555{i:04d}", body=f"hi {i}", time_zone=LA,
                      planned_at=oakland("08:00"), send_until=until or oakland("18:00") + timedelta(days=2))


def setup(n: int, clock: Clock, sms: FakeSms | None, chunk: int = 2):
    p = memory_pipeline()
    for i in range(n):
        p.people.put(0, key(i), person(i))
        p.asks.put(0, command(i).ask_id, command(i).fact("planned", clock()))
    outbox = ProviderOutbox(sms, FakeEmail(), "http://web") if sms is not None else None
    return p, Outreach(outbox=outbox, policy=OutreachPolicy(), clock=clock, partitions=4, chunk=chunk)


def run(p, o, commands, owns=lambda generation: True):
    asyncio.run(send_batch(p, o, [Queued(0, 1, c) for c in commands], owns))


def status(p, i: int, action: str = "rally-1") -> str:
    return p.asks.get(ask_id(action, key(i), "sms")).status


def test_each_chunk_is_decided_with_the_clock_of_its_own_hand_over():
    """Texts take a minute each to hand over from 20:57, three to a chunk: the chunk reached
    after 21:00 waits for the morning, and each validity ends at 21:00 counted from the text's
    own hand-over, not from its chunk's start."""
    clock = Clock(oakland("20:57"))
    sms = Sms(clock, step=timedelta(minutes=1))
    p, o = setup(6, clock, sms, chunk=3)
    run(p, o, [command(i) for i in range(6)])
    assert [(s["at"], s["validity_period"]) for s in sms.sent] == [
        (oakland("20:57"), 180), (oakland("20:58"), 120), (oakland("20:59"), 60)]
    assert [status(p, i) for i in range(6)] == ["sent"] * 3 + ["deferred"] * 3
    assert p.deferred.get(command(5).ask_id).send_after == oakland("09:00") + timedelta(days=1)


def test_a_text_whose_window_closes_while_its_chunk_is_handed_over_is_decided_again_not_sent_with_a_second_of_validity():
    """An outside probe: the clock passed 21:00 while a chunk was with the provider; the rest of
    the chunk went out, each with ValidityPeriod=1 (the least Twilio takes), into quiet hours.
    Checked right before each request, as an opt-out is: the window has closed, so the text is
    decided again (deferred to the morning), never handed over."""
    clock = Clock(clock_at(20, 59, 58))
    sms = Sms(clock, step=timedelta(seconds=1))
    p, o = setup(4, clock, sms, chunk=4)
    run(p, o, [command(i) for i in range(4)])
    assert [(s["at"], s["validity_period"]) for s in sms.sent] == [(clock_at(20, 59, 58), 2), (clock_at(20, 59, 59), 1)]
    assert [status(p, i) for i in range(4)] == ["sent", "sent", "deferred", "deferred"]
    assert p.deferred.get(command(3).ask_id).send_after == oakland("09:00") + timedelta(days=1)


def clock_at(h: int, m: int, s: int) -> datetime:
    return oakland(f"{h:02d}:{m:02d}") + timedelta(seconds=s)


def test_a_deferred_text_keeps_the_quiet_hours_of_where_its_person_lives_now():
    """Planned for a New York ZIP and deferred to 09:00 there; the person then gave an Oakland ZIP.
    At 09:00 New York time it is 06:00 in Oakland: it waits for 09:00 Oakland time (an outside
    probe saw it delivered at 06:00)."""
    clock = Clock(oakland("06:00"))  # 09:00 in New York
    sms = Sms(clock)
    p, o = setup(1, clock, sms)
    deferred = command(0).model_copy(update={"time_zone": "America/New_York"})
    p.asks.put(0, deferred.ask_id, deferred.fact("deferred", oakland("05:00"), deferred_until=oakland("06:00")))
    run(p, o, [deferred])
    assert sms.sent == [] and status(p, 0) == "deferred"
    assert p.deferred.get(deferred.ask_id).send_after == oakland("09:00")
    clock.now = oakland("09:00")
    run(p, o, [p.deferred.get(deferred.ask_id)])
    assert [s["to"] for s in sms.sent] == ["+15105550000"] and status(p, 0) == "sent"


def test_hand_overs_side_by_side_share_the_workers_budget_of_asks_being_handed_over():
    """Two partitions handed over at once, in chunks of 2 (a budget of 4 asks): both are under
    way together, and at no provider call are more than 4 asks marked "sending"."""
    clock = Clock(oakland("12:00"))
    marked = []

    class Slow(Sms):
        async def send(self, to, body, **kw):
            marked.append(sum(v["status"] == "sending" for v in p.asks.data.values()))
            await asyncio.sleep(0)  # the provider's answer takes a turn of the loop: the other requests start
            return await super().send(to, body, **kw)

    sms = Slow(clock)
    p, o = setup(12, clock, sms, chunk=2)

    async def both():
        await asyncio.gather(*(send_batch(p, o, [Queued(part, 1, command(i)) for i in range(6 * part, 6 * part + 6)], lambda g: True)
                               for part in (0, 1)))

    asyncio.run(both())
    assert sorted(s["to"] for s in sms.sent) == [f"+1510555{i:04d}" for i in range(12)]
    assert {s["to"] for s in sms.sent[:4]} == {"+15105550000", "+15105550001", "+15105550006", "+15105550007"}
    assert max(marked) == 4 and o.handing.used == 0


def test_the_budget_is_taken_whole_in_turn_and_given_back_by_a_cancelled_taker():
    async def scenario():
        budget = Budget(4)
        assert await budget.take(3) == 3
        later = [asyncio.ensure_future(budget.take(n)) for n in (2, 1)]
        await asyncio.sleep(0)
        assert not any(t.done() for t in later)  # 2 does not fit, and 1 waits its turn behind it
        budget.give(3)
        assert [await t for t in later] == [2, 1] and budget.used == 3
        budget.give(3)
        assert await budget.take(10) == 4  # larger than the budget: all of it
        gone = asyncio.ensure_future(budget.take(1))
        await asyncio.sleep(0)
        budget.give(4)  # granted to ``gone``...
        gone.cancel()  # ...which is cancelled before it runs: given back
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert budget.used == 0

    asyncio.run(scenario())


def test_a_provider_refusal_that_quotes_the_number_is_dead_lettered_without_it():
    """Twilio's 21211 names the number it refused; the ask's fact and its dead letter keep the
    code and the reason, never the number (dead letters hold no personal fields)."""
    from tests.fakes import dead_letters

    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    sms.failures["+15105550001"] = PermanentFailure("21211", "Invalid 'To' Phone Number: +15105550001 (or (510) 555-0001)")
    p, o = setup(2, clock, sms)
    run(p, o, [command(i) for i in range(2)])
    [letter] = dead_letters(p)
    assert (letter["reason"], letter["code"], status(p, 1)) == ("permanent provider failure", "21211", "failed")
    assert "555" not in json.dumps(letter) and "+15105550001" not in p.asks.get(command(1).ask_id).error
    assert letter["error"] == "Invalid 'To' Phone Number: <phone> (or <phone>)"


def test_an_opt_out_that_arrives_during_a_fan_out_stops_the_texts_not_yet_handed_over():
    clock = Clock(oakland("12:00"))
    p = None

    def stop_person_4(sent_so_far: int) -> None:
        if sent_so_far == 1:
            p.people.put(0, key(4), person(4).model_copy(update={"opted_out": {"sms": clock()}}))

    sms = Sms(clock, on_send=stop_person_4)
    p, o = setup(6, clock, sms, chunk=2)
    run(p, o, [command(i) for i in range(6)])
    assert sorted(s["to"] for s in sms.sent) == [f"+1510555{i:04d}" for i in (0, 1, 2, 3, 5)]
    assert status(p, 4) == "cancelled"


def test_an_erasure_or_opt_out_during_a_chunks_hand_over_stops_that_chunks_texts_not_yet_sent():
    """One chunk of six: person 4 is erased and person 5 opts out once the second text has
    left. Their texts, marked with the chunk, are not handed over: checked right before each
    request, not only when the chunk was marked (README: decided at the moment of sending)."""
    clock = Clock(oakland("12:00"))
    p = None

    def erase_4_and_stop_5(sent_so_far: int) -> None:
        if sent_so_far == 2:
            p.people.delete(0, key(4))
            p.people.put(0, key(5), person(5).model_copy(update={"opted_out": {"sms": clock()}}))

    sms = Sms(clock, on_send=erase_4_and_stop_5)
    p, o = setup(6, clock, sms, chunk=6)
    run(p, o, [command(i) for i in range(6)])
    assert sorted(s["to"] for s in sms.sent) == [f"+1510555{i:04d}" for i in range(4)]
    assert [status(p, i) for i in range(6)] == ["sent"] * 4 + ["cancelled"] * 2


def test_texts_waiting_for_a_request_slot_are_checked_once_they_have_one():
    """Two requests in flight (the sender's bound, as TwilioSms has): person 3 is erased once
    the first text has left, while the third and fourth texts of the chunk still wait for a
    slot; the fourth is not sent. Checked when it gets its slot, not when the chunk started."""
    clock = Clock(oakland("12:00"))
    p = None

    class TwoAtATime(Sms):
        def __init__(self, clock: Clock) -> None:
            super().__init__(clock)
            self.slots = asyncio.Semaphore(2)

        async def send(self, to, body, **kw):
            async with self.slots:
                await asyncio.sleep(0)  # the provider's answer takes a turn of the loop: the other requests start
                sent = await super().send(to, body, **kw)
            if to == "+15105550000":
                p.people.delete(0, key(3))
            return sent

    sms = TwoAtATime(clock)
    p, _ = setup(4, clock, sms)
    o = Outreach(outbox=ProviderOutbox(sms, FakeEmail(), "http://web", concurrency=2), policy=OutreachPolicy(), clock=clock,
                 partitions=4, chunk=4)
    run(p, o, [command(i) for i in range(4)])
    assert sorted(s["to"] for s in sms.sent) == [f"+1510555{i:04d}" for i in range(3)]
    assert status(p, 3) == "cancelled"


def test_a_partition_revoked_mid_batch_stops_sending_and_hands_marked_asks_back():
    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    p, o = setup(6, clock, sms, chunk=2)

    def owns(generation: int) -> bool:  # revoked as soon as chunk 2 is marked
        return not any(k == command(2).ask_id and v["status"] == "sending" for _, k, v in p.asks.table.changelog)

    run(p, o, [command(i) for i in range(6)], owns=owns)
    # Chunk 1's texts, whose requests came after the revoke, are not sent: each text is checked
    # right before its request, and left "sending" for the new owner to look up. Chunk 2 was
    # marked "sending" and is handed back as it was; chunk 3 was never touched.
    assert sms.sent == []
    assert [status(p, i) for i in range(6)] == ["sending", "sending", "planned", "planned", "planned", "planned"]
    marks = [value["status"] for _, k, value in p.asks.table.changelog if k == command(2).ask_id]
    assert marks == ["planned", "sending", "planned"]


def test_an_ask_left_sending_by_a_dead_worker_is_resent_only_if_the_provider_does_not_have_it():
    clock = Clock(oakland("12:00"))
    sms = Sms(clock, known={"+15105550000": "SMalready"})
    p, o = setup(2, clock, sms)
    for i in (0, 1):
        p.asks.put(0, command(i).ask_id, command(i).fact("sending", oakland("11:59")))
    run(p, o, [command(0), command(1)])
    assert [s["to"] for s in sms.sent] == ["+15105550001"]
    assert p.asks.get(command(0).ask_id).provider_id == "SMalready"
    assert (status(p, 0), status(p, 1)) == ("sent", "sent")


def test_a_text_a_dead_worker_handed_over_is_found_at_the_provider_whatever_clock_the_workers_decide_with():
    """An outside probe: a rehearsal's file clock set hours ahead, a worker killed mid-fan-out;
    its successor looked for the texts it left "sending" from the mark's time by that clock, which
    the provider's own stamps never reach, found none and texted 22 people twice. The mark keeps
    when it was made by the system clock, the provider's time frame, for that look-up."""
    ahead = Clock(oakland("12:00") + timedelta(days=400))  # the workers' file clock, far past the system's
    texts = FakeSms()  # stamps what it takes with the system clock, as Twilio does with its own

    class DiesAfterTheProviderTookIt(FakeSms):
        async def send(self, to, body, **kw):
            await texts.send(to, body, **kw)
            raise RuntimeError("the worker was killed before the answer")

    p, o = setup(1, ahead, DiesAfterTheProviderTookIt())
    ask = command(0, until=ahead() + timedelta(days=1))
    with pytest.raises(RuntimeError):
        run(p, o, [ask])
    assert status(p, 0) == "sending" and len(texts.sent) == 1
    successor = Outreach(outbox=ProviderOutbox(texts, FakeEmail(), "http://web"), policy=OutreachPolicy(), clock=ahead, partitions=4, chunk=2)
    run(p, successor, [ask])
    assert len(texts.sent) == 1 and status(p, 0) == "sent" and p.asks.get(ask.ask_id).provider_id == texts.sent[0]["sid"]


def rally() -> ActionEvent:
    from tests.integration.test_outreach import rapid
    return ActionEvent.model_validate(rapid("rally-1", "Rally", ["94607"]))


def test_planning_again_after_a_worker_died_skips_what_was_sent_and_looks_up_what_it_left_sending():
    clock = Clock(oakland("12:00"))
    sms = Sms(clock, known={"+15105550000": "SMalready"})
    p, o = setup(4, clock, sms)
    p.asks.put(0, command(0).ask_id, command(0).fact("sending", oakland("11:59")))  # the provider has it
    p.asks.put(0, command(1).ask_id, command(1).fact("sending", oakland("11:59")))  # the worker died before the call
    p.asks.put(0, command(2).ask_id, command(2).fact("sent", oakland("11:59")))
    for partition in range(4):
        asyncio.run(plan_partition(p, o, rally(), partition, owned=lambda: True))
    assert sorted(s["to"] for s in sms.sent) == ["+15105550001", "+15105550003"]
    assert [status(p, i) for i in range(4)] == ["sent"] * 4 and p.asks.get(command(0).ask_id).provider_id == "SMalready"


def test_an_edit_that_takes_people_or_a_channel_out_of_an_action_cancels_their_waiting_asks():
    """An outside probe: an alert edited at night to another ZIP, or to email only, still texted
    in the morning the people its first version had deferred, with its old text. Planned again,
    an action cancels the waiting asks it no longer makes; those it still makes wait re-written."""
    clock = Clock(oakland("22:00"))
    p, o = setup(4, clock, Sms(clock))
    first = rally().model_copy(update={"starts_at": oakland("18:00") + timedelta(days=1)})

    def planned(action: ActionEvent) -> None:
        for partition in range(4):
            asyncio.run(plan_partition(p, o, action, partition, owned=lambda: True))

    planned(first)
    assert [status(p, i) for i in range(4)] == ["deferred"] * 4
    planned(first.model_copy(update={"title": "Rally, moved"}))
    assert [status(p, i) for i in range(4)] == ["deferred"] * 4 and all("Rally, moved" in p.deferred.get(command(i).ask_id).body for i in range(4))
    planned(first.model_copy(update={"templates": first.templates.model_copy(update={"sms": {}})}))  # email only
    assert [status(p, i) for i in range(4)] == ["cancelled"] * 4 and not any(p.deferred.get(command(i).ask_id) for i in range(4))
    assert p.asks.get(command(0).ask_id).error == "no longer asked by the action as it stands"

    # An outside probe: SMS put back, the people whose texts the edit cancelled were never texted
    # (a cancelled or expired ask counted as asked already). They are asked again.
    planned(first)
    assert [status(p, i) for i in range(4)] == ["deferred"] * 4 and all(p.deferred.get(command(i).ask_id) for i in range(4))

    p, o = setup(4, clock, Sms(clock))
    planned(first)
    planned(first.model_copy(update={"target": first.target.model_copy(update={"postal_codes": ["10001"]})}))
    assert [status(p, i) for i in range(4)] == ["cancelled"] * 4
    planned(first)  # the target widened back
    assert [status(p, i) for i in range(4)] == ["deferred"] * 4


def test_texts_expired_by_an_earlier_start_are_asked_again_when_a_new_version_moves_the_start_later():
    clock = Clock(oakland("22:00"))
    p, o = setup(2, clock, Sms(clock))
    later = rally().model_copy(update={"starts_at": oakland("18:00") + timedelta(days=1)})
    for action in (later.model_copy(update={"starts_at": oakland("08:00") + timedelta(days=1)}), later):  # before 09:00, then after
        for partition in range(4):
            asyncio.run(plan_partition(p, o, action, partition, owned=lambda: True))
        if action is not later:
            assert [status(p, i) for i in range(2)] == ["expired"] * 2
    assert [status(p, i) for i in range(2)] == ["deferred"] * 2
    assert p.asks.get(command(0).ask_id).error is None and p.asks.get(command(0).ask_id).send_until == later.starts_at


def test_an_ask_a_stopped_worker_left_sending_for_someone_who_opted_out_since_is_settled_in_doubt_not_left_sending():
    """An outside probe: people who opted out while a frozen or killed worker's marks on their asks
    were waiting for the partition's new owner were planned again as nobody to ask, and their
    asks stayed "sending" for good (82 of 300). The text may have left before the worker stopped:
    in doubt, never sent now."""
    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    p, o = setup(2, clock, sms)
    for i in (0, 1):
        p.asks.put(0, command(i).ask_id, command(i).fact("sending", oakland("11:59")))
    opted_out = person(0).model_copy(update={"consent": {"sms": ConsentRecord(granted=False, partner="union-a", at=oakland("11:59"))}})
    p.people.put(0, key(0), opted_out)
    for partition in range(4):
        asyncio.run(plan_partition(p, o, rally(), partition, owned=lambda: True))
    assert [s["to"] for s in sms.sent] == ["+15105550001"]  # looked up, not found, sent
    assert [status(p, i) for i in (0, 1)] == ["in_doubt", "sent"]


def test_planning_opens_only_the_postal_code_of_people_out_of_the_area_or_without_consent_and_never_a_family_name():
    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    p = memory_pipeline()
    o = Outreach(outbox=ProviderOutbox(sms, FakeEmail(), "http://web"), policy=OutreachPolicy(), clock=clock, partitions=1, chunk=2,
                 keys=MemoryDataKeys())
    people = {0: person(0), 1: person(1).model_copy(update={"postal_code": "10001"}), 2: person(2).model_copy(update={"consent": {}})}
    keys = asyncio.run(o.keys.keys_for(key(i) for i in people))
    whose = {}  # sealed value → (person, field)
    for i, record in people.items():
        sealed = {f: keys[key(i)].seal(f, v) for f, v in (("phone", record.phone), ("postal_code", record.postal_code), ("given_name", f"P{i}"), ("family_name", f"F{i}"))}
        whose.update({v: (i, f) for f, v in sealed.items()})
        p.people.put(0, key(i), record.model_copy(update=sealed))
    opened = set()
    ring_open = o.keys.ring.open
    o.keys.ring.open = lambda name, value: opened.add(whose.get(value)) or ring_open(name, value)
    asyncio.run(plan_partition(p, o, rally(), 0, owned=lambda: True))
    assert [m["to"] for m in sms.sent] == ["+15105550000"] and "P0" in sms.sent[0]["body"]
    assert opened == {(0, "phone"), (0, "postal_code"), (0, "given_name"), (1, "postal_code"), (2, "postal_code")}


def test_a_partition_that_changes_hands_mid_plan_is_handed_on_and_its_next_owner_texts_the_rest_once():
    """The first owner loses the partition after two texts: it stops and puts the command back
    at the end of the partition; the next owner's planning of it sends the others, once each."""
    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    p, o = setup(16, clock, sms)
    mine = [i for i in range(16) if partition_of(key(i), 4) == 0]
    value = TargetAction(partner="union-a", action=rally(), posted_at=clock()).model_dump_json().encode()
    event = SimpleNamespace(key="rally-1", message=SimpleNamespace(topic="targeting", partition=0, offset=0, generation_id=1, value=value))
    asyncio.run(take(p, o, event, lambda generation: len(sms.sent) < 2, PeopleIndex(4)))
    assert len(sms.sent) == 2 and p.targeting.sent == [("rally-1", value, 0)]
    asyncio.run(take(p, o, event, lambda generation: True, PeopleIndex(4)))
    assert sorted(s["to"] for s in sms.sent) == [f"+1510555{i:04d}" for i in mine] and len(mine) > 2
    assert p.targeting.sent == [("rally-1", value, 0)]  # finished: not handed on again


def test_an_alert_posted_long_after_its_start_texts_nobody_and_its_asks_are_recorded_expired():
    """An outside probe: an old rapid-response action posted again (the README's example,
    copied) was texted to everyone at once, naming a time gone by. Its asks are recorded
    expired, none handed over."""
    clock = Clock(oakland("12:00") + timedelta(days=2))
    sms = Sms(clock)
    p, o = setup(8, clock, sms)
    value = TargetAction(partner="union-a", action=rally(), posted_at=clock()).model_dump_json().encode()
    for partition in range(4):
        event = SimpleNamespace(key="rally-1", message=SimpleNamespace(topic="targeting", partition=partition, offset=0, generation_id=1, value=value))
        asyncio.run(take(p, o, event, lambda generation: True, PeopleIndex(4)))
    assert sms.sent == [] and {status(p, i) for i in range(8)} == {"expired"}


class Held(Sms):
    """The first text waits at the provider until ``release`` is set."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.started, self.release = asyncio.Event(), asyncio.Event()

    async def send(self, to, body, **kwargs):
        if not self.started.is_set():
            self.started.set()
            await self.release.wait()
        return await super().send(to, body, **kwargs)


def test_an_ask_being_handed_over_by_planning_is_left_alone_by_the_same_workers_asks_topic_sender():
    """An action posted again while its deferred asks fall due: planning and the asks topic's
    sender of one worker meet the same ask. The one that marked it hands it over; the other leaves
    it alone instead of taking it for one a dead worker left "sending"."""
    clock = Clock(oakland("12:00"))

    async def scenario():
        sms = Held(clock)
        p, o = setup(1, clock, sms)
        planning = asyncio.ensure_future(plan_partition(p, o, rally(), partition_of(key(0), 4), owned=lambda: True))
        await sms.started.wait()
        await send_batch(p, o, [Queued(0, 1, command(0))], lambda generation: True)
        sms.release.set()
        await planning
        return p, o, sms

    p, o, sms = asyncio.run(scenario())
    assert [s["to"] for s in sms.sent] == ["+15105550000"] and status(p, 0) == "sent" and o.sending == set()


def test_without_a_provider_asks_are_recorded_cancelled_and_nothing_is_sent():
    clock = Clock(oakland("12:00"))
    p, o = setup(2, clock, None)
    run(p, o, [command(0), command(1)])
    assert [(status(p, i), p.asks.get(command(i).ask_id).error) for i in (0, 1)] == [("cancelled", "no provider configured")] * 2


def test_asks_of_an_action_that_has_started_expire_unsent():
    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    p, o = setup(2, clock, sms)
    run(p, o, [command(0, until=oakland("11:00")), command(1)])
    assert [s["to"] for s in sms.sent] == ["+15105550001"]
    assert status(p, 0) == "expired"


def test_yes_is_credited_to_the_delivered_ask_and_survives_the_deferred_asks_later_send():
    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    p, o = setup(1, clock, sms)
    delivered, deferred = command(0, action="vigil"), command(0, action="rally-1")
    p.asks.put(0, delivered.ask_id, delivered.fact("delivered", clock()))
    p.asks.put(0, deferred.ask_id, deferred.fact("deferred", clock()))
    p.recent_asks.put(0, key(0), RecentAsks(asks=((delivered.ask_id, oakland("10:00")), (deferred.ask_id, oakland("11:00")))))
    apply(p, o, 0, ProviderEnvelope(person_key=key(0), received_at=clock(), event=SmsReply(message_sid="SM1", keyword="YES")))
    assert p.asks.get(delivered.ask_id).replied_yes and not p.asks.get(deferred.ask_id).replied_yes
    assert p.attendance.get(f"vigil|{key(0)}").rsvp == "yes"

    run(p, o, [deferred])
    assert status(p, 0) == "sent"
    after: AskFact = p.asks.get(delivered.ask_id)
    assert after.replied_yes and after.status == "delivered"


def test_a_yes_after_its_rsvp_link_closed_is_no_rsvp():
    """An outside probe: a YES texted hours after the action started counted as an RSVP by text,
    while the RSVP link in that very text answered "too late to answer here". A YES follows the
    link's rule: open until ``rsvp_open`` after the start."""
    from contracts.facts import ActionRecord

    clock = Clock(oakland("12:00"))
    p, o = setup(1, clock, Sms(clock))
    asked = command(0)
    p.asks.put(0, asked.ask_id, asked.fact("delivered", oakland("09:00")))
    p.recent_asks.put(0, key(0), RecentAsks(asks=((asked.ask_id, oakland("09:00")),)))
    started = rally().model_copy(update={"starts_at": oakland("08:30")})
    p.actions.put(0, "rally-1", ActionRecord(partner="union-a", action=started))
    yes = lambda sid: ProviderEnvelope(person_key=key(0), received_at=clock(), event=SmsReply(message_sid=sid, keyword="YES"))  # noqa: E731
    apply(p, o, 0, yes("SM1"))  # 12:00, three and a half hours after the start: the link closed at 11:30
    assert not p.asks.get(asked.ask_id).replied_yes and p.attendance.get(f"rally-1|{key(0)}") is None
    p.actions.put(0, "rally-1", ActionRecord(partner="union-a", action=started.model_copy(update={"starts_at": oakland("10:00")})))
    apply(p, o, 0, yes("SM2"))  # moved later: open until 13:00
    assert p.asks.get(asked.ask_id).replied_yes and p.attendance.get(f"rally-1|{key(0)}").rsvp == "yes"


class FullQueue(Sms):
    """A From number whose queue holds ten hours already: Twilio refuses with 21611."""

    async def send(self, to, body, *, status_callback=None, validity_period=None):
        raise PermanentFailure("21611", "queue full")


def test_a_text_refused_for_a_full_sender_queue_is_deferred_not_failed():
    clock = Clock(oakland("12:00"))
    p, o = setup(1, clock, FullQueue(clock))
    run(p, o, [command(0)])
    assert status(p, 0) == "deferred"
    assert p.deferred.get(command(0).ask_id).send_after == oakland("12:15")
    # Refused at 20:50: the next try would fall in quiet hours, so it waits for the morning.
    clock.now = oakland("20:50")
    p, o = setup(1, clock, FullQueue(clock))
    run(p, o, [command(0)])
    assert p.deferred.get(command(0).ask_id).send_after == oakland("09:00") + timedelta(days=1)
    # And when no allowed hour is left before the action, it expires: still not "failed".
    p, o = setup(1, clock, FullQueue(clock))
    run(p, o, [command(0, until=oakland("21:30"))])
    assert status(p, 0) == "expired"


class KeyReadLate(MemoryDataKeys):
    """Data keys whose topic has one key this worker has not read yet: read when asked to catch up."""

    def __init__(self, person_key: str) -> None:
        super().__init__()
        self.unread = self.ring.new_key(person_key)

    async def caught_up(self, timeout: float = 30.0) -> bool:
        await asyncio.sleep(0)  # the broker answers on a later turn of the loop
        self.ring.add(self.unread)
        return True


def test_a_help_answer_still_reading_its_data_key_leaves_before_the_worker_stops():
    """The HELP callback is acknowledged once its answer is on its way; a worker stopping
    meanwhile lets the answer finish instead of dropping it."""
    async def stop_while_answering():
        keys, sms = KeyReadLate(key(0)), FakeSms()
        o = Outreach(outbox=ProviderOutbox(sms, FakeEmail(), "http://web"), policy=OutreachPolicy(), clock=Clock(oakland("12:00")),
                     partitions=4, keys=keys)
        answer(o, keys.unread.seal("phone", "+15105550000"), "Help: reply STOP to opt out")
        await close(o, SimpleNamespace(stop=lambda: asyncio.sleep(0)))
        return sms.sent

    assert [(m["to"], m["body"]) for m in asyncio.run(stop_while_answering())] == [("+15105550000", "Help: reply STOP to opt out")]


def test_asks_that_never_reached_a_person_take_no_room_under_the_frequency_cap():
    """Three asks this week, each cancelled, expired or failed, leave room for a fourth (the
    probe's finding: a text that expired unsent counted as one of the three a week); three that
    were delivered, are in doubt or still wait for the morning fill it."""
    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    p, o = setup(2, clock, sms)
    for i, statuses in enumerate((("cancelled", "expired", "failed"), ("delivered", "in_doubt", "deferred"))):
        earlier = [command(i, action=f"earlier-{n}") for n in range(3)]
        for ask, state in zip(earlier, statuses):
            p.asks.put(0, ask.ask_id, ask.fact(state, oakland("10:00")))
        p.recent_asks.put(0, key(i), RecentAsks(asks=tuple((ask.ask_id, oakland("10:00")) for ask in earlier)))
    for partition in range(4):
        asyncio.run(plan_partition(p, o, rally(), partition, owned=lambda: True))
    assert [s["to"] for s in sms.sent] == ["+15105550000"]


def test_a_merged_person_is_planned_again_only_for_alerts_posted_since_their_record_was_known_and_still_sending():
    from agents.outreach.agents import plan_again

    clock = Clock(oakland("12:00"))
    p, o = setup(0, clock, Sms(clock))
    posted = oakland("11:00")
    for action_id, at, starts in (("after", posted, oakland("18:00")), ("over", posted - timedelta(days=3), oakland("10:00"))):
        action = rally().model_copy(update={"action_id": action_id, "starts_at": starts})
        o.fanned_out[action_id] = TargetAction(partner="union-a", action=action, posted_at=at)
    plan_again(p, o, 2, key(1), posted - timedelta(days=1))  # a record known before the alert: planned again
    plan_again(p, o, 3, key(2), posted + timedelta(minutes=5))  # one learnt of after it: missed, as a later sign-up is
    assert [(k, json.loads(v)["person"], part) for k, v, part in p.targeting.sent] == [("after", key(1), 2)]
    assert set(o.fanned_out) == {"after"}  # the alert whose asks can no longer go is forgotten


class Heartbeats(Lease):
    """A lease looked at again and again: held from the ``answered``-th look on (a heartbeat
    answered), or never, until the ``lapsed``-th (the worker frozen past its session); the group
    moves the partition on at the ``refused``-th look (a heartbeat refused)."""

    def __init__(self, answered: int | None = None, refused: int | None = None, lapsed: int | None = None) -> None:
        self.looks, self.answered, self.refused, self.lapsed, self.revoked = 0, answered, refused, lapsed, False

    def held(self) -> bool:
        self.looks += 1
        self.revoked = self.revoked or (self.refused is not None and self.looks >= self.refused)
        return self.answered is not None and self.answered <= self.looks and (self.lapsed is None or self.looks < self.lapsed)


def test_a_worker_whose_lease_lapsed_sends_once_a_heartbeat_is_answered_and_nothing_if_the_group_moved_on():
    """An outside probe: a worker frozen past its session timeout, resumed, texted people its
    partitions' new owner had texted already. It cannot know it lost them until a heartbeat is
    answered or refused: it waits for one."""
    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    p, o = setup(2, clock, sms)
    p.app.lease = Heartbeats(answered=4)
    run(p, o, [command(0)])
    assert [s["to"] for s in sms.sent] == ["+15105550000"] and p.app.lease.looks >= 4

    p.app.lease = beats = Heartbeats(refused=3)
    run(p, o, [command(1)], owns=lambda generation: not beats.revoked)
    assert [s["to"] for s in sms.sent] == ["+15105550000"] and beats.looks >= 3  # not the second
    assert status(p, 1) == "planned"  # handed back, for the partition's new owner


def test_a_worker_frozen_while_its_text_is_with_the_provider_writes_nothing_of_it_once_the_group_moved_on():
    """CI (make test): resumed, a frozen worker wrote its requests' late answers over the facts
    its partitions' new owner had moved on since ("delivered" back to "sent", or to "in doubt"
    once their timeout fired). The answer is the new owner's to find: the ask stays "sending"."""
    clock = Clock(oakland("12:00"))
    beats = Heartbeats(answered=0)

    def freeze(_: int) -> None:  # frozen with the request out: lapsed from the next look on, the group moving on
        beats.lapsed = beats.refused = beats.looks + 1

    sms = Sms(clock, on_send=freeze)
    p, o = setup(1, clock, sms)
    p.app.lease = beats
    run(p, o, [command(0)], owns=lambda generation: not beats.revoked)
    assert len(sms.sent) == 1 and status(p, 0) == "sending"


def test_a_worker_frozen_once_its_marks_were_made_does_not_hand_them_back_once_the_group_moved_on():
    """Handed back so late, the marks would undo what the new owner did with the asks since (a
    text sent and delivered, back to "planned"): they stay "sending", for it to look up."""
    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    p, o = setup(2, clock, sms)
    p.app.lease = beats = Heartbeats(answered=0, lapsed=2, refused=2)  # held while the chunk is marked, not after
    run(p, o, [command(0), command(1)], owns=lambda generation: not beats.revoked)
    assert sms.sent == [] and [status(p, i) for i in (0, 1)] == ["sending", "sending"]


def test_a_worker_frozen_mid_plan_remembers_nothing_of_the_people_it_had_left_once_the_group_moved_on():
    """Its partitions' new owner planned them since: a frozen worker's late "asked recently"
    would overwrite what the new owner remembers of them (the frequency cap's window)."""
    clock = Clock(oakland("12:00"))
    sms = Sms(clock)
    p, o = setup(16, clock, sms)
    p.app.lease = beats = Heartbeats(refused=1)
    value = TargetAction(partner="union-a", action=rally(), posted_at=clock()).model_dump_json().encode()
    event = SimpleNamespace(key="rally-1", message=SimpleNamespace(topic="targeting", partition=0, offset=0, generation_id=1, value=value))
    asyncio.run(take(p, o, event, lambda generation: not beats.revoked, PeopleIndex(4)))
    assert sms.sent == [] and p.recent_asks.table.changelog == []


class Answering(Sms):
    """A provider still answering a dead worker's request for ``to``: the text is there
    ``after`` seconds from now, not before."""

    def __init__(self, clock: Clock, to: str, after: float) -> None:
        super().__init__(clock)
        self.to, self.lands = to, time.monotonic() + after

    async def find(self, to, body, since):
        return "SMlate" if to == self.to and time.monotonic() >= self.lands else None


def test_a_dead_workers_text_is_looked_up_only_once_its_request_can_no_longer_be_answered():
    """An outside probe: with a provider answering in 20 s (a 30 s timeout), the new owner looked
    a killed worker's texts up after 8 s, found none, and sent them again."""
    clock = Clock(oakland("12:00"))
    sms = Answering(clock, "+15105550000", after=0.3)
    p = memory_pipeline()
    p.people.put(0, key(0), person(0))
    p.asks.put(0, command(0).ask_id, command(0).fact("sending", oakland("11:59")))
    o = Outreach(outbox=ProviderOutbox(sms, FakeEmail(), "http://web", answered_within=0.4), policy=OutreachPolicy(), clock=clock, partitions=4, chunk=2)
    run(p, o, [command(0)])
    assert sms.sent == [] and (status(p, 0), p.asks.get(command(0).ask_id).provider_id) == ("sent", "SMlate")
