"""Facts: the idempotent keyed state the agents write and everyone else reads.

Each fact lives under a semantic key (see ``streams.topology``); writing the same fact twice
changes nothing, so Faust's at-least-once reprocessing cannot move a tally. Facts that feed
tallies carry no phone, email or name: only the person key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timezone

from pydantic import Field

from .events import ActionEvent, CheckinEvent, RsvpStatus
from .people import Channel, ConsentRecord, Internal


#: The person field each channel sends to.
ADDRESS_FIELD: dict[Channel, str] = {"sms": "phone", "email": "email"}


class Undeliverable(Internal):
    """A provider said the person's address on a channel can never take a message: a landline or
    a number that does not exist (Twilio 21211, 21614, 30005, 30006), an email that hard-bounced."""

    given_at: datetime = Field(description="When the address it is about was given (the record's ``profile_at``): one given since, by a newer "
                                           "sign-up, is tried again.")
    code: str = Field(description="Twilio's error code, or SendGrid's event (bounce, dropped).")
    at: datetime


class PersonRecord(Internal):
    """One supporter, merged across every partner that signed them up (the people table)."""

    def given_at(self, field: str) -> datetime:
        """When the record's ``field`` got its value."""
        return self.profile_at.get(field, self.updated_at)

    person_key: str
    given_name: str | None = None
    family_name: str | None = None
    phone: str | None = None
    email: str | None = None
    postal_code: str | None = None
    language: str | None = None
    consent: dict[Channel, ConsentRecord] = Field(default_factory=dict)
    opted_out: dict[Channel, datetime] = Field(default_factory=dict)
    undeliverable: dict[Channel, Undeliverable] = Field(default_factory=dict)
    partners: tuple[str, ...] = ()
    recruited_by: str
    recruited_at: datetime
    updated_at: datetime
    profile_at: dict[str, datetime] = Field(
        default_factory=dict, description="When each profile field got its value (the sign-up's occurred_at): per field, the newest value wins, "
                               "whatever order sign-ups and merges arrive in. Absent: ``updated_at``.")
    link_sent_at: datetime | None = Field(
        default=None, description="When an event naming both the phone and the email was last received for this person: the link it sent "
                                  "to the email's record (``agents.identity``) may still be on its way, and asks wait until it settles "
                                  "(``agents.outreach.planning.wait_for_link``).")
    replies: tuple[str, ...] = Field(
        default=(), description="The MessageSids of their last ``REPLIES_KEPT`` texts to us, oldest first: one delivered again (a webhook "
                                "Twilio retries, a signed request posted twice) is the same reply, applied and answered once.")

    def replied(self, message_sid: str) -> PersonRecord:
        """The record remembering the reply ``message_sid`` (its newest)."""
        return self.model_copy(update={"replies": (*(r for r in self.replies if r != message_sid), message_sid)[-REPLIES_KEPT:]})


#: How many of a person's replies are remembered (``PersonRecord.replies``).
REPLIES_KEPT = 20


class Membership(Internal):
    """Partner ``partner`` signed up person ``person_key``: one per (partner, person)."""

    partner: str
    person_key: str
    joined_at: datetime


def said(partner: str, event_id: str, what: str, at: datetime) -> str:
    """How an applied RSVP, check-in or withdrawal is remembered (``Attendance.rsvp_events``,
    ``checkin_events``): a digest of its partner and event id, what it said (the answer;
    ``checkin`` or ``withdrawn``) and the time it gave."""
    return f"{digest(partner, event_id)}:{what}:{at.astimezone(timezone.utc).isoformat()}"


def digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def version(action: ActionEvent) -> str:
    """An action as its event said it, every field: the same version posted again is a repeat."""
    return digest(action.model_dump_json())


#: The versions a pledge or an action remembers having replaced (``replaced``), the latest.
REPLACED_KEPT = 32


#: The check-ins kept per partner after its last withdrawal: the earliest ones count.
CHECKINS_KEPT = 20


class PartnerCheckins(Internal):
    """One partner's check-ins of a person for an action: the first and the last received (with
    the times they gave), when it last withdrew them, and the check-ins received since (the
    earliest ``CHECKINS_KEPT``). Its check-in counts when one was received after its last
    withdrawal (and after the backbone's: ``Attendance.withdrawn_received``): the first such.
    Check-ins and withdrawals that name a shift are kept apart by shift (``shifts``): a shift's
    withdrawal takes back that shift's check-ins only, one naming none every shift's."""

    first_received: datetime | None = None
    first_at: datetime | None = None
    last_received: datetime | None = None
    last_at: datetime | None = None
    withdrawn_received: datetime | None = None
    since_withdrawn: tuple[tuple[datetime, datetime], ...] = Field(
        default=(), description="(received, at) of the check-ins received after its last withdrawal, earliest first.")
    shifts: dict[str, PartnerCheckins] = Field(default_factory=dict, description="The check-ins and withdrawals that named a shift, by shift.")

    def counted(self, withdrawn: datetime | None, shifts_withdrawn: Mapping[str, datetime] = {}) -> tuple[datetime, datetime] | None:
        """(received, at) of the check-in that counts, the first received after the last
        withdrawal (its own, or ``withdrawn``: the backbone's; a shift's also after its shift's,
        the backbone's of it included: ``shifts_withdrawn``); ``None`` if none does."""
        after = max((w for w in (self.withdrawn_received, withdrawn) if w is not None), default=None)
        shifts = [c for name, s in self.shifts.items() if (c := s.counted(max((w for w in (after, shifts_withdrawn.get(name)) if w is not None),
                                                                               default=None))) is not None]
        for received, at in (*self.since_withdrawn, (self.first_received, self.first_at), (self.last_received, self.last_at)):
            if received is not None and at is not None and (after is None or received > after):
                return min((*shifts, (received, at)))
        return min(shifts, default=None)

    def since(self) -> tuple[tuple[datetime, datetime], ...]:
        """``since_withdrawn``; of a fact written before it was kept, its first and last check-ins."""
        if self.since_withdrawn:
            return self.since_withdrawn
        return tuple((r, a) for r, a in ((self.first_received, self.first_at), (self.last_received, self.last_at)) if r is not None and a is not None)


#: One RSVP a partner posted about a person: (when it was received, the answer, the time it gave).
#: A plain tuple: the intake keeps one per RSVP, and a model would cost it a fifth of its time.
RsvpAnswer = tuple[datetime, RsvpStatus, datetime]
#: Answers in the order that settles ties: no < maybe < yes.
STATUS_ORDER = {"no": 0, "maybe": 1, "yes": 2}


def standing(answers: tuple[RsvpAnswer, ...]) -> RsvpAnswer:
    """A partner's answer in force: its last, as it first gave it in a row (the same answer given
    again is no new one)."""
    start = answers[-1]
    for r in reversed(answers):
        if r[1] != start[1]:
            break
        start = r
    return start


def partner_standing(answers: tuple[RsvpAnswer, ...], shifts: Mapping[str, tuple[RsvpAnswer, ...]]) -> RsvpAnswer | None:
    """A partner's answer in force (``standing``) from its answers for the whole action and for
    each shift: the best of them (yes, maybe, no; of those, the one given first), as someone down
    for any shift is coming; an answer for the whole action overrides the shifts' answered
    before it (each as first given: the same answer again is no new one). ``None``: the
    partner gave none."""
    whole = standing(answers) if answers else None
    stands = [s for s in (standing(a) for a in shifts.values() if a) if whole is None or s[0] > whole[0]]
    if whole is not None:
        stands.append(whole)
    best = max((STATUS_ORDER[s[1]] for s in stands), default=None)
    return min((s for s in stands if STATUS_ORDER[s[1]] == best), default=None)


class Attendance(Internal):
    """A person's standing for one action, and which partner gets credit for each part.

    ``rsvp_by`` is the partner whose answer is in force (``rsvps``: each partner's); ``attended_by`` the partner
    whose check-in that counts was received first (``checkins``: each partner's). They may differ
    (see ``agents.facts``). ``*_at`` are the events' own times (for display); ``*_received`` when
    the coalition received them, which is what decides credit (a partner cannot take it by backdating).
    """

    action_id: str
    person_key: str
    rsvp: RsvpStatus | None = None
    rsvp_at: datetime | None = None
    rsvp_by: str | None = None
    rsvp_received: datetime | None = None
    attended_at: datetime | None = None
    attended_by: str | None = None
    attended_received: datetime | None = None
    first_received: datetime | None = Field(default=None, description="When the first RSVP or check-in about it was received, whichever is in force: "
                                                                        "how long the coalition has known the person (identity resolution).")
    rsvp_events: tuple[str, ...] = Field(default=(), description="Each RSVP applied (a digest of partner and event id, the answer, the time "
                                                                  "it gave; ``agents.facts.said``): one posted again is a repeat and moves no credit.")
    rsvps: dict[str, tuple[RsvpAnswer, ...]] = Field(default_factory=dict, description="Each partner's RSVPs of the person, oldest first (of a run of one "
                                                                             "answer its first and last; the last 20): a partner that gives the same answer again gives no new one.")
    shift_rsvps: dict[str, dict[str, tuple[RsvpAnswer, ...]]] = Field(
        default_factory=dict, description="Each partner's RSVPs of the person that named a shift, by shift (kept as ``rsvps`` are).")
    checkins: dict[str, PartnerCheckins] = Field(default_factory=dict, description="Each partner's check-ins of the person, and its withdrawals of them.")
    withdrawn_received: datetime | None = Field(default=None, description="When a backbone partner last withdrew the person's check-ins: "
                                                                            "a check-in received before it does not count, whoever posted it.")
    shifts_withdrawn: dict[str, datetime] = Field(default_factory=dict, description="When a backbone partner last withdrew the person's check-ins of "
                                                                      "each shift: a check-in of the shift received before it does not count, whoever posted it.")
    checkin_events: tuple[str, ...] = Field(default=(), description="Each check-in and withdrawal applied (a digest of partner and event "
                                                                     "id, the kind, the time it gave; ``agents.facts.said``): one posted again is a repeat and changes nothing.")

    @property
    def attended(self) -> bool:
        return self.attended_at is not None

    def answer_of(self, partner: str) -> RsvpStatus | None:
        """``partner``'s own RSVP answer for the person in force (its posts, and texts back to its asks)."""
        stand = partner_standing(self.rsvps.get(partner, ()), self.shift_rsvps.get(partner, {}))
        if stand is not None:
            return stand[1]
        return self.rsvp if self.rsvp_by == partner and not self.rsvps and not self.shift_rsvps else None

    def counting(self) -> dict[str, tuple[datetime, datetime]]:
        """The partners whose check-in of the person counts: (received, at) of it. A fact written
        before check-ins were kept per partner: its credited check-in."""
        if not self.checkins:
            return {self.attended_by: (self.attended_received or self.attended_at, self.attended_at)} if self.attended_by and self.attended_at else {}
        return {p: c for p, c in ((p, c.counted(self.withdrawn_received, self.shifts_withdrawn)) for p, c in self.checkins.items()) if c is not None}


class Pledge(Internal):
    """Partner ``partner`` commits to turn out ``count`` people for ``action_id``."""

    action_id: str
    partner: str
    count: int
    occurred_at: datetime
    event_id: str
    inline: bool = Field(default=False, description="Listed in the action by its owner; the partner's own pledge always wins over it.")
    received_at: datetime | None = None
    replaced: list[str] = Field(default_factory=list, description="The pledges this one replaced (digests): one posted again is a repeat.")


class ActionRecord(Internal):
    """The latest version of an action and the partner that owns it (the first to post it)."""

    partner: str
    action: ActionEvent
    received_at: datetime | None = None
    first_received: datetime | None = Field(default=None, description="When it was first posted: a rapid-response action's grace counts from then, however often it is posted again.")
    replaced: list[str] = Field(default_factory=list, description="The versions this one replaced (digests): one posted again is a repeat.")


def credited(counting: dict[str, tuple[datetime, datetime]]) -> str | None:
    """The partner credited with attending, among those whose check-in counts (``Attendance.counting``):
    the check-in received first, then the smaller partner id, then the earlier time it gave."""
    return min(counting, key=lambda p: (counting[p][0], p, counting[p][1]), default=None)


def withdrawal_refused(old: Attendance | None, event: CheckinEvent, partner: str, role: str) -> str | None:
    """Why a member's withdrawal takes back nothing while another partner's check-in counts (a
    member withdraws only its own): for the dead-letter topic, and the ingress's warning; ``None`` otherwise."""
    counting = old.counting() if old is not None else {}
    if not event.withdrawn or role == "backbone" or partner in counting or not counting:
        return None
    return f"the check-in for {event.action_id!r} was posted by {credited(counting)!r}: only it or the backbone may withdraw it"
