"""Tallies: the read model, and the arithmetic that derives it from facts.

Tallies are never incremented by an agent. ``TallyBook`` keeps the latest fact per key and,
on each record, adjusts its counts by (what the new fact contributes − what the old one
did). Replaying, duplicating or reordering records of the same facts therefore always ends
at the same numbers. It is pure data structure, shared by the web app and the benchmarks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Iterable, Literal, Union

from pydantic import BaseModel, Field

from .asks import AskFact
from .facts import ActionRecord, Attendance, Membership, Pledge
from .identity import Identity, Merge
from .unique import UniquePeople

Fact = Union[Membership, Attendance, Pledge, ActionRecord, AskFact, Merge, Identity]
FactKind = Literal["membership", "attendance", "pledge", "action", "ask", "merge", "identity"]
#: Links followed from an identifier to its person (``TallyBook.person_of``); a chain is a
#: few hops long, each to an older key.
PERSON_HOPS = 16
#: Counts per (action, partner); ``signups`` only per partner.
ACTION_METRICS = (
    "pledged", "rsvp_yes", "attended", "asked_sms", "asked_email", "delivered", "failed", "sending", "in_doubt", "deferred", "expired", "cancelled",
    "opted_out", "rsvp_via_sms",
    "showed",
)
METRICS = ("signups", *ACTION_METRICS)
#: Ask states in which a message was handed (or being handed) to a provider.
ATTEMPTED = frozenset({"sending", "sent", "delivered", "failed", "in_doubt"})
#: Ask statuses counted under their own name.
ASK_METRICS = frozenset({"delivered", "failed", "sending", "in_doubt", "deferred", "expired", "cancelled"})


class Figures(BaseModel):
    pledged: int = 0
    rsvp_yes: int = 0
    attended: int = 0
    production_ratio: float | None = None
    asked_sms: int = 0
    asked_email: int = 0
    delivered: int = 0
    failed: int = 0
    sending: int = Field(default=0, description="Asks being handed over right now: marked, no answer from the provider yet.")
    in_doubt: int = Field(default=0, description="Asks the provider may have with no answer: a request timed out after it left, or the worker sending it died. Never resent.")
    deferred: int = Field(default=0, description="Asks waiting for an allowed hour (the recipient's quiet hours), for room in the provider's queue, or a few seconds for a link "
                                           "between two records of the person to settle: sent then, or expired (or cancelled, asked under the other record).")
    expired: int = Field(default=0, description="Asks not sent because no allowed hour was left before the action (or Twilio's queue held the text past its validity).")
    cancelled: int = Field(default=0, description="Asks decided against at the moment of sending: opted out, consent withdrawn, person erased, no provider configured, "
                                            "asked already under another record of the person, taken out of the action by an edit.")
    opted_out: int = 0
    rsvp_via_sms: int = 0
    conversion: float | None = None
    showed: int = Field(default=0, description="People whose RSVP yes is credited to the partner and who attended (whoever checked them in).")
    show_rate: float | None = Field(default=None, description="showed / rsvp_yes: of the people who said yes through the partner, the share who came.")


class PartnerFigures(Figures):
    partner: str


class PartnerTotals(PartnerFigures):
    signups: int = 0


class UniqueFigures(BaseModel):
    unique_rsvp_yes: int = Field(default=0, description="People with an RSVP yes, each counted once however many partners know them.")
    unique_attended: int = Field(default=0, description="People who attended, each counted once however many partners know them.")


class ActionTotals(Figures, UniqueFigures):
    pass


class ActionTallies(BaseModel):
    action_id: str
    title: str | None = None
    partners: list[PartnerFigures]
    totals: ActionTotals


class CoalitionTotals(Figures, UniqueFigures):
    """Per-partner credit summed, and (``unique_*``) the people behind it: someone who attended
    three actions is three attendances and one unique attendee."""

    signups: int = 0
    actions: int = 0


class IdentityFigures(BaseModel):
    """For organizers only: how the coalition's records became people."""

    merges: int = Field(default=0, description="People found to be someone already known (two records of one person), folded into them.")
    overlap: int = Field(default=0, description="People signed up by more than one partner.")


class CoalitionTallies(BaseModel):
    partners: list[PartnerTotals]
    totals: CoalitionTotals
    identity: IdentityFigures = IdentityFigures()


def ratio(part: int, whole: int) -> float | None:
    """``part / whole`` to 4 places, ``None`` when ``whole`` is 0 (production: attended / pledged;
    conversion: RSVP yes / asked)."""
    return round(part / whole, 4) if whole else None


def asks_sent(counts: Counter[str]) -> int:
    """Asks handed (or being handed) to a provider, both channels."""
    return counts["asked_sms"] + counts["asked_email"]


def summed(counters: Iterable[Counter[str]]) -> Counter[str]:
    """The counts of several partners (or actions) added up."""
    total: Counter[str] = Counter()
    for counts in counters:
        total.update(counts)
    return total


#: Pledges made, counted beside what they pledge: a partner that pledged 0 (co-sponsoring an
#: alert) has a row, with 0 pledged. Not a figure of its own.
PLEDGES = "pledges"
#: In counts across actions: the RSVP yeses of the actions the partner asked people about, what
#: its conversion counts (an RSVP from a sign-in sheet for an action nobody was asked about is
#: no answer to an ask). Counts of one action do without: with no ask, there is no conversion.
ASKED_YES = "rsvp_yes_of_asked_actions"
#: In counts across actions: the attendance at the actions the partner pledged to, what its
#: production ratio counts (turnout at an action it made no pledge for is no pledge kept).
PLEDGED_ATTENDED = "attended_at_pledged_actions"


def add_action(total: Counter[str], counts: Counter[str]) -> None:
    """Add a partner's counts of one action to its counts across actions, with what its
    conversion (``ASKED_YES``) and its production (``PLEDGED_ATTENDED``) count there."""
    total.update(counts)
    total[ASKED_YES] += counts["rsvp_yes"] if asks_sent(counts) else 0
    total[PLEDGED_ATTENDED] += counts["attended"] if counts["pledged"] else 0


def production_ratio(counts: Counter[str]) -> float | None:
    """Attended ÷ pledged; across actions (``add_action``), the attendance of the actions pledged to."""
    return ratio(counts.get(PLEDGED_ATTENDED, counts["attended"]), counts["pledged"])


def _derived(counts: Counter[str]) -> dict[str, float | None]:
    return {"production_ratio": production_ratio(counts),
            "conversion": ratio(counts.get(ASKED_YES, counts["rsvp_yes"]), asks_sent(counts)),
            "show_rate": ratio(counts["showed"], counts["rsvp_yes"])}


def checkin_minute(fact: Fact | None) -> tuple[str, str, datetime] | None:
    """(action, crediting partner, minute) of a check-in, for the check-ins-over-time chart."""
    if isinstance(fact, Attendance) and fact.attended_at is not None and fact.attended_by:
        return fact.action_id, fact.attended_by, fact.attended_at.replace(second=0, microsecond=0)
    return None


Contribution = tuple[tuple[Union[str, None], str, str], int]


def contributions(fact: Fact | None) -> list[Contribution]:
    """What one fact adds to the counts: ((action or None, partner, metric), n) pairs. A list,
    not a Counter: the tally reader runs this twice for every record it reads."""
    if isinstance(fact, Attendance):
        out: list[Contribution] = []
        if fact.rsvp == "yes" and fact.rsvp_by:
            out.append(((fact.action_id, fact.rsvp_by, "rsvp_yes"), 1))
            if fact.attended_by:
                out.append(((fact.action_id, fact.rsvp_by, "showed"), 1))
        if fact.attended_by:
            out.append(((fact.action_id, fact.attended_by, "attended"), 1))
        return out
    if isinstance(fact, AskFact):
        action, partner, status = fact.action_id, fact.partner, fact.status
        out = [((action, partner, status), 1)] if status in ASK_METRICS else []
        if status in ATTEMPTED:
            out.append(((action, partner, f"asked_{fact.channel}"), 1))
        if fact.opted_out:
            out.append(((action, partner, "opted_out"), 1))
        if fact.replied_yes:
            out.append(((action, partner, "rsvp_via_sms"), 1))
        return out
    if isinstance(fact, Membership):
        return [((None, fact.partner, "signups"), 1)]
    if isinstance(fact, Pledge):
        return [((fact.action_id, fact.partner, "pledged"), fact.count), ((fact.action_id, fact.partner, PLEDGES), 1)]
    return []


class TallyBook:
    """Latest fact per key, and counts per (action, partner), per partner and overall."""

    def __init__(self) -> None:
        self._latest: dict[tuple[FactKind, str], Fact] = {}
        self._by_action: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        self._by_partner: dict[str, Counter[str]] = defaultdict(Counter)
        self._actions: dict[str, ActionRecord] = {}
        self._checkins: dict[str, dict[str, Counter[datetime]]] = defaultdict(lambda: defaultdict(Counter))
        self.people = UniquePeople()
        self.records = 0

    def apply(self, kind: FactKind, key: str, fact: Fact | None) -> None:
        """Take one record of a fact topic; ``None`` is a tombstone (the fact is gone)."""
        self.records += 1
        old = self._latest.pop((kind, key), None)
        if fact is not None:
            self._latest[(kind, key)] = fact
        if isinstance(fact, ActionRecord):
            self._actions[fact.action.action_id] = fact
            self.people.action(fact.action.action_id, posted=True)
        elif isinstance(old, ActionRecord):
            self._actions.pop(old.action.action_id, None)
            self.people.action(old.action.action_id, posted=False)
        elif kind == "attendance":
            self.people.attendance(old, fact)  # type: ignore[arg-type]
        elif kind == "membership":
            self.people.membership(old, fact)  # type: ignore[arg-type]
        elif kind == "merge":
            self.people.merge(old, fact)
        if old == fact:
            return  # a replay or a duplicate: nothing moves
        for sign, f in ((1, fact), (-1, old)):
            if (minute := checkin_minute(f)) is not None:
                action, partner, at = minute
                per_minute = self._checkins[action][partner]
                per_minute[at] += sign
                if not per_minute[at]:
                    del per_minute[at]
                    if not per_minute:
                        del self._checkins[action][partner]
            for (action, partner, metric), n in contributions(f):
                counts = self._by_partner[partner] if action is None else self._by_action[action][partner]
                counts[metric] += sign * n

    def fact(self, kind: FactKind, key: str) -> Fact | None:
        """The latest fact under ``key`` (e.g. an ask by its id, for the RSVP page), if read yet."""
        return self._latest.get((kind, key))

    def person_of(self, key: str) -> str:
        """The person an identifier's key (or a merged person's) is now, as far as the identity
        and merge facts read so far say; ``key`` itself when they say nothing."""
        for _ in range(PERSON_HOPS):
            link = self._latest.get(("identity", key)) or self._latest.get(("merge", key))
            nxt = link.person if isinstance(link, Identity) else link.into if isinstance(link, Merge) else None
            if nxt is None or nxt == key:
                break
            key = nxt
        return key

    def knows_action(self, action_id: str) -> bool:
        return action_id in self._actions

    def action_ids(self) -> set[str]:
        """Actions a partner has posted. RSVPs, check-ins and pledges for an action id nobody
        posted are kept, and counted from the moment the action is posted, not before."""
        return set(self._actions)

    def action_record(self, action_id: str) -> ActionRecord | None:
        return self._actions.get(action_id)

    def counts(self, action_id: str) -> dict[str, Counter[str]]:
        """Raw counts per partner for one action (read-only view)."""
        return self._by_action.get(action_id, {})

    def checkins(self, action_id: str) -> dict[str, dict[datetime, int]]:
        """Check-ins per crediting partner per minute, minutes with none left out (read-only view)."""
        return self._checkins.get(action_id, {})

    def action(self, action_id: str) -> ActionTallies:
        per_partner = self._by_action.get(action_id, {})
        rows = [_figures(PartnerFigures, p, c) for p, c in sorted(per_partner.items()) if any(c.values())]
        total = summed(per_partner.values())
        return ActionTallies(
            action_id=action_id,
            title=record.action.title if (record := self._actions.get(action_id)) else None,
            partners=rows,
            totals=ActionTotals(**{m: total[m] for m in ACTION_METRICS}, **_derived(total),
                                **{f"unique_{m}": n for m, n in self.people.in_action(action_id).items()}),
        )

    def partner_counts(self) -> dict[str, Counter[str]]:
        """Per partner: its sign-ups and its counts over every posted action."""
        out: dict[str, Counter[str]] = defaultdict(Counter, {p: Counter(c) for p, c in self._by_partner.items()})
        for action_id in self._actions:
            for partner, counts in self._by_action.get(action_id, {}).items():
                add_action(out[partner], counts)
        return out

    def coalition(self) -> CoalitionTallies:
        per_partner = self.partner_counts()
        rows = [_figures(PartnerTotals, p, c) for p, c in sorted(per_partner.items()) if any(c.values())]
        total = summed(per_partner.values())
        actions = len(self.action_ids())
        return CoalitionTallies(
            partners=rows,
            totals=CoalitionTotals(**{m: total[m] for m in METRICS}, actions=actions, **_derived(total),
                                   **{f"unique_{m}": n for m, n in self.people.across().items()}),
            identity=IdentityFigures(merges=self.people.merges, overlap=self.people.overlap),
        )


def _figures(cls: type[PartnerFigures], partner: str, counts: Counter[str]) -> PartnerFigures:
    metrics = METRICS if cls is PartnerTotals else ACTION_METRICS
    return cls(partner=partner, **{m: counts[m] for m in metrics}, **_derived(counts))
