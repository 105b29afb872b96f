"""Identity resolution in the stream: every person event reaches its canonical person's
partition, links become merges, and a merged person's facts are folded into the survivor.

Keys: an identifier's entry lives on the partition of the identifier's key, a person's facts on
the partition of the person key, and a person key is the key of the person's oldest identifier.
The ingress routes a person event by its first identifier (phone, else email), so:

- *Most events stay where they are.* Intake looks the identifier up in its own partition's
  ``identities_by_key``; with no entry, or an entry that says it is a person's key, the event
  is applied there at once (one dict look-up: ``arrived``).
- *An identifier linked or merged into another person* forwards the event there (``Deliver``
  on the identity topic, keyed by that person); a chain of merges is followed hop by hop.
- *An event naming two identifiers* is applied at the first one's person and sends a ``Link``
  to the second identifier's partition. There, the second identifier's person compares its own
  age with the first's: if the first is older, it merges into it; if not, it sends its own
  age back and the first's person merges into it. Each hop goes to a strictly older key, so
  links settle in at most three hops and never make a cycle.
- *A merge* happens on the merged person's own partition: its entry points to the survivor,
  a ``Merge`` fact records it (compacted topic), and its people record, memberships,
  attendance, recent asks and deferred texts travel to the survivor in one ``Fold``. Only once
  the broker has the fold are they deleted here (``flush``, once per batch of the identity
  agent), so a crash in between folds them again (joins are idempotent) and never loses them. Ask facts stay where they are: their ids are in
  the providers' hands (callbacks find them); what the survivor needs of them, the frequency
  cap and "already asked for this action on this channel", comes with the recent asks.

Every message carries a hop count; one that went round more than ``MAX_HOPS`` times is a
dead letter, never a loop.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from pydantic import ValidationError

from contracts.asks import AskCommand, AskFact, RecentAsks, ask_id, parse_ask_id, unreceived_of
from contracts.events import Envelope
from contracts.identity import Deliver, Fold, IdentifierKind, Identity, Link, Merge, identity_message
from streams.app import Pipeline
from streams.crypto import is_sealed
from streams.keys import fact_key
from streams.topology import excerpt

from ..people import join_people
from .index import PersonFacts
from .rules import first_seen, identifiers, join_attendance, join_membership, join_recent, known_before

log = logging.getLogger(__name__)
MAX_HOPS = 16
MERGED = "merged into another person"

Apply = Callable[[Pipeline, int, Envelope], object]


def target_of(p: Pipeline, key: str) -> str:
    """Where ``key``'s facts live, as this partition knows: itself, or the next hop."""
    raw = p.identities.data.get(key)
    return raw["person"] if raw is not None else key


def reaching(recent: RecentAsks | None, fact: Callable[[str], AskFact | None]) -> RecentAsks | None:
    """The recent asks a merged person's fold carries: not those that never reached them
    (cancelled, expired, failed), which the survivor, with no access to their facts, would
    count as the person asked for that action on that channel (and under the frequency cap)."""
    return None if recent is None else recent.without(unreceived_of(recent, fact))


def pass_on(p: Pipeline, cmd: AskCommand, into: str, at: datetime) -> None:
    """An ask of a person merged into ``into`` after their fold was taken (it was being planned
    then): it follows the fold, and the survivor takes it as a deferred ask, due from ``at`` at
    the earliest, unless asked already."""
    cmd = cmd.model_copy(update={"send_after": max(cmd.send_after or at, at)})
    send(p, Fold(person=into, source=cmd.person_key, at=at, deferred=(cmd,)))


def send(p: Pipeline, msg: Deliver | Link | Fold) -> None:
    """An identity message, to the partition of the person it names."""
    p.send_soon(p.identity, msg.person, msg.model_dump_json().encode())


class Resolver:
    """Identity resolution for one pipeline: intake's check (``arrived``) and the identity
    agent's handling of its own messages (``handle``)."""

    def __init__(self, p: Pipeline, secret: bytes, merged: Callable[[int, str, datetime], None] | None = None) -> None:
        self.p = p
        self.secret = secret
        self.facts = PersonFacts(p)
        self.leaving: dict[str, tuple[int, Fold]] = {}  # folds sent, whose facts go once the broker has them
        #: Called with (partition, survivor, since when the coalition knew the merged record)
        #: once another person's record is joined into the survivor's: outreach plans them again
        #: (``plan_again``).
        self.merged = merged

    # -- intake ---------------------------------------------------------------------------

    def arrived(self, partition: int, env: Envelope) -> bool:
        """Whether intake applies the person event ``env`` here; if not, it was forwarded."""
        key, person = env.person_key, getattr(env.event, "person", None)  # None: known by key only (RSVP page)
        assert key is not None
        target = target_of(self.p, key)
        second = self.second_identifier(env)
        if target != key:
            self._send(Deliver(person=target, envelope=env))
            for other, kind in second:
                self._send(Link(person=other, identifier=kind, other=target, seen=env.received_at))
            return False
        if second:
            rank = self._recorded(partition, key, "phone" if person.phone else "email", env.received_at).rank(key)  # type: ignore[union-attr]
            for other, kind in second:
                self._send(Link(person=other, identifier=kind, other=key, other_rank=rank, seen=env.received_at))
        return True

    def second_identifier(self, env: Envelope) -> list[tuple[str, IdentifierKind]]:
        """The email's key when the event names a phone too: the ingress's (the email itself is
        sealed), else computed (an envelope written before sealing)."""
        if env.email_key is not None:
            return [(env.email_key, "email")]
        person = getattr(env.event, "person", None)
        if person is None or not (person.phone and person.email) or is_sealed(person.email):
            return []
        return identifiers(self.secret, person)[1:]

    # -- the identity agent ---------------------------------------------------------------

    def handle(self, partition: int, key: str | None, raw: bytes | None, apply: Apply, where: dict[str, object] | None = None) -> None:
        try:
            msg = identity_message.validate_json(raw if raw is not None else b"", context={"normalized": True})
        except ValidationError as exc:
            self.p.dead_letter(key, "invalid identity message", errors=exc.errors(include_input=False, include_url=False), **excerpt(raw, **(where or {})))
            return
        if msg.hops > MAX_HOPS:
            self.p.dead_letter(key, f"identity {msg.kind} went round more than {MAX_HOPS} hops", person=msg.person)
            return
        if isinstance(msg, Deliver):
            self.deliver(partition, msg, apply)
        elif isinstance(msg, Link):
            self.link(partition, msg)
        else:
            self.fold_in(partition, msg)

    def deliver(self, partition: int, msg: Deliver, apply: Apply) -> None:
        target = target_of(self.p, msg.person)
        if target != msg.person:
            self._send(msg.model_copy(update={"person": target, "hops": msg.hops + 1}))
        else:
            apply(self.p, partition, msg.envelope.model_copy(update={"person_key": target}))

    def link(self, partition: int, msg: Link) -> None:
        here = msg.person
        target = target_of(self.p, here)
        if target != here:
            if here in self.p.merges.table.data and here not in self.leaving:
                self._fold_leftovers(partition, here, target, msg.seen)
            if target != msg.other:
                # Through ``here``, ``other`` meets ``target``'s person only from when ``here`` was
                # linked to it: the link is as late as the later of the two (received times).
                linked = self.p.identities.table.data[here].get("linked_at")
                seen = max(msg.seen, datetime.fromisoformat(linked)) if linked else msg.seen
                self._send(msg.model_copy(update={"person": target, "identifier": None, "seen": seen, "hops": msg.hops + 1}))
            return
        if here == msg.other:
            return  # already one person
        me = self._recorded(partition, here, msg.identifier or "email", msg.seen)
        if msg.other_rank is not None and msg.other_rank.older_than(me.rank(here)):
            self.merge_into(partition, here, me, msg.other, msg.seen)
        else:
            self._send(Link(person=msg.other, other=here, other_rank=me.rank(here), seen=msg.seen, hops=msg.hops + 1))

    def merge_into(self, partition: int, key: str, me: Identity, into: str, at: datetime) -> None:
        """``key`` (a person, or an identifier no event had linked yet) becomes part of ``into``."""
        fold = self._snapshot(key, into, at)
        self.p.identities.put(partition, key, me.model_copy(update={"person": into, "linked_at": at}))
        if fold is None:
            return  # an identifier nobody knew: linked, nothing to merge
        if known_before(fold.record, fold.attendance, at):
            self.p.merges.put(partition, key, Merge(person=key, into=into, at=at))
        self._hand_over(partition, fold)

    def fold_in(self, partition: int, msg: Fold) -> None:
        """Join a merged person's facts into this person's (or pass them on to its survivor)."""
        p, me = self.p, msg.person
        target = target_of(p, me)
        if target != me:
            self._send(msg.model_copy(update={"person": target, "hops": msg.hops + 1}))
            return
        if msg.record is not None:
            p.people.put(partition, me, join_people(p.people.get(me), msg.record, me))
        for m in msg.memberships:
            key = fact_key(m.partner, me)
            p.memberships.put(partition, key, join_membership(p.memberships.get(key), m, me))
        for a in msg.attendance:
            key = fact_key(a.action_id, me)
            p.attendance.put(partition, key, join_attendance(p.attendance.get(key), a, me))
        recent = join_recent(p.recent_asks.get(me), msg.recent)
        for cmd in msg.deferred:
            recent = self._adopt(partition, me, cmd, recent, msg.at)
        if recent is not None:
            p.recent_asks.put(partition, me, recent)
        if msg.record is not None and self.merged is not None:
            self.merged(partition, me, msg.record.recruited_at)

    # -- helpers --------------------------------------------------------------------------

    def _recorded(self, partition: int, key: str, kind: IdentifierKind, seen: datetime) -> Identity:
        """``key``'s entry, recorded now (as its own person, aged by its facts) if it had none."""
        raw = self.p.identities.table.data.get(key)
        if raw is not None:
            return Identity.model_validate(raw)
        attendance = [a for k in self.facts.of(key)[1] if (a := self.p.attendance.get(k)) is not None]
        me = Identity(person=key, since=first_seen(self.p.people.get(key), attendance, seen), kind=kind)
        self.p.identities.put(partition, key, me)
        return me

    def _snapshot(self, key: str, into: str, at: datetime) -> Fold | None:
        """Everything ``key`` has, as a fold into ``into``; ``None`` when it has nothing."""
        p = self.p
        memberships, attendance = self.facts.of(key)
        deferred = [AskCommand.model_validate(raw) for aid, raw in list(p.deferred.table.data.items()) if f":{key}:" in aid]
        fold = Fold(
            person=into, source=key, at=at, record=p.people.get(key),
            memberships=tuple(m for k in memberships if (m := p.memberships.get(k)) is not None),
            attendance=tuple(a for k in attendance if (a := p.attendance.get(k)) is not None),
            recent=reaching(p.recent_asks.get(key), p.asks.get), deferred=tuple(d for d in deferred if d.person_key == key),
        )
        empty = fold.record is None and not (fold.memberships or fold.attendance or fold.deferred) and fold.recent is None
        return None if empty else fold

    def _hand_over(self, partition: int, fold: Fold) -> None:
        """Send ``fold``; what it carries is deleted here by ``flush``, once the broker has it."""
        self._send(fold)
        self.leaving[fold.source] = (partition, fold)

    async def flush(self, batch: object = None) -> None:
        """Before the identity agent's batch is acknowledged: once the folds it sent (and the
        merges) are durable, delete what they carried. One broker round trip per batch."""
        if not self.leaving:
            return
        leaving, self.leaving = list(self.leaving.values()), {}
        await self.p.settle()
        for partition, fold in leaving:
            self._clear(partition, fold)

    def _clear(self, partition: int, fold: Fold) -> None:
        p, key = self.p, fold.source
        p.people.delete(partition, key)
        p.recent_asks.delete(partition, key)
        for m in fold.memberships:
            p.memberships.delete(partition, fact_key(m.partner, key))
        for a in fold.attendance:
            p.attendance.delete(partition, fact_key(a.action_id, key))
        for cmd in fold.deferred:
            p.deferred.delete(partition, cmd.ask_id)
            fact = p.asks.get(cmd.ask_id)
            if fact is not None:  # it moved to the survivor: this one is never sent
                p.asks.put(partition, cmd.ask_id, fact.model_copy(update={"status": "cancelled", "error": MERGED, "updated_at": fold.at, "deferred_until": None}))

    def _fold_leftovers(self, partition: int, key: str, target: str, at: datetime) -> None:
        """Facts still under a merged key (a crash between a fold and its deletes): fold them again."""
        fold = self._snapshot(key, target, at)
        if fold is not None:
            log.info("folding facts left under a merged person again")
            self._hand_over(partition, fold)

    def _adopt(self, partition: int, me: str, cmd: AskCommand, recent: RecentAsks | None, at: datetime) -> RecentAsks | None:
        """A merged person's deferred ask becomes this person's, unless this person already has
        an ask for that action on that channel. Returns the recent asks with its new id (or,
        dropped, without it)."""
        p, new_id = self.p, ask_id(cmd.action_id, me, cmd.channel)
        others = [aid for aid, _ in (recent.asks if recent else ()) if aid != cmd.ask_id and parse_ask_id(aid)[0::2] == (cmd.action_id, cmd.channel)]
        kept = tuple((new_id if aid == cmd.ask_id else aid, t) for aid, t in (recent.asks if recent else ()))
        if p.asks.get(new_id) is not None or new_id in p.deferred.table.data or [a for a in others if a != new_id]:
            # Asked already (as this person, or as another merged one): this one never goes, nor counts as asked.
            return None if recent is None else recent.without({cmd.ask_id})
        moved = cmd.model_copy(update={"ask_id": new_id, "person_key": me})
        p.deferred.put(partition, new_id, moved)
        p.asks.put(partition, new_id, moved.fact("deferred", at, deferred_until=cmd.send_after, send_until=cmd.send_until))
        return RecentAsks(asks=kept) if recent else RecentAsks(asks=((new_id, at),))

    def _send(self, msg: Deliver | Link | Fold) -> None:
        send(self.p, msg)
