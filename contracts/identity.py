"""Identity resolution: which person each identifier belongs to, merges, and the messages that
move a person event, a link or a merged person's facts to the partition that owns them.

Every identifier (a normalized phone or email) has a keyed hash, and a person key *is* the
hash of one of the person's identifiers: the oldest one. So identifiers and people share one
key space and one partitioning: an identifier's entry in ``identities_by_key`` and a person's
facts live on the partition of their key. Raw phone numbers and emails never become keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import Field, TypeAdapter

from .asks import AskCommand, RecentAsks
from .events import Envelope
from .facts import Attendance, Membership, PersonRecord
from .people import Internal

IdentifierKind = Literal["phone", "email"]
#: A phone outranks an email seen at the same moment, so a sign-up with both keys the person by
#: the phone's hash, as before identity resolution.
KIND_ORDER: dict[str, int] = {"phone": 0, "email": 1}


class Rank(Internal):
    """How old an identifier is: the older of two people survives their merge. ``since`` is
    when the coalition first saw it, then the kind, then the key, so no two ranks are equal."""

    since: datetime
    kind: IdentifierKind
    key: str

    def order(self) -> tuple[datetime, int, str]:
        return (self.since, KIND_ORDER[self.kind], self.key)

    def older_than(self, other: Rank) -> bool:
        return self.order() < other.order()


class Identity(Internal):
    """An identifier's entry (table ``identities_by_key``, key: its keyed hash). Identifiers
    that no event has linked to another have no entry: each is its own person."""

    person: str = Field(description="Itself when the identifier is a person's key; else the person it was linked or merged into "
                                    "(which may since have been merged on: followed hop by hop, each hop to an older key).")
    since: datetime = Field(description="When the coalition first saw the identifier, recorded once: its age in a merge.")
    kind: IdentifierKind
    linked_at: datetime | None = Field(default=None, description="When the event that linked it into ``person`` was received.")

    def rank(self, key: str) -> Rank:
        return Rank(since=self.since, kind=self.kind, key=key)


class Merge(Internal):
    """Person ``person`` turned out to be person ``into`` (table ``merges_by_person``, key:
    ``person``): both had facts from events received before the one that linked them (two
    records of one person existed), and ``person``'s were folded into ``into``'s. Keyed hashes
    only. A diagnostic: when a person's earlier events are still on their way from another
    partition as the link is processed, they reach the survivor directly and no merge is
    recorded, so a replay may count a few differently; people and tallies never differ."""

    person: str
    into: str
    at: datetime = Field(description="When the coalition received the event that linked them.")


class Deliver(Internal):
    """Apply this partner event to ``person``, or forward it to whoever ``person`` became."""

    version: int = Field(default=1, description="The writer's contract version (internal topics).")
    kind: Literal["deliver"] = "deliver"
    person: str
    hops: int = 0
    envelope: Envelope


class Link(Internal):
    """``person`` and ``other`` are one person: an event named both. Decided at ``person``'s
    current key: it merges into ``other`` when ``other`` is older (``other_rank`` is at most
    ``other``'s rank; ``None``: unknown), else it sends ``other`` its own rank to decide."""

    version: int = Field(default=1, description="The writer's contract version (internal topics).")
    kind: Literal["link"] = "link"
    person: str
    identifier: IdentifierKind | None = Field(default=None, description="What ``person`` is, when the event named it and it may have no entry yet.")
    other: str
    other_rank: Rank | None = None
    seen: datetime = Field(description="When the coalition received the event that linked them.")
    hops: int = 0


class Fold(Internal):
    """Everything person ``source`` had, to be joined into ``person`` (the survivor)."""

    version: int = Field(default=1, description="The writer's contract version (internal topics).")
    kind: Literal["fold"] = "fold"
    person: str
    source: str
    at: datetime
    record: PersonRecord | None = None
    memberships: tuple[Membership, ...] = ()
    attendance: tuple[Attendance, ...] = ()
    recent: RecentAsks | None = None
    deferred: tuple[AskCommand, ...] = Field(default=(), description="Asks waiting (deferred): they move to the survivor.")
    hops: int = 0


def linked_keys(entries: Mapping[str, str], key: str) -> set[str]:
    """Every identifier and person key that is one person with ``key``, given each entry's
    ``person`` (``identities_by_key`` read to its end): the person ``key`` resolves to, and
    every key that resolves to it."""

    def person(k: str) -> str:
        for _ in range(len(entries) + 1):  # entries only point to older keys; never loop on bad data
            nxt = entries.get(k, k)
            if nxt == k:
                return k
            k = nxt
        return k

    me = person(key)
    return {key, me} | {k for k in entries if person(k) == me}


IdentityMessage = Annotated[Union[Deliver, Link, Fold], Field(discriminator="kind")]
identity_message: TypeAdapter[Deliver | Link | Fold] = TypeAdapter(IdentityMessage)
