"""Which membership and attendance facts each person has, so a merge finds a person's facts
without scanning the tables (their keys end in the person key; dicts have no suffix look-up).

Kept up to date by the tables' ``on_change`` (every write through ``FactTable.put``), and
rebuilt from the tables whenever the consumer generation changed: partitions a worker takes
over are restored from their changelogs straight into the tables, not through ``put``. Keys
that were deleted since are filtered out when read.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from contracts.facts import Attendance, Membership
from streams.app import Pipeline
from streams.keys import fact_key


class PersonFacts:
    def __init__(self, p: Pipeline) -> None:
        self.p = p
        self.generation: object = None
        self.memberships: dict[str, set[str]] = defaultdict(set)
        self.attendance: dict[str, set[str]] = defaultdict(set)
        p.memberships.on_change = self._membership
        p.attendance.on_change = self._attendance

    def of(self, person: str) -> tuple[list[str], list[str]]:
        """The keys of ``person``'s memberships and attendance facts, sorted."""
        self._current()
        return (sorted(k for k in self.memberships.get(person, ()) if k in self.p.memberships.table.data),
                sorted(k for k in self.attendance.get(person, ()) if k in self.p.attendance.table.data))

    def _membership(self, old: Membership | None, new: Membership) -> None:
        self.memberships[new.person_key].add(fact_key(new.partner, new.person_key))

    def _attendance(self, old: Attendance | None, new: Attendance) -> None:
        self.attendance[new.person_key].add(fact_key(new.action_id, new.person_key))

    def _current(self) -> None:
        generation = getattr(self.p.app, "consumer_generation_id", None)
        if generation == self.generation:
            return
        self.memberships.clear()
        self.attendance.clear()
        for index, table in ((self.memberships, self.p.memberships.table.data), (self.attendance, self.p.attendance.table.data)):
            for key in list(table):
                index[_person_of(key, table[key])].add(key)
        self.generation = generation


def _person_of(key: str, raw: Any) -> str:
    # fact_key(first, person): the person key is after the last "|" (action and partner ids have none).
    return raw.get("person_key") if isinstance(raw, dict) and raw.get("person_key") else key.rsplit("|", 1)[-1]
