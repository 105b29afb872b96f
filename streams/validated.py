"""The pydantic models of a table's recent values, so that reading a fact does not validate it
again: a fan-out reads each ask fact five to seven times (send, result, two callbacks, the
writes' change hooks) and each person twice, and validation was most of the cost of a read.

An entry is only used while the table still holds the very dict it was made from (``is``):
a write, a delete, a changelog replay or a standby update puts another object there, and the
next read validates that one. The entry keeps its dict alive, so its identity cannot be
reused. Models are frozen, so handing the same one to several readers is safe.

Bounded: two generations of at most ``size`` entries each; when the newer one fills up, the
older is dropped. A scan over a big table (planning reads every person of a partition) costs
what it did before, without holding a second copy of the table.
"""

from __future__ import annotations

from typing import Any, Generic, NamedTuple, TypeVar

M = TypeVar("M")


class Entry(NamedTuple, Generic[M]):
    raw: Any
    model: M
    #: ``raw`` is this model's own dump (written by us), not validated from what was stored.
    exact: bool


class Validated(Generic[M]):
    def __init__(self, size: int = 16_384) -> None:
        self.size = size
        self._new: dict[str, Entry[M]] = {}
        self._old: dict[str, Entry[M]] = {}

    def get(self, key: str, raw: Any) -> Entry[M] | None:
        """The entry for ``key`` if it was made from ``raw`` itself."""
        entry = self._new.get(key)
        if entry is None:
            entry = self._old.pop(key, None)
            if entry is None:
                return None
            self._remember(key, entry)
        return entry if entry.raw is raw else None

    def put(self, key: str, raw: Any, model: M, exact: bool) -> None:
        self._remember(key, Entry(raw, model, exact))

    def _remember(self, key: str, entry: Entry[M]) -> None:
        if len(self._new) >= self.size and key not in self._new:
            self._old, self._new = self._new, {}
        self._new[key] = entry
