"""Kafka keys. Raw phone numbers and emails never become keys: people are keyed by a keyed hash.

The person key is HMAC-SHA256 (coalition secret) of the normalized phone, else of the
normalized email. Events are routed so that everything that updates one fact lands on
one partition: all of a person's events by person key; an action and every pledge for it by
action id (so the intake that fans an action out sees who co-sponsors it).
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from kafka.partitioner.default import murmur2

from contracts.events import ActionEvent, PartnerEvent, PledgeEvent


def person_key(secret: bytes, phone: str | None, email: str | None) -> str:
    """The stable key of a person: ``p`` + 32 hex characters."""
    if phone:
        ident = f"tel:{phone}"
    elif email:
        ident = f"mailto:{email}"
    else:
        raise ValueError("a person needs a phone or an email")
    return "p" + hmac.new(secret, ident.encode(), hashlib.sha256).hexdigest()[:32]


def event_person_key(secret: bytes, event: PartnerEvent) -> str | None:
    person = getattr(event, "person", None)
    return person_key(secret, person.phone, person.email) if person is not None else None


def routing_key(partner: str, event: PartnerEvent, person: str | None) -> str:
    if isinstance(event, ActionEvent):
        return f"action:{event.action_id}"
    if isinstance(event, PledgeEvent):
        return pledge_key(event.action_id, partner)
    assert person is not None
    return person


def pledge_key(action_id: str, partner: str) -> str:
    """Pledges travel with their action (the partner is in the envelope)."""
    return f"action:{action_id}"


def fact_key(*parts: str) -> str:
    """Key of a fact table entry, e.g. ``fact_key(action, person)`` → ``rally-1|p…``."""
    return "|".join(parts)


@lru_cache(maxsize=1_000_000)
def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, as every producer
    here uses): which people a worker owns when it iterates its tables."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def keys_for_every_partition(prefix: str, partitions: int) -> list[str]:
    """One key per partition, ``<prefix>:<n>``, each landing on a different partition: how a
    command reaches every partition through a producer that only takes keys."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        key = f"{prefix}:{n}"
        found.setdefault(partition_of(key, partitions), key)
        n += 1
    return [found[p] for p in range(partitions)]
