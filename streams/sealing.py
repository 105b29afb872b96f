"""Sealing and opening the personal fields of turnout's records (``streams.crypto``).

What is sealed, always with one of the person's own data keys:

- a partner event's ``person``: given and family name, phone, email, postal code (the ingress,
  before the event reaches Kafka); the people table and identity folds keep them as they came;
- an ask command's ``to``, ``body`` and ``subject`` (the planner, with the key its address was
  sealed with), so the asks topic and the deferred asks table hold no address or name either.

Opening returns ``None`` when a sealed field's key is unknown: erased (or not read yet: the
caller may catch up with the data-keys topic and try once more). Records written before
sealing existed are read as they are.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, TypeVar

from pydantic import BaseModel

from contracts.asks import AskCommand
from contracts.facts import PersonRecord

from .crypto import ASK_FIELDS, PERSONAL_FIELDS, DataKey, KeyRing, is_sealed, key_id_of

M = TypeVar("M", bound=BaseModel)


def seal_event(event: Any, key: DataKey) -> Any:
    """``event`` with its person's personal fields sealed (events without a person: as they are)."""
    person = getattr(event, "person", None)
    if person is None:
        return event
    update = {f: key.seal(f, v) for f in PERSONAL_FIELDS if (v := getattr(person, f, None)) is not None and not is_sealed(v)}
    return event.model_copy(update={"person": person.model_copy(update=update)}) if update else event


def key_ids(values: Iterable[object]) -> set[str]:
    return {kid for v in values if (kid := key_id_of(v)) is not None}


def person_key_ids(record: PersonRecord) -> set[str]:
    return key_ids(getattr(record, f) for f in PERSONAL_FIELDS)


def ask_key_ids(ask: AskCommand) -> set[str]:
    return key_ids(getattr(ask, f) for f in ASK_FIELDS)


def open_fields(values: dict[str, Any], open_: Callable[[str, str | None], str | None]) -> dict[str, Any] | None:
    """``values`` (field name → value) with every sealed one opened by ``open_`` (``KeyRing.open``);
    ``None`` if one cannot be opened (its key is erased, or not read yet)."""
    out = dict(values)
    for f, value in values.items():
        if is_sealed(value):
            out[f] = open_(f, value)
            if out[f] is None:
                return None
    return out


def _opened(model: M, fields: Iterable[str], ring: KeyRing, known: dict[str, Any] | None = None) -> M | None:
    opened = open_fields({f: v for f in fields if is_sealed(v := getattr(model, f))}, ring.open)
    if opened is None:
        return None
    update = {**known, **opened} if known else opened
    return model.model_copy(update=update) if update else model


def open_person(record: PersonRecord, ring: KeyRing, fields: Iterable[str] = PERSONAL_FIELDS,
                known: dict[str, Any] | None = None) -> PersonRecord | None:
    """The record with its personal ``fields`` readable (and ``known``: fields the caller has
    opened already); ``None`` if one of them cannot be opened."""
    return _opened(record, fields, ring, known)


def sealing_key(record: PersonRecord, ring: KeyRing) -> DataKey | None:
    """The key to seal what is written about this person with: the key their address was
    sealed with (so erasing the person erases it too); ``None`` when nothing of theirs is sealed."""
    for f in ("phone", "email", *PERSONAL_FIELDS):
        kid = key_id_of(getattr(record, f))
        if kid is not None:
            return ring.get(kid)
    return None


def seal_ask(ask: AskCommand, key: DataKey | None) -> AskCommand:
    """The command with its address and texts sealed (``key`` ``None``: a person whose record
    predates sealing, left as it is)."""
    if key is None:
        return ask
    return ask.model_copy(update={f: key.seal(f, v) for f in ASK_FIELDS if (v := getattr(ask, f)) is not None and not is_sealed(v)})


def open_ask(ask: AskCommand, ring: KeyRing) -> AskCommand | None:
    """The command ready for a provider; ``None`` if its person's key is gone (erased)."""
    return _opened(ask, ASK_FIELDS, ring)
