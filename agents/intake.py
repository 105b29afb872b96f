"""The intake agent: accepted partner events → people, memberships and fact tables.

Decode, resolve the person (``agents.identity``: an event naming an identifier that belongs to
another person's key goes there first), decide with ``agents.people`` / ``agents.facts``,
write what changed. Events come in
batches; the batch's writes are acknowledged by the broker before the batch is, so a crash
can only replay events, never lose their facts. A record that cannot be decoded goes to the
dead-letter topic with the reason; the agent never dies on one.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from pydantic import ValidationError

from contracts.erasure import FORGET_PREFIX, ForgetPerson
from contracts.events import ActionEvent, CheckinEvent, Envelope, OptOutEvent, PledgeEvent, RsvpEvent, SignupEvent, SupporterRsvpEvent
from contracts.facts import Pledge, withdrawal_refused
from streams.app import Pipeline
from streams.batching import key_text
from streams.clock import Clock, system_clock
from streams.keys import fact_key, pledge_key
from streams.topology import excerpt

from .erasure import forget
from .identity import Resolver
from .facts import Refused, apply_action, apply_attendance, apply_pledge, inline_pledges, listed_now, taken_back
from .outreach.agents import fan_out, withdraw_waiting
from .outreach.receipts import stopped
from .people import introduce, membership, merge_person

log = logging.getLogger(__name__)


def register(p: Pipeline, person_secret: bytes, clock: Clock = system_clock, resolver: Resolver | None = None) -> None:
    """Intake takes the events topic a fetch at a time (``Pipeline.take_in_batches``: the hot path)."""
    resolver = resolver or Resolver(p, person_secret)

    p.take_in_batches(p.events, lambda batch: handle_batch(p, batch, person_secret, clock, resolver))


def handle_batch(p: Pipeline, batch: Sequence[Any], person_secret: bytes, clock: Clock = system_clock, resolver: Resolver | None = None) -> None:
    """Apply the records of one fetch (Faust ``Message``s: raw key and value), in order."""
    for m in batch:
        handle(p, m.partition, key_text(m.key), m.value, person_secret, clock, where={"topic": m.topic, "partition": m.partition, "offset": m.offset},
               resolver=resolver)


def handle(p: Pipeline, partition: int, key: str | None, raw: bytes | None, person_secret: bytes, clock: Clock = system_clock,
           where: dict[str, object] | None = None, resolver: Resolver | None = None) -> None:
    """Apply one record of the events topic (``where`` it is: for dead letters)."""
    where = where or {}
    if raw is None:
        p.dead_letter(key, "empty record (no value)", **where)
        return
    if key and key.startswith(FORGET_PREFIX):
        # Erasure requests share the events topic so they are ordered with the person's events.
        try:
            forget(p, partition, ForgetPerson.model_validate_json(raw), person_secret, clock())
        except ValidationError as exc:
            p.dead_letter(key, "invalid erasure request", errors=exc.errors(include_input=False, include_url=False), **excerpt(raw, **where))
        return
    try:
        envelope = Envelope.model_validate_json(raw, context={"normalized": True})
    except ValidationError as exc:
        p.dead_letter(key, "invalid envelope", errors=exc.errors(include_input=False, include_url=False), **excerpt(raw, **where))
        return
    except ArithmeticError as exc:  # date arithmetic past the calendar's edge in a validator: as unreadable
        p.dead_letter(key, f"unreadable envelope ({type(exc).__name__})", **excerpt(raw, **where))
        return
    if envelope.person_key is not None and not (resolver or Resolver(p, person_secret)).arrived(partition, envelope):
        return  # on its way to the person it belongs to (agents.identity)
    for derived in record(p, partition, envelope):
        if isinstance(derived, Envelope):
            p.send_soon(p.events, pledge_key(derived.event.action_id, derived.partner), derived.model_dump_json().encode())
        else:
            record_ = p.actions.get(derived.action_id)
            owner = record_.partner if record_ is not None else envelope.partner
            posted = (record_.first_received if record_ is not None else None) or envelope.received_at  # posted again: no new grace
            fan_out(p, derived, owner, posted, co_sponsors(p, derived.action_id), clock())


def record(p: Pipeline, partition: int, envelope: Envelope) -> list[Envelope | ActionEvent]:
    """Apply one event to the tables; return what it implies: an action's inline pledges, and
    the action itself when it is a rapid-response action to fan out."""
    event, partner, person, received = envelope.event, envelope.partner, envelope.person_key, envelope.received_at
    if isinstance(event, SignupEvent):
        p.people.put(partition, person, merge_person(p.people.get(person), event, partner, person, received))
        key = fact_key(partner, person)
        p.memberships.put(partition, key, membership(p.memberships.get(key), partner, person, event.occurred_at))
    elif isinstance(event, SupporterRsvpEvent) and p.people.get(person) is None:
        # The RSVP page's answer names an ask, so its person had a record: now gone, erased. A
        # link sent before still opens; what it answers is not written about them.
        log.info("an answer from the RSVP link of a forgotten person was not recorded")
    elif isinstance(event, (RsvpEvent, SupporterRsvpEvent, CheckinEvent)):
        if not isinstance(event, SupporterRsvpEvent) and event.introduces:  # a name, postal code, language or consent: the partner knows this person
            p.people.put(partition, person, introduce(p.people.get(person), event, partner, person, received))
            key = fact_key(partner, person)
            p.memberships.put(partition, key, membership(p.memberships.get(key), partner, person, event.occurred_at))
        key = fact_key(event.action_id, person)
        old = p.attendance.get(key)
        if isinstance(event, CheckinEvent) and (refused := withdrawal_refused(old, event, partner, envelope.role)):
            p.dead_letter(f"checkin:{event.action_id}", refused, partner=partner, event_id=event.event_id)
        p.attendance.put(partition, key, apply_attendance(old, event, partner, person, received, envelope.role))
    elif isinstance(event, OptOutEvent):  # as a STOP or an unsubscribe: coalition-wide, never the contact details
        p.people.put(partition, person, stopped(p.people.get(person), person, event.channels, received))
        withdraw_waiting(p, partition, person, received)
    elif isinstance(event, PledgeEvent):
        if envelope.inline and not listed_now(p.actions.get(event.action_id), event):
            return []  # listed by a version of the action replaced since
        key = fact_key(event.action_id, partner)
        p.pledges.put(partition, key, apply_pledge(p.pledges.get(key), event, partner, received, envelope.inline))
    elif isinstance(event, ActionEvent):
        new = apply_action(p.actions.get(event.action_id), event, partner, envelope.role, received)
        if isinstance(new, Refused):
            p.dead_letter(f"action:{event.action_id}", new.reason, partner=partner, event_id=event.event_id)
            return []
        p.actions.put(partition, event.action_id, new)
        if new.action == event:
            for gone in taken_back(pledges_of(p, event.action_id), event, partner, envelope.role):
                p.pledges.delete(partition, fact_key(event.action_id, gone))
            # Forwarded even when the table already had it: a replay after a crash must
            # not lose pledges (or a fan-out) cut off by a crash. Both are idempotent.
            return [*inline_pledges(envelope), *([event] if event.rapid_response else [])]
    return []


def pledges_of(p: Pipeline, action_id: str) -> list[Pledge]:
    """The action's pledges (they live on the action's partition: ``streams.keys.routing_key``)."""
    prefix = fact_key(action_id, "")
    return [pledge for key in list(p.pledges.table.data) if key.startswith(prefix) and (pledge := p.pledges.get(key)) is not None]


def co_sponsors(p: Pipeline, action_id: str) -> list[str]:
    """Partners that joined the action with a pledge of their own."""
    return [pledge.partner for pledge in pledges_of(p, action_id) if not pledge.inline]
