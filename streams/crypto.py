"""Crypto-shredding: personal fields sealed with a per-person data key, data keys wrapped with
the coalition's master key. Deleting a person's data keys makes every copy of their sealed
fields unreadable at once, in every topic, changelog, replica and backup.

- A *data key* is 32 random bytes (AES-256-GCM) belonging to one person key, named by a random
  *key id*. A person may have several (two web apps that met a new person at the same moment
  each made one): every sealed value names the key id it was sealed with, and erasure deletes
  all of the person's keys.
- A *sealed value* is ``enc1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>``. The field's name is
  the associated data, so a sealed phone cannot be passed off as an email or a name.
- A *key record* (the data-keys topic, compacted; key ``<person key>:<key id>``) holds the
  data key wrapped (AES-GCM) by a master key, named by the master key's id, with
  ``<person key>:<key id>`` as associated data. A tombstone under that key is the erasure.

``KeyRing`` is what a process knows of the data-keys topic: pure, no I/O (``streams.data_keys``
feeds it from Kafka). Exceptions: ``UnknownMasterKey`` (a key record wrapped by a master key
this process was not given).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Callable, Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic_core import from_json

SEALED = "enc1:"
NONCE = 12
#: Personal fields of a person, wherever they travel (events, the people table, folds).
PERSONAL_FIELDS = ("given_name", "family_name", "phone", "email", "postal_code")
#: Fields of an ask command that quote the person (the address, and texts rendered with their name).
ASK_FIELDS = ("to", "body", "subject")


class UnknownMasterKey(Exception):
    """A key record was wrapped by a master key this process does not have (``master_id``)."""

    def __init__(self, master_id: str) -> None:
        super().__init__(f"data key wrapped by unknown master key {master_id}")
        self.master_id = master_id


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _unb64(text: str) -> bytes:
    """``base64.urlsafe_b64decode`` of unpadded ``text``, without its Python layers (planning
    opens three fields of every person it asks)."""
    return binascii.a2b_base64(text.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(text) % 4))


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED)


def key_id_of(value: object) -> str | None:
    """The key id a sealed value names; ``None`` for anything else."""
    if not is_sealed(value):
        return None
    kid, sep, _ = value[len(SEALED):].partition(":")  # type: ignore[index]
    return kid if sep else None


@dataclass(frozen=True)
class DataKey:
    key_id: str
    person_key: str
    secret: bytes = field(repr=False)

    @cached_property
    def _aead(self) -> AESGCM:
        return AESGCM(self.secret)

    @property
    def record_key(self) -> str:
        """Its key on the data-keys topic (a tombstone under it erases it)."""
        return f"{self.person_key}:{self.key_id}"

    def seal(self, name: str, value: str, nonce: bytes | None = None) -> str:
        nonce = nonce or os.urandom(NONCE)
        return f"{SEALED}{self.key_id}:{_b64(nonce + self._aead.encrypt(nonce, value.encode(), name.encode()))}"

    def open(self, name: str, sealed: str) -> str | None:
        """The value, or ``None`` if ``sealed`` was not sealed as ``name`` with this key."""
        return self._open(name, sealed.rpartition(":")[2])

    def _open(self, name: str, text: str) -> str | None:
        """``open`` of the base64 text after the key id."""
        try:
            blob = _unb64(text)
            return self._aead.decrypt(blob[:NONCE], blob[NONCE:], name.encode()).decode()
        except (InvalidTag, ValueError, IndexError):
            return None


@dataclass(frozen=True)
class MasterKey:
    """The coalition's master key, from configuration (any high-entropy string): its AES key is
    SHA-256 of it under a fixed label, its id the first 12 hex digits of that key's own hash."""

    secret: bytes = field(repr=False)

    @cached_property
    def _key(self) -> bytes:
        return hashlib.sha256(b"turnout master key\0" + self.secret).digest()

    @cached_property
    def id(self) -> str:
        return hashlib.sha256(self._key).hexdigest()[:12]

    @cached_property
    def _aead(self) -> AESGCM:
        return AESGCM(self._key)

    def wrap(self, key: DataKey, nonce: bytes | None = None) -> str:
        nonce = nonce or os.urandom(NONCE)
        return _b64(nonce + self._aead.encrypt(nonce, key.secret, key.record_key.encode()))

    def unwrap(self, wrapped: str, person_key: str, key_id: str) -> bytes:
        blob = _unb64(wrapped)
        return self._aead.decrypt(blob[:NONCE], blob[NONCE:], f"{person_key}:{key_id}".encode())


def key_record(master: MasterKey, key: DataKey, at: datetime | None = None, introduces: bool = True) -> tuple[bytes, bytes]:
    """The data-keys topic record of ``key``, wrapped by ``master``. ``introduces``: ``False`` for
    a key made for events that introduce nobody (``KeyRing.forgotten``)."""
    value = {"version": 1, "person_key": key.person_key, "key_id": key.key_id, "master": master.id, "wrapped": master.wrap(key),
             "created_at": (at or datetime.now(timezone.utc)).isoformat(), **({} if introduces else {"introduces": False})}
    return key.record_key.encode(), json.dumps(value).encode()


def tombstone(record_key: str) -> tuple[bytes, None]:
    return record_key.encode(), None


class KeyRing:
    """The data keys a process knows, from the data-keys topic (``apply`` each record in order).
    ``masters``: the current master key first, then any it replaced (read, never used to wrap)."""

    def __init__(self, masters: Sequence[MasterKey], new_secret: Callable[[int], bytes] = os.urandom) -> None:
        if not masters:
            raise ValueError("a key ring needs a master key")
        self.master = masters[0]
        self.masters = {m.id: m for m in masters}
        self._random = new_secret
        self.keys: dict[str, DataKey] = {}
        self.by_person: dict[str, dict[str, None]] = {}  # person key → its key ids, oldest first
        self.wrapped_by: dict[str, str] = {}  # record key → master id (for rewrapping after a rotation)
        self.erased: set[str] = set()  # record keys tombstoned while this ring was read
        self._erased_ids: set[str] = set()  # their key ids
        self._erased_people: set[str] = set()  # whose keys they were
        self._silent: set[str] = set()  # record keys of keys made for events that introduce nobody
        self._made: set[str] = set()  # keys this process made, whose own record has not come back yet

    def __len__(self) -> int:
        return len(self.keys)

    def apply(self, record_key: bytes | str, value: bytes | None) -> None:
        """One record of the data-keys topic: a key record, or a tombstone (the key is erased)."""
        rk = record_key.decode() if isinstance(record_key, bytes) else record_key
        person, _, kid = rk.rpartition(":")
        if value is None:
            self._drop(person, kid)
            self.erased.add(rk)
            self._erased_ids.add(kid)
            self._erased_people.add(person)
            self._silent.discard(rk)
            return
        if rk in self._made:
            self._made.discard(rk)
            return  # the record of a key this process made and wrote: nothing new in it
        data = from_json(value)
        self._mark(rk, data.get("introduces", True))
        master = self.masters.get(data["master"])
        if master is None:
            raise UnknownMasterKey(data["master"])
        known = self.keys.get(data["key_id"])
        if known is None or known.person_key != data["person_key"]:  # a key this process made, or read before: unwrapped once
            self.add(DataKey(data["key_id"], data["person_key"], master.unwrap(data["wrapped"], data["person_key"], data["key_id"])))
        self.wrapped_by[rk] = master.id

    def add(self, key: DataKey) -> None:
        self.keys[key.key_id] = key
        self.by_person.setdefault(key.person_key, {})[key.key_id] = None

    def writing(self, keys: Iterable[DataKey]) -> None:
        """These keys, made here, are being written: their own records, when read back, hold
        nothing new (they may come back before the write is acknowledged)."""
        self._made.update(k.record_key for k in keys)

    def made(self, key: DataKey, introduces: bool = True) -> None:
        """``key``, made here and written wrapped by the current master key: in the ring from now on."""
        self.add(key)
        self.wrapped_by[key.record_key] = self.master.id
        self._mark(key.record_key, introduces)

    def _mark(self, record_key: str, introduces: bool) -> None:
        (self._silent.discard if introduces else self._silent.add)(record_key)

    def introduces(self, key: DataKey) -> bool:
        """Whether ``key``'s record says it was made for an event that introduces its person."""
        return key.record_key not in self._silent

    def not_made(self, keys: Iterable[DataKey]) -> None:
        """The write of these keys failed: they never existed."""
        self._made.difference_update(k.record_key for k in keys)

    def _drop(self, person: str, kid: str) -> None:
        self.keys.pop(kid, None)
        self.wrapped_by.pop(f"{person}:{kid}", None)
        kids = self.by_person.get(person)
        if kids is not None:
            kids.pop(kid, None)
            if not kids:
                del self.by_person[person]

    def new_key(self, person_key: str) -> DataKey:
        """A fresh data key for ``person_key`` (not in the ring until its record is durable and applied)."""
        return DataKey(self._random(8).hex(), person_key, self._random(32))

    def for_person(self, person_key: str) -> DataKey | None:
        """The key to seal ``person_key``'s new data with: their oldest known key."""
        kids = self.by_person.get(person_key)
        return self.keys[next(iter(kids))] if kids else None

    def of_people(self, person_keys: Iterable[str]) -> list[DataKey]:
        """Every known key of these people (what erasing them tombstones)."""
        return [self.keys[kid] for pk in person_keys for kid in self.by_person.get(pk, ())]

    def get(self, key_id: str) -> DataKey | None:
        return self.keys.get(key_id)

    def forgotten(self, person_key: str) -> bool:
        """Whether ``person_key`` was erased while this ring was read and has had no key since
        but for events that introduce nobody (an RSVP naming their email alone: it makes no record
        of them). A partner signing them up again makes or marks a key that introduces them."""
        return person_key in self._erased_people and all(f"{person_key}:{kid}" in self._silent for kid in self.by_person.get(person_key, ()))

    def open(self, name: str, value: str | None) -> str | None:
        """``value`` opened if sealed (``None`` when its key is unknown or erased), as it is if
        not (a record written before sealing, or a field that is not personal)."""
        if not is_sealed(value):
            return value
        kid, sep, text = value[len(SEALED):].partition(":")  # type: ignore[index]
        key = self.keys.get(kid) if sep else None
        return None if key is None else key._open(name, text)

    def erased_value(self, value: object) -> bool:
        """Whether ``value`` was sealed with a key this ring saw tombstoned (not merely unknown)."""
        kid = key_id_of(value)
        return kid is not None and kid in self._erased_ids

    def readable(self, value: object) -> bool:
        """Whether ``value`` can be read: not sealed, or sealed with a key in the ring."""
        return not is_sealed(value) or key_id_of(value) in self.keys
