"""Identity rules, pure: which identifiers an event names, how old an identifier is, who survives
a merge, and how two people's facts become one person's.

- *Only exact identifiers link people*: a normalized phone or email named by one event together
  with another identifier. Names, postal codes and look-alike addresses never link anyone: a
  false merge sends one person's texts to another.
- *The older survives*: the identifier the coalition saw first (then phone before email, then
  the key), so a sign-up with both keys the person by the phone, as before resolution.
- *Joins are commutative, associative and idempotent* on counts, credit, consent and opt-outs,
  so folding the same facts twice, or in another order, gives the same person and tallies:
  the RSVP in force and the check-in credited are chosen as for one identity
  (``agents.facts.answered``, ``credited``), a membership dates from its first sign-up,
  recent asks are the union.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from contracts.asks import RecentAsks
from contracts.facts import Attendance, Membership, PersonRecord
from contracts.identity import IdentifierKind
from contracts.people import PersonRef
from streams.keys import person_key

from ..facts import answered, checked_in, join_checkins, join_rsvps, join_shift_rsvps, partner_checkins, partner_rsvps

def identifiers(secret: bytes, person: PersonRef) -> list[tuple[str, IdentifierKind]]:
    """The keys of the identifiers ``person`` names, the phone first: the first is the key the
    ingress routed the event by (``streams.keys.person_key``)."""
    found: list[tuple[str, IdentifierKind]] = []
    if person.phone:
        found.append((person_key(secret, person.phone, None), "phone"))
    if person.email:
        found.append((person_key(secret, None, person.email), "email"))
    return found


def first_seen(record: PersonRecord | None, attendance: Iterable[Attendance], seen: datetime) -> datetime:
    """When the coalition first saw a person, as far as their facts tell (``seen``: the event
    being resolved): their first sign-up, their first RSVP or check-in received."""
    times = [seen]
    if record is not None and record.partners:
        times.append(record.recruited_at)
    for a in attendance:
        times += [t for t in (a.first_received, a.rsvp_received or a.rsvp_at, a.attended_received or a.attended_at) if t is not None]
    return min(times)


def known_before(record: PersonRecord | None, attendance: Iterable[Attendance], linked: datetime) -> bool:
    """Whether facts received before ``linked`` (the linking event; an event in the same
    request does not count) made this a person of its own: then linking it into another is a
    merge of two records, not a new identifier."""
    return first_seen(record, attendance, linked) < linked


def join_attendance(a: Attendance | None, b: Attendance | None, person: str) -> Attendance | None:
    """One person's standing for one action from two records of it (a merge)."""
    if a is None or b is None:
        one = a or b
        return None if one is None else one.model_copy(update={"person_key": person})
    firsts = [x.first_received for x in (a, b) if x.first_received is not None]
    # Each partner's RSVPs under either record, as if posted for one person; a repeat of either's RSVP is a repeat of theirs.
    mine, theirs = partner_rsvps(a), partner_rsvps(b)
    rsvps = {p: join_rsvps(mine.get(p, ()), theirs.get(p, ())) for p in mine.keys() | theirs.keys()}
    joined = answered(Attendance(action_id=a.action_id, person_key=person, first_received=min(firsts) if firsts else None),
                      rsvps, join_shift_rsvps(a.shift_rsvps, b.shift_rsvps), (*a.rsvp_events, *b.rsvp_events))
    # Each partner's check-ins and withdrawals under either record, as if posted for one person.
    mine, theirs = partner_checkins(a), partner_checkins(b)
    checkins = {p: join_checkins(mine.get(p), theirs.get(p)) for p in mine.keys() | theirs.keys()}
    withdrawn = max((x.withdrawn_received for x in (a, b) if x.withdrawn_received is not None), default=None)
    shifts = {s: max(w for w in (a.shifts_withdrawn.get(s), b.shifts_withdrawn.get(s)) if w is not None)
              for s in sorted(a.shifts_withdrawn.keys() | b.shifts_withdrawn.keys())}
    return checked_in(joined, checkins, withdrawn, (*a.checkin_events, *b.checkin_events), shifts_withdrawn=shifts)


def join_membership(a: Membership | None, b: Membership | None, person: str) -> Membership | None:
    """One partner's membership of one person from two records of it: dated from the first."""
    joined = [m.joined_at for m in (a, b) if m is not None]
    if not joined:
        return None
    return Membership(partner=(a or b).partner, person_key=person, joined_at=min(joined))  # type: ignore[union-attr]


def join_recent(a: RecentAsks | None, b: RecentAsks | None) -> RecentAsks | None:
    """Both people's recent asks: every ask once (its latest time), oldest first."""
    if a is None and b is None:
        return None
    latest: dict[str, datetime] = {}
    for aid, at in (*(a.asks if a else ()), *(b.asks if b else ())):
        latest[aid] = max(at, latest.get(aid, at))
    return RecentAsks(asks=tuple(sorted(latest.items(), key=lambda kv: (kv[1], kv[0]))))
