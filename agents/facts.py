"""Fact transitions: RSVPs, check-ins, pledges and actions become idempotent keyed facts.

Every transition is a merge that is order-independent and idempotent, so the at-least-once
reprocessing Faust does after a crash or rebalance cannot move a number:

- *RSVP*: the RSVP with the latest ``occurred_at`` is in force (ties: the later status in
  the order no < maybe < yes); its poster is credited with the RSVP (``rsvp_by``).
- *Check-in*: a person who checks in twice is one attendee. Credit for attending goes to
  the partner that posted the first check-in (ties: the smaller partner id).
- *Pledge*: a later pledge (``occurred_at``, then ``event_id``) replaces the earlier one.
  Pledges listed inside an action count as that partner's pledge at the action's time.
- *Action*: the version with the latest ``occurred_at`` is kept.
"""

from __future__ import annotations

from contracts.events import ActionEvent, CheckinEvent, Envelope, PledgeEvent, RsvpEvent
from contracts.facts import ActionRecord, Attendance, Pledge

_STATUS_ORDER = {"no": 0, "maybe": 1, "yes": 2}


def apply_attendance(
    old: Attendance | None, event: RsvpEvent | CheckinEvent, partner: str, person_key: str
) -> Attendance:
    fact = old or Attendance(action_id=event.action_id, person_key=person_key)
    at = event.occurred_at
    if isinstance(event, RsvpEvent):
        mine = (at, _STATUS_ORDER[event.status])
        if fact.rsvp_at is None or mine >= (fact.rsvp_at, _STATUS_ORDER[fact.rsvp]):
            return fact.model_copy(update={"rsvp": event.status, "rsvp_at": at, "rsvp_by": partner})
        return fact
    if fact.attended_at is None or (at, partner) < (fact.attended_at, fact.attended_by):
        return fact.model_copy(update={"attended_at": at, "attended_by": partner})
    return fact


def apply_pledge(old: Pledge | None, event: PledgeEvent, partner: str) -> Pledge:
    new = Pledge(action_id=event.action_id, partner=partner, count=event.count, occurred_at=event.occurred_at, event_id=event.event_id)
    if old is None or (new.occurred_at, new.event_id) >= (old.occurred_at, old.event_id):
        return new
    return old


def apply_action(old: ActionRecord | None, event: ActionEvent, partner: str) -> ActionRecord:
    if old is None or event.occurred_at >= old.action.occurred_at:
        return ActionRecord(partner=partner, action=event)
    return old


def inline_pledges(envelope: Envelope) -> list[Envelope]:
    """The pledges listed in an action, as pledge events of the partners named."""
    action = envelope.event
    assert isinstance(action, ActionEvent)
    return [
        Envelope(
            partner=p.partner,
            received_at=envelope.received_at,
            event=PledgeEvent(
                event_id=f"{action.event_id}#pledge",
                occurred_at=action.occurred_at,
                action_id=action.action_id,
                count=p.count,
            ),
        )
        for p in action.pledges
    ]
