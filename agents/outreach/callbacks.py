"""The receipts agent: provider callbacks and supporter replies → ask states, opt-outs, RSVPs."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Sequence

from contracts.asks import AskFact, parse_ask_id
from contracts.events import RsvpEvent
from contracts.people import Person
from contracts.providers import AskReply, EmailEvent, PersonOptOut, ProviderEnvelope, SmsReply, SmsStatus
from streams import metrics
from streams.app import Pipeline
from streams.keys import fact_key, person_key
from streams.sealing import open_person, seal_ask, sealing_key

from ..identity import target_of

from ..facts import apply_attendance
from contracts.providers import TWILIO_QUEUE_OVERFLOW, TWILIO_VALIDITY_EXPIRED

from .agents import Outreach, carry_out, withdraw_waiting
from .planning import plan
from .receipts import (RECEIVED, about_its_text, answer_text, known_or_new, mark_undeliverable, on_email_event, on_sms_status, opt_in, opt_out, opts_out, reply_kind,
                       reply_target, stop_confirmed, undeliverable_code)
from .sending import after_queue_full, after_validity_expired

log = logging.getLogger(__name__)


def register(p: Pipeline, o: Outreach, help_texts: Callable[[], Mapping[str, str]], person_secret: bytes) -> None:
    """The provider topic, a fetch at a time (``Pipeline.take_in_batches``: two callbacks per
    text make it the busiest topic of a fan-out). A text back (HELP, STOP) leaves on a task of
    its own (``Outreach.answering``, which a stopping worker lets finish): reading a person's
    data key may wait for the broker, the fetch loop must not."""

    def apply_receipts(batch: Sequence[Any]) -> None:
        for m in batch:
            envelope = p.parse(ProviderEnvelope, m, "provider envelope")
            if envelope is None:
                continue
            kind, ev = receive(p, o, m.partition, envelope), envelope.event
            person = p.people.get(envelope.person_key) if kind is not None and isinstance(ev, SmsReply) else None
            text = answer_text(kind, help_texts(), ev.opt_out_handled_by_twilio, person.language) if person is not None else None
            if text and person is not None and person.phone and ev.sender and o.outbox is not None:
                answer(o, person.phone, text, lambda phone, sender=ev.sender: person_key(person_secret, phone, None) == sender)

    p.take_in_batches(p.provider, apply_receipts)


def answer(o: Outreach, sealed_phone: str, text: str, sent_it: Callable[[str], bool] = lambda phone: True) -> None:
    """Text ``text`` back on a task of its own (``text_back``), in ``o.answering`` until done."""
    o.answer_soon(text_back(o, sealed_phone, text, sent_it))


async def text_back(o: Outreach, sealed_phone: str, text: str, sent_it: Callable[[str], bool]) -> None:
    """Queue ``text`` to the person (``Outbox.reply``): their phone opened, their data key read
    up to now if need be; nothing if they were erased since, or if that phone is not the one
    the reply came from (``sent_it``): a person's older phone is not kept, and their newest
    did not ask (it may have said STOP)."""
    if not o.keys.ring.readable(sealed_phone):
        await o.keys.caught_up()
    phone = o.keys.ring.open("phone", sealed_phone)
    if phone is not None and not sent_it(phone):
        log.info("a reply from a person's earlier phone: not answered (only their newest is kept)")
    elif phone is not None and o.outbox is not None:
        o.outbox.reply(phone, text)


def receive(p: Pipeline, o: Outreach, partition: int, env: ProviderEnvelope) -> str | None:
    """Apply one callback here, or forward a reply (or an opt-out) about a person key that now
    belongs to another person there; return what ``apply`` returns."""
    if not isinstance(env.event, (SmsStatus, EmailEvent, AskReply)) and forwarded(p, env):
        return None
    return apply(p, o, partition, env)


def forwarded(p: Pipeline, env: ProviderEnvelope) -> bool:
    """Whether ``env`` is about a person key that now belongs to another person (a phone linked
    to a person keyed by their email, a merged person): if so it goes there, on the provider
    topic, since the person's record and asks live on that person's partition."""
    target = target_of(p, env.person_key)
    if target == env.person_key:
        return False
    p.send_soon(p.provider, target, env.model_copy(update={"person_key": target}).model_dump_json().encode())
    return True


def apply(p: Pipeline, o: Outreach, partition: int, env: ProviderEnvelope) -> str | None:
    """Apply one callback; return "help" or "stop" when the person may need a text back."""
    ev, at, pk = env.event, env.received_at, env.person_key
    if isinstance(ev, PersonOptOut):
        _set_person(p, partition, pk, lambda person: opt_out(person, ev.channel, at), at)
        return None
    if isinstance(ev, AskReply):
        if (fact := p.asks.get(ev.ask_id)) is not None and fact.status in RECEIVED:
            mark_replied(p, o, partition, fact, ev, at)
        return None
    if isinstance(ev, (SmsStatus, EmailEvent)):
        fact = p.asks.get(ev.ask_id)
        if fact is None:
            log.warning("callback for an unknown ask")
            return None
        if isinstance(ev, SmsStatus) and not about_its_text(fact, ev.message_sid):
            log.info("a status callback about another text than the ask's: ignored")
            return None
        if isinstance(ev, SmsStatus) and ev.error_code in NOT_SENT:
            if fact.status not in ("delivered", "expired"):
                dropped_in_queue(p, o, partition, fact, ev)
            return None
        new = on_sms_status(fact, ev, at) if isinstance(ev, SmsStatus) else on_email_event(fact, ev, at)
        p.asks.put(partition, ev.ask_id, new)
        if channel := opts_out(ev):
            # The ask stays with the key it was sent to; the opt-out goes to whoever that is now.
            opted = ProviderEnvelope(person_key=pk, received_at=at, event=PersonOptOut(channel=channel))
            if not forwarded(p, opted):
                _set_person(p, partition, pk, lambda person: opt_out(person, channel, at), at)
        if (code := undeliverable_code(ev)) is not None and target_of(p, pk) == pk and (person := p.people.get(pk)) is not None:
            # Not forwarded to a person this key was merged into: their address there may be another.
            p.people.put(partition, pk, mark_undeliverable(person, fact.channel, code, at, fact.updated_at))
            withdraw_waiting(p, partition, pk, at)
        if new.status == "failed" and fact.status != "failed":
            sms = isinstance(ev, SmsStatus)
            metrics.PROVIDER_ERRORS.labels("twilio" if sms else "sendgrid", (ev.error_code if sms else ev.event) or "failed").inc()
            if sms:  # Twilio refused it after accepting it: final (Twilio does not retry it, nor do we).
                p.dead_letter(ev.ask_id, "provider reported the text failed", code=ev.error_code)
        return None
    return _reply(p, o, partition, pk, ev, at)


def _reply(p: Pipeline, o: Outreach, partition: int, pk: str, ev: SmsReply, at: datetime) -> str | None:
    person = p.people.get(pk)
    if ev.message_sid and person is not None and ev.message_sid in person.replies:
        return None  # delivered again: applied and answered already
    kind, after = reply_kind(ev.keyword, person, ev.opt_in_counts), person
    if kind == "opt_out":
        after = opt_out(known_or_new(person, pk, at), "sms", at)
        _reply_to_latest(p, o, partition, pk, at, message_sid=ev.message_sid, stop=True)
    elif kind == "opt_in" and person is not None:
        after = opt_in(person, "sms")
    elif kind == "rsvp" and person is not None and person.phone:
        _reply_to_latest(p, o, partition, pk, at, message_sid=ev.message_sid, yes=True, phone=person.phone)
    if after is not None:
        p.people.put(partition, pk, after.replied(ev.message_sid) if ev.message_sid else after)
        withdraw_waiting(p, partition, pk, at)
    if kind == "opt_out":
        return "stop" if stop_confirmed(person, at) else None
    return "help" if kind == "help" else None


#: Twilio dropped the text from the sender's queue unsent: its window closed while it queued
#: (30036), or a Messaging Service's queue was full (30001, as 21611 is for a From number):
#: when to try again (``sending``), while the action is ahead.
NOT_SENT = {str(TWILIO_VALIDITY_EXPIRED): after_validity_expired, str(TWILIO_QUEUE_OVERFLOW): after_queue_full}


def dropped_in_queue(p: Pipeline, o: Outreach, partition: int, fact: AskFact, ev: SmsStatus) -> None:
    """Twilio dropped the text unsent (``NOT_SENT``): defer it, rebuilt from today's person and
    action, or record it expired when they are gone or no allowed hour is left."""
    now, code = o.clock(), ev.error_code
    fact = fact.model_copy(update={"provider_id": None, "dropped": (*fact.dropped, ev.message_sid)})  # no text of it is out
    record, person = p.actions.get(fact.action_id), p.people.get(fact.person_key)
    readable = open_person(person, o.keys.ring) if person is not None else None  # None: gone, or erased
    asks = plan(readable, record.action, None, set(), now, o.policy, sponsors=frozenset({fact.partner})) if record and readable else []
    ask = next((seal_ask(a, sealing_key(person, o.keys.ring)) for a in asks if a.ask_id == fact.ask_id), None)
    if ask is None:  # the person or the action is gone, or the person no longer qualifies
        p.asks.put(partition, fact.ask_id, fact.model_copy(update={"status": "expired", "updated_at": now, "error_code": code}))
        return
    ask = ask.model_copy(update={"send_until": fact.send_until})  # the grace counts from the first posting
    carry_out(p, partition, ask, fact, NOT_SENT[code](ask, now, o.policy.quiet), now, error_code=code)


def _reply_to_latest(p: Pipeline, o: Outreach, partition: int, pk: str, at: datetime, **reply: Any) -> None:
    """Mark the text a YES or STOP of ``pk`` answers (``reply``: the ``AskReply`` but its ask):
    ``pk``'s newest SMS ask the provider accepted, here; or, when the newest is one merged in
    with another record of the person (its key in the ask id: its fact is on that record's
    partition, not readable here), there (``AskReply``)."""
    aid = reply_target(p.recent_asks.get(pk), pk, p.asks.get)
    if aid is None:
        return
    answer = AskReply(ask_id=aid, **reply)
    if (owner := parse_ask_id(aid)[1]) != pk:
        handed = ProviderEnvelope(person_key=owner, received_at=at, event=answer)
        p.send_soon(p.provider, owner, handed.model_dump_json().encode())
        return
    mark_replied(p, o, partition, p.asks.get(aid), answer, at)


def mark_replied(p: Pipeline, o: Outreach, partition: int, fact: AskFact, reply: AskReply, at: datetime) -> None:
    """The ask a reply answers, marked: STOP flags it; YES, while the RSVP link in that text
    still takes answers (``rsvp_open`` after the action's start, by the workers' clock: a
    rehearsal's file clock, as the pages'), flags it and is an RSVP yes credited to its partner."""
    if reply.stop:
        p.asks.put(partition, fact.ask_id, fact.model_copy(update={"opted_out": True}))
    elif reply.yes and reply.phone and rsvp_open(p, fact.action_id, o.clock(), o.policy.rsvp_open):
        p.asks.put(partition, fact.ask_id, fact.model_copy(update={"replied_yes": True}))
        person = Person.model_validate({"phone": reply.phone}, context={"normalized": True})
        rsvp = RsvpEvent(event_id=f"sms:{reply.message_sid}", occurred_at=at, action_id=fact.action_id, status="yes", person=person)
        key = fact_key(fact.action_id, fact.person_key)
        p.attendance.put(partition, key, apply_attendance(p.attendance.get(key), rsvp, fact.partner, fact.person_key, at))


def rsvp_open(p: Pipeline, action_id: str, now: datetime, open_for: timedelta) -> bool:
    """Whether an answer to ``action_id`` is still taken ``now`` (an action unknown here: yes)."""
    record = p.actions.get(action_id)
    return record is None or record.action.takes_answers(now, open_for)


def _set_person(p: Pipeline, partition: int, pk: str, change, at: datetime) -> None:
    person = p.people.get(pk)
    p.people.put(partition, pk, change(known_or_new(person, pk, at)))
    withdraw_waiting(p, partition, pk, at)
