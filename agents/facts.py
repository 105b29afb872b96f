"""Fact transitions: RSVPs, check-ins, pledges and actions become idempotent keyed facts.

Every transition is a merge that is order-independent and idempotent, so the at-least-once
reprocessing Faust does after a crash or rebalance cannot move a number. Credit is decided by
when the coalition *received* an event (the envelope's ``received_at``, stamped by the
ingress), never by the ``occurred_at`` a partner wrote, which is kept for display: a partner
cannot take credit by backdating, and an old sign-in sheet imported today still counts.

- *RSVP*: the answer given last is in force, and its partner is credited with the RSVP
  (``rsvp_by``). A partner's answer counts from when that partner first gave it: one that gives
  the same answer again (a Mobilize attendance edited, or marked attended; a second click) gives
  no new answer and takes no credit back from a partner who heard from the person since; one
  that changes its answer gives a new one. Ties: the later status in the order no < maybe < yes,
  then the partner. The same RSVP posted again (same partner and event id, the answer it last gave under it) is a repeat.
- *Check-in*: a person who checks in twice is one attendee. Credit for attending goes to
  the partner whose check-in was received first (ties: the smaller partner id). A withdrawn
  check-in (``withdrawn: true``: a wrong tap at the door) takes back the partner's own
  check-ins received before it (a backbone partner's: everyone's; one naming a shift, a Mobilize
  timeslot: only the check-ins of that shift); a member's withdrawal of
  another's check-in takes nothing back (dead-lettered with the reason). A check-in received after it counts again;
  the same check-in or withdrawal posted again (partner and event id, what it last said under it) is a repeat.
- *Pledge*: a partner's own pledge always wins over one listed inside the action by its
  owner; between two of the same kind, the one received later (then the larger event id). A
  pledge it replaced, posted again (same event id, time and count), is a repeat.
- *Action*: owned by the partner that first posted it; only the owner or a backbone partner
  may change it (anyone else is refused); the version received last is kept, and so are the
  owner and when it was first received (a rapid-response action's grace counts from then). A
  version it replaced, posted again (every field the same), is a repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable
from datetime import datetime

from contracts.events import ActionEvent, CheckinEvent, Envelope, PledgeEvent, RsvpEvent, SupporterRsvpEvent
from contracts.facts import (CHECKINS_KEPT, REPLACED_KEPT, STATUS_ORDER, ActionRecord, Attendance, PartnerCheckins, Pledge, RsvpAnswer, credited, digest,
                            partner_standing, said, version)

#: A partner's RSVPs that named a shift, by partner and shift (``Attendance.shift_rsvps``).
ShiftRsvps = dict[str, dict[str, tuple[RsvpAnswer, ...]]]


@dataclass(frozen=True)
class Refused:
    """The event may not change this fact; nothing is written. ``reason`` says why."""

    reason: str


#: RSVPs kept per partner and person: enough to tell an answer given again from a change of mind.
RSVPS_KEPT = 20


def apply_attendance(
    old: Attendance | None, event: RsvpEvent | SupporterRsvpEvent | CheckinEvent, partner: str, person_key: str, received: datetime,
    role: str = "member",
) -> Attendance:
    """The attendance fact after ``partner`` (of ``role``) posted ``event``."""
    if isinstance(event, CheckinEvent):
        return apply_checkin(old, event, partner, person_key, received, role)
    seen = said(partner, event.event_id, event.status, event.occurred_at)  # an RSVP from the RSVP page counts like any other
    if old is not None and repeated(old.rsvp_events, seen, digest(partner, event.event_id, event.status, event.occurred_at.isoformat())):
        return old  # posted again (a retry, a redelivery, a re-run import): received later, but no newer answer
    answer: RsvpAnswer = (received, event.status, event.occurred_at)
    shift = getattr(event, "shift", None)  # the RSVP page's answers name none
    if old is None and shift is None:  # the common case: one model built, nothing to weigh
        return Attendance(action_id=event.action_id, person_key=person_key, first_received=received, rsvp=event.status,
                          rsvp_at=event.occurred_at, rsvp_by=partner, rsvp_received=received, rsvp_events=(seen,), rsvps={partner: (answer,)})
    rsvps, shifts = partner_rsvps(old), old.shift_rsvps if old else {}
    if shift is None:
        rsvps[partner] = join_rsvps(rsvps.get(partner, ()), (answer,))
    else:
        shifts = join_shift_rsvps(shifts, {partner: {shift: (answer,)}})
    first = min(t for t in (old.first_received if old else None, received) if t is not None)
    return answered(old or Attendance(action_id=event.action_id, person_key=person_key), rsvps, shifts,
                    (*(old.rsvp_events if old else ()), seen), first_received=first)


def partner_rsvps(a: Attendance | None) -> dict[str, tuple[RsvpAnswer, ...]]:
    """Each partner's RSVPs of ``a`` (a fact written before they were kept per partner: the one in force)."""
    if a is None:
        return {}
    received = a.rsvp_received or a.rsvp_at
    if a.rsvps or a.shift_rsvps or a.rsvp is None or a.rsvp_by is None or received is None:
        return dict(a.rsvps)
    return {a.rsvp_by: ((received, a.rsvp, a.rsvp_at or received),)}


def join_rsvps(a: Iterable[RsvpAnswer], b: Iterable[RsvpAnswer]) -> tuple[RsvpAnswer, ...]:
    """One partner's RSVPs from two sets of them, in the order received: of a run of the same
    answer only its first and its last (what ``standing`` reads, and where another set's answer
    may fall between), then the last ``RSVPS_KEPT``. So however often an answer is given again,
    it counts from when it was first given."""
    ordered = sorted({*a, *b}, key=lambda r: (r[0], STATUS_ORDER[r[1]], r[2]))
    kept = [r for i, r in enumerate(ordered)
            if i in (0, len(ordered) - 1) or ordered[i - 1][1] != r[1] or ordered[i + 1][1] != r[1]]
    return tuple(kept[-RSVPS_KEPT:])


def join_shift_rsvps(a: ShiftRsvps, b: ShiftRsvps) -> ShiftRsvps:
    """Each partner's RSVPs of each shift, from two sets of them (``join_rsvps``)."""
    return {p: {s: join_rsvps(a.get(p, {}).get(s, ()), b.get(p, {}).get(s, ())) for s in sorted(a.get(p, {}).keys() | b.get(p, {}).keys())}
            for p in sorted(a.keys() | b.keys())}


def answered(a: Attendance, rsvps: dict[str, tuple[RsvpAnswer, ...]], shifts: ShiftRsvps, events: Iterable[str], **update: object) -> Attendance:
    """``a`` with these RSVPs (``shifts``: those that named a shift), and the answer in force: the
    one given last of every partner's (``partner_standing``; ties: no < maybe < yes, then the
    partner, then the time it gave)."""
    stands = {p: s for p in rsvps.keys() | shifts.keys() if (s := partner_standing(rsvps.get(p, ()), shifts.get(p, {}))) is not None}
    by = max(stands, key=lambda p: (stands[p][0], STATUS_ORDER[stands[p][1]], p, stands[p][2]), default=None)
    received, answer, at = stands[by] if by is not None else (None, None, None)
    return a.model_copy(update={"rsvps": dict(sorted(rsvps.items())), "shift_rsvps": shifts, "rsvp_events": tuple(sorted(set(events))), "rsvp_by": by,
                                "rsvp": answer, "rsvp_at": at, "rsvp_received": received, **update})


def apply_checkin(old: Attendance | None, event: CheckinEvent, partner: str, person_key: str, received: datetime,
                  role: str) -> Attendance:
    """A check-in joins its partner's (``join_checkins``); a withdrawal takes back the partner's
    own check-ins received before it, a backbone's everyone's. The partner credited is the one
    whose check-in that counts was received first."""
    seen = said(partner, event.event_id, "withdrawn" if event.withdrawn else "checkin", event.occurred_at)
    if old is not None and repeated(old.checkin_events, seen, digest(partner, event.event_id)):
        return old  # posted again (a retry, a re-run import): a check-in withdrawn since stays withdrawn
    checkins = partner_checkins(old)
    mine = checkins.get(partner)
    withdrawn = old.withdrawn_received if old is not None else None
    shifts_withdrawn = dict(old.shifts_withdrawn) if old is not None else {}
    if event.withdrawn and role == "backbone" and event.shift is None:
        withdrawn = max(withdrawn or received, received)
    elif event.withdrawn and role == "backbone":
        shifts_withdrawn[event.shift] = max(shifts_withdrawn.get(event.shift, received), received)
    else:  # a withdrawal is kept even when it takes back nothing (yet): the same in whatever order they are read
        this = PartnerCheckins(withdrawn_received=received) if event.withdrawn else PartnerCheckins(
            first_received=received, first_at=event.occurred_at, last_received=received, last_at=event.occurred_at,
            since_withdrawn=((received, event.occurred_at),))
        checkins[partner] = join_checkins(mine, this if event.shift is None else PartnerCheckins(shifts={event.shift: this}))
    known = [] if event.withdrawn else [received]  # a withdrawal alone does not make the person known to the coalition
    firsts = [t for t in (old.first_received if old else None, *known) if t is not None]
    return checked_in(old or Attendance(action_id=event.action_id, person_key=person_key), checkins, withdrawn,
                      (*(old.checkin_events if old else ()), seen), first_received=min(firsts, default=None),
                      shifts_withdrawn=dict(sorted(shifts_withdrawn.items())))


def join_checkins(a: PartnerCheckins | None, b: PartnerCheckins | None) -> PartnerCheckins:
    """One partner's check-ins from two sets of them (a new check-in or withdrawal, or two
    records of one person merged): the first and the last received of either, the last
    withdrawal of either, and the check-ins of either received after that withdrawal."""
    a, b = a or PartnerCheckins(), b or PartnerCheckins()
    firsts = [(x.first_received, x.first_at) for x in (a, b) if x.first_received is not None]
    lasts = [(x.last_received, x.last_at) for x in (a, b) if x.last_received is not None]
    first, last = min(firsts, default=(None, None)), max(lasts, default=(None, None))
    withdrawn = max((x.withdrawn_received for x in (a, b) if x.withdrawn_received is not None), default=None)
    since = sorted({c for x in (a, b) for c in x.since() if withdrawn is None or c[0] > withdrawn})[:CHECKINS_KEPT]
    shifts = {s: join_checkins(a.shifts.get(s), b.shifts.get(s)) for s in sorted(a.shifts.keys() | b.shifts.keys())}
    return PartnerCheckins(first_received=first[0], first_at=first[1], last_received=last[0], last_at=last[1], withdrawn_received=withdrawn,
                           since_withdrawn=tuple(since), shifts=shifts)


def partner_checkins(a: Attendance | None) -> dict[str, PartnerCheckins]:
    """Each partner's check-ins of ``a`` (a fact written before they were kept per partner: the
    credited one's)."""
    if a is None:
        return {}
    if a.checkins or a.attended_by is None or a.attended_at is None:
        return dict(a.checkins)
    received = a.attended_received or a.attended_at
    return {a.attended_by: PartnerCheckins(first_received=received, first_at=a.attended_at, last_received=received, last_at=a.attended_at)}


def checked_in(a: Attendance, checkins: dict[str, PartnerCheckins], withdrawn: datetime | None, events: Iterable[str],
               **update: object) -> Attendance:
    """``a`` with these check-ins, and the credit that follows from them (``Attendance.counting``)."""
    a = a.model_copy(update={"checkins": dict(sorted(checkins.items())), "withdrawn_received": withdrawn,
                             "checkin_events": tuple(sorted(set(events))), **update})
    counting = a.counting()
    by = credited(counting)
    received, at = counting[by] if by else (None, None)
    return a.model_copy(update={"attended_by": by, "attended_at": at, "attended_received": received})


def repeated(events: Iterable[str], seen: str, legacy: str) -> bool:
    """Whether the event remembered as ``seen`` (``said``) changes nothing: it was applied
    already (a retry, a redelivery, a re-run import), or it says what its partner said last under
    its event id (a re-sorted copy of an undated sheet, whose rows take the time the file was
    saved). Said otherwise under the same id, it is heard: the RSVP page keeps one id per ask, and
    a partner may withdraw a check-in under the check-in's id. ``legacy``: how a fact written
    before remembered it."""
    events = tuple(events)
    if seen in events or legacy in events:
        return True
    digest, what, _ = seen.split(":", 2)
    before = [e.split(":", 2)[1:] for e in events if e.startswith(digest + ":")]  # (what, time) said under this id
    return bool(before) and max(before, key=lambda x: (x[1], x[0]))[0] == what


def apply_pledge(old: Pledge | None, event: PledgeEvent, partner: str, received: datetime, inline: bool = False) -> Pledge:
    new = Pledge(action_id=event.action_id, partner=partner, count=event.count, occurred_at=event.occurred_at,
                 event_id=event.event_id, inline=inline, received_at=received)
    if old is None:
        return new
    if pledged(new) in old.replaced:
        return old  # replaced already: posted again (a retry, a re-run import)
    rank = lambda p: (not p.inline, p.received_at or p.occurred_at, p.event_id)  # noqa: E731
    kept = new if rank(new) >= rank(old) else old
    return kept.model_copy(update={"replaced": remembered(old.replaced, (pledged(old), pledged(new)), pledged(kept))})


def pledged(p: Pledge) -> str:
    """A pledge as its event said it (id, time, count): the same one posted again is a repeat."""
    return digest(p.event_id, p.occurred_at.isoformat(), str(p.count))


def remembered(before: list[str], seen: Iterable[str], in_force: str) -> list[str]:
    """The versions a fact has seen besides the one in force, sorted (the same whatever order
    they came in), at most ``REPLACED_KEPT``."""
    return sorted(set(before).union(seen) - {in_force})[-REPLACED_KEPT:]


def apply_action(old: ActionRecord | None, event: ActionEvent, partner: str, role: str, received: datetime) -> ActionRecord | Refused:
    """The action record after ``partner`` (of ``role``) posted ``event``."""
    if event.override_quiet_hours and role != "backbone":
        return Refused("override_quiet_hours is for the backbone partner only")
    if old is None:
        return ActionRecord(partner=partner, action=event, received_at=received, first_received=received)
    if partner != old.partner and role != "backbone":
        return Refused(f"action {event.action_id!r} belongs to {old.partner!r}: only it or the backbone may change it")
    if version(event) in old.replaced:
        return old  # replaced already: posted again (a retry)
    first = min(received, old.first_received or old.received_at or received)
    if received >= (old.received_at or old.action.occurred_at):
        kept = ActionRecord(partner=old.partner, action=event, received_at=received, first_received=first)
    else:
        kept = old.model_copy(update={"first_received": first})
    return kept.model_copy(update={"replaced": remembered(old.replaced, (version(old.action), version(event)), version(kept.action))})


def taken_back(pledges: Iterable[Pledge], action: ActionEvent, poster: str, role: str) -> list[str]:
    """The partners whose inline pledge for ``action`` the version in force no longer lists, of
    those its poster may list (the backbone: any; a member: itself): an organizer who deletes a
    line of the console's edit form takes that pledge back. A partner's own pledge stays."""
    listed = {p.partner for p in action.pledges}
    return sorted(p.partner for p in pledges if p.inline and p.action_id == action.action_id and p.partner not in listed
                  and (role == "backbone" or p.partner == poster))


def listed_now(record: ActionRecord | None, pledge: PledgeEvent) -> bool:
    """Whether an inline pledge comes from the action's version in force: one from a version
    replaced before it came back through the events topic counts for nothing."""
    return record is not None and pledge.event_id == f"{record.action.event_id}#pledge"


def inline_pledges(envelope: Envelope) -> list[Envelope]:
    """The pledges listed in an action, as pledge events of the partners named: by the backbone
    for any partner, by a member for itself only (the ingress refuses the rest)."""
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
        if envelope.role == "backbone" or p.partner == envelope.partner
    ]
