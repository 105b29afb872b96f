"""Forgetting a person on request: which records go, and the agent step that removes them.

A person matches a request when their person key, or the key of their phone or of their
email, is one of the request's contact keys. The web app puts in every key linked to the
person asked for (``connectors.web.people``): the person's key, each identifier linked to it,
each person merged into it. What goes: their people record (with name, phone, email), their
recent-asks record, and their deferred asks (which hold the rendered message and address);
those asks are marked cancelled, and provider error texts on their asks, under any of those keys
(which may quote an address), are dropped. What stays: memberships, attendance, pledges, merges,
the identity entries that link an identifier to the person it was merged into (keyed hashes,
like the merges: signed up again by that identifier alone, they are that person again, facts
included, and are not counted twice) and ask facts, which hold only person keys, so the tallies
keep their counts; and their opt-outs: a record under each of
their keys with the channels they stopped and nothing else (no name, phone or email), so a
partner posting them again (an old sheet) does not text or email someone who said stop. The
keys of the request on other partitions get theirs through the provider topic (``PersonOptOut``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from contracts.asks import AskFact, parse_ask_id
from contracts.erasure import ErasureReport, ForgetPerson
from contracts.facts import Channel, PersonRecord
from contracts.providers import PersonOptOut, ProviderEnvelope
from streams.app import Pipeline
from streams.crypto import is_sealed
from streams.keys import partition_of, person_key

from .identity.resolve import target_of

ERASED = "person erased"
SCRUBBED = "(removed on erasure)"


def matches(person: PersonRecord, requested: set[str], secret: bytes) -> bool:
    if person.person_key in requested:
        return True
    # A sealed phone or email cannot be hashed here: such a record is found by its key, the
    # identifiers linked to it (the request lists them), and its data keys are erased anyway.
    return bool(
        (person.phone and not is_sealed(person.phone) and person_key(secret, person.phone, None) in requested)
        or (person.email and not is_sealed(person.email) and person_key(secret, None, person.email) in requested)
    )


def forget(p: Pipeline, partition: int, cmd: ForgetPerson, secret: bytes, now: datetime) -> ErasureReport:
    """Remove the people this partition holds that match ``cmd``; record and return what went."""
    partitions = p.events.partitions or 1
    requested = set(cmd.contact_keys)
    mine = [k for k in list(p.people.table.keys()) if partition_of(k, partitions) == partition]
    removed = [person for person in map(p.people.get, mine) if person is not None and matches(person, requested, secret)]
    gone = {person.person_key for person in removed} | {k for k in requested if partition_of(k, partitions) == partition}
    stopped = opt_outs(removed)
    for key in gone:
        p.people.delete(partition, key)
        p.recent_asks.delete(partition, key)
        if target_of(p, key) == key:  # its own entry; one linking it to another person stays, as the merge record does
            p.identities.delete(partition, key)
        if stopped:
            p.people.put(partition, key, PersonRecord(person_key=key, recruited_by="", recruited_at=now, updated_at=now, opted_out=stopped))
    for key in sorted(requested - gone) if stopped else ():  # the person's other identifiers, on their own partitions
        for channel, at in stopped.items():
            p.send_soon(p.provider, key, ProviderEnvelope(person_key=key, received_at=at, event=PersonOptOut(channel=channel)).model_dump_json().encode())
    cancelled = _cancel_deferred(p, partition, gone, now)
    _scrub_errors(p, partition, gone)
    people = [person for person in removed if not only_opt_outs(person)]  # a record kept by an earlier erasure is nobody
    partners = tuple(sorted({x for person in people for x in person.partners}))
    report = ErasureReport(request_id=cmd.request_id, partition=partition, people_removed=len(people), partners=partners, asks_cancelled=cancelled, at=now)
    key = f"{cmd.request_id}|{partition}"
    first = p.erasures.get(key)
    if first is not None:
        return first  # a replay finds nothing left: the first pass's report is the one that counts
    p.erasures.put(partition, key, report)
    return report


def opt_outs(people: list[PersonRecord]) -> dict[Channel, datetime]:
    """The channels these records stopped, each at its earliest stop."""
    out: dict[Channel, datetime] = {}
    for person in people:
        for channel, at in person.opted_out.items():
            out[channel] = min(at, out.get(channel, at))
    return out


def only_opt_outs(person: PersonRecord) -> bool:
    """A record that only remembers opt-outs (one an erasure left, or a STOP from someone unknown)."""
    return not person.partners and not any(getattr(person, f) for f in ("given_name", "family_name", "phone", "email", "postal_code"))


def erased_ask(fact: AskFact, now: datetime) -> AskFact:
    """A deferred ask of an erased person: cancelled, so it is never sent."""
    return fact.model_copy(update={"status": "cancelled", "error": ERASED, "updated_at": now, "deferred_until": None})


def scrubbed(fact: AskFact) -> AskFact:
    """The ask without its provider error text, which may quote the address (a bounce:
    "550 <ana@…> rejected"); status and error code stay, so the tallies do not move."""
    if not fact.error or fact.error == ERASED:
        return fact
    return fact.model_copy(update={"error": SCRUBBED})


def _asks_of(ask_ids: Iterable[str], gone: set[str]) -> list[str]:
    """The ask ids that belong to these people (the person key is part of the id)."""
    return [ask_id for ask_id in list(ask_ids) if parse_ask_id(ask_id)[1] in gone]


def _cancel_deferred(p: Pipeline, partition: int, gone: set[str], now: datetime) -> int:
    """Drop the deferred texts of these people (message and number) and cancel their asks."""
    cancelled = 0
    for ask_id in _asks_of(p.deferred.table.keys(), gone):
        if p.deferred.delete(partition, ask_id) is None:
            continue  # nothing was deferred under this id any more
        fact = p.asks.get(ask_id)
        if fact is not None:
            p.asks.put(partition, ask_id, erased_ask(fact, now))
        cancelled += 1
    return cancelled


def _scrub_errors(p: Pipeline, partition: int, gone: set[str]) -> None:
    for ask_id in _asks_of(p.asks.table.keys(), gone):
        fact = p.asks.get(ask_id)
        if fact is not None:
            p.asks.put(partition, ask_id, scrubbed(fact))
