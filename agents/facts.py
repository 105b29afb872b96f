"""Fact transitions: RSVPs, check-ins, pledges and actions become idempotent keyed facts.

Every transition is a merge that is order-independent and idempotent, so the at-least-once
reprocessing Faust does after a crash or rebalance cannot move a number. Credit is decided by
when the coalition *received* an event (the envelope's ``received_at``, stamped by the
ingress), never by the ``occurred_at`` a partner wrote, which is kept for display: a partner
cannot take credit by backdating, and an old sign-in sheet imported today still counts.

- *RSVP*: the RSVP received last is in force (ties: the later status in the order
  no < maybe < yes); its poster is credited with the RSVP (``rsvp_by``). The same RSVP posted
  again (same partner, event id, answer and time) is a repeat: received later, it moves nothing.
- *Check-in*: a person who checks in twice is one attendee. Credit for attending goes to
  the partner whose check-in was received first (ties: the smaller partner id). A withdrawn
  check-in (``withdrawn: true``: a wrong tap at the door) takes back the check-ins received
  before it; only the partner credited with the check-in, or a backbone partner, may post it
  (anyone else is refused). A check-in received after it counts again.
- *Pledge*: a partner's own pledge always wins over one listed inside the action by its
  owner; between two of the same kind, the one received later (then the larger event id).
- *Action*: owned by the partner that first posted it; only the owner or a backbone partner
  may change it (anyone else is refused); the version received last is kept, and so are the
  owner and when it was first received (a rapid-response action's grace counts from then).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from contracts.events import ActionEvent, CheckinEvent, Envelope, PledgeEvent, RsvpEvent, SupporterRsvpEvent
from contracts.facts import ActionRecord, Attendance, Pledge

_STATUS_ORDER = {"no": 0, "maybe": 1, "yes": 2}


@dataclass(frozen=True)
class Refused:
    """The event may not change this fact; nothing is written. ``reason`` says why."""

    reason: str


def rsvp_rank(a: Attendance) -> tuple:
    """The RSVP in force is the one with the largest rank: received last, then no < maybe <
    yes, then the partner and the time it gave (so equal stamps never depend on the order)."""
    return (a.rsvp_received or a.rsvp_at, _STATUS_ORDER[a.rsvp], a.rsvp_by or "", a.rsvp_at)


def checkin_rank(a: Attendance) -> tuple:
    """The check-in credited is the one with the smallest rank: received first, then the smaller
    partner id, then the earlier time it gave."""
    return (a.attended_received or a.attended_at, a.attended_by or "", a.attended_at)


def apply_attendance(
    old: Attendance | None, event: RsvpEvent | SupporterRsvpEvent | CheckinEvent, partner: str, person_key: str, received: datetime,
    role: str = "member",
) -> Attendance | Refused | None:
    """The attendance fact after ``partner`` (of ``role``) posted ``event``; ``None``: nothing to
    write (a withdrawal of a check-in nobody posted)."""
    if isinstance(event, CheckinEvent) and event.withdrawn:
        return withdraw_checkin(old, event.action_id, partner, role, received)
    if isinstance(event, CheckinEvent) and old is not None and old.withdrawn_received is not None and received <= old.withdrawn_received:
        return old  # taken back by a withdrawal received after it (posted again, or replayed)
    rsvp = isinstance(event, (RsvpEvent, SupporterRsvpEvent))  # an RSVP from the RSVP page counts like any other
    if rsvp:
        seen = rsvp_digest(event, partner)
        if old is not None and seen in old.rsvp_events:
            return old  # posted again (a retry, a redelivery, a re-run import): received later, but no newer answer
        update: dict = {"rsvp": event.status, "rsvp_at": event.occurred_at, "rsvp_by": partner, "rsvp_received": received,
                        "rsvp_events": tuple(sorted({*(old.rsvp_events if old else ()), seen}))}  # sorted: the same in any order
    else:
        update = {"attended_at": event.occurred_at, "attended_by": partner, "attended_received": received}
    if old is None:  # the common case: one model built, no copies
        return Attendance(action_id=event.action_id, person_key=person_key, first_received=received, **update)
    first = {"first_received": received} if old.first_received is None or received < old.first_received else {}
    new = old.model_copy(update={**update, **first})
    if rsvp:
        wins = old.rsvp_at is None or rsvp_rank(new) >= rsvp_rank(old)
        kept = {**first, "rsvp_events": new.rsvp_events}  # a losing RSVP is a repeat too, if posted again
    else:
        wins = old.attended_at is None or checkin_rank(new) < checkin_rank(old)
        kept = first
    return new if wins else (old.model_copy(update=kept) if kept else old)


def withdraw_checkin(old: Attendance | None, action_id: str, partner: str, role: str, received: datetime) -> Attendance | Refused | None:
    """The attendance after ``partner`` withdrew the person's check-in: the check-in in force
    taken back if it was received before the withdrawal."""
    if old is None or old.attended_at is None or (old.attended_received or old.attended_at) > received:
        return old  # no check-in to take back, or one received after this withdrawal
    if old.attended_by != partner and role != "backbone":
        return Refused(f"the check-in for {action_id!r} was posted by {old.attended_by!r}: only it or the backbone may withdraw it")
    return old.model_copy(update={"attended_at": None, "attended_by": None, "attended_received": None, "withdrawn_received": received})


def rsvp_digest(event: RsvpEvent | SupporterRsvpEvent, partner: str) -> str:
    """What makes an RSVP the same one posted again: its partner, event id, answer and time (the
    RSVP page keeps one event id per ask, and stamps each answer with its own time)."""
    return hashlib.sha256(f"{partner}\0{event.event_id}\0{event.status}\0{event.occurred_at.isoformat()}".encode()).hexdigest()[:16]


def apply_pledge(old: Pledge | None, event: PledgeEvent, partner: str, received: datetime, inline: bool = False) -> Pledge:
    new = Pledge(action_id=event.action_id, partner=partner, count=event.count, occurred_at=event.occurred_at,
                 event_id=event.event_id, inline=inline, received_at=received)
    if old is None:
        return new
    rank = lambda p: (not p.inline, p.received_at or p.occurred_at, p.event_id)  # noqa: E731
    return new if rank(new) >= rank(old) else old


def apply_action(old: ActionRecord | None, event: ActionEvent, partner: str, role: str, received: datetime) -> ActionRecord | Refused:
    """The action record after ``partner`` (of ``role``) posted ``event``."""
    if event.override_quiet_hours and role != "backbone":
        return Refused("override_quiet_hours is for the backbone partner only")
    if old is None:
        return ActionRecord(partner=partner, action=event, received_at=received, first_received=received)
    if partner != old.partner and role != "backbone":
        return Refused(f"action {event.action_id!r} belongs to {old.partner!r}: only it or the backbone may change it")
    first = min(received, old.first_received or old.received_at or received)
    if received >= (old.received_at or old.action.occurred_at):
        return ActionRecord(partner=old.partner, action=event, received_at=received, first_received=first)
    return old if old.first_received == first else old.model_copy(update={"first_received": first})


def inline_pledges(envelope: Envelope) -> list[Envelope]:
    """The pledges listed in an action, as pledge events of the partners named."""
    action = envelope.event
    assert isinstance(action, ActionEvent)
    return [
        Envelope(
            partner=p.partner,
            received_at=envelope.received_at,
            inline=True,
            event=PledgeEvent(
                event_id=f"{action.event_id}#pledge",
                occurred_at=action.occurred_at,
                action_id=action.action_id,
                count=p.count,
            ),
        )
        for p in action.pledges
    ]
