"""Unduplicated counts: people, not records.

Per-partner figures credit each person to one partner (``contracts.tallies``); these count the
people themselves, once each however many partners know them: per action, the people with an
RSVP yes and the people who attended; coalition-wide, the people who did either for any posted
action; the people more than one partner signed up (the coalition's overlap); and how many
people were merged into another (``agents.identity``).

Kept like every tally, from facts: each record moves the sets by what its new version adds
and its old version took, so replays and duplicates change nothing. A person merged into
another is counted under both keys only until the merge's fold reaches the fact topics (its
facts are tombstoned as the survivor's are written).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from .facts import Attendance, Membership

METRICS = ("rsvp_yes", "attended")


def takes_part(fact: Attendance | None) -> set[str]:
    """Which of ``METRICS`` an attendance fact counts its person in."""
    if fact is None:
        return set()
    return {m for m, on in (("rsvp_yes", fact.rsvp == "yes" and bool(fact.rsvp_by)), ("attended", bool(fact.attended_by))) if on}


class UniquePeople:
    def __init__(self) -> None:
        self._by_action: dict[str, dict[str, set[str]]] = defaultdict(lambda: {m: set() for m in METRICS})
        self._posted: set[str] = set()
        self._across: dict[str, Counter[str]] = {m: Counter() for m in METRICS}  # person → posted actions they count in
        self._memberships: Counter[str] = Counter()  # person → partners that signed them up
        self.overlap = 0
        self.merges = 0

    def attendance(self, old: Attendance | None, new: Attendance | None) -> None:
        fact = new or old
        if fact is None:
            return  # a tombstone for a fact never seen
        before, after = takes_part(old), takes_part(new)
        for metric in before - after:
            self._by_action[fact.action_id][metric].discard(fact.person_key)
            if fact.action_id in self._posted:
                self._count(metric, fact.person_key, -1)
        for metric in after - before:
            self._by_action[fact.action_id][metric].add(fact.person_key)
            if fact.action_id in self._posted:
                self._count(metric, fact.person_key, 1)

    def membership(self, old: Membership | None, new: Membership | None) -> None:
        if (old is None) == (new is None):
            return  # the same membership again (a later sign-up date changes nothing here)
        person, step = ((new or old).person_key, 1 if new else -1)  # type: ignore[union-attr]
        before = self._memberships[person]
        self._memberships[person] += step
        if not self._memberships[person]:
            del self._memberships[person]
        self.overlap += (self._memberships[person] >= 2) - (before >= 2)

    def merge(self, old: object | None, new: object | None) -> None:
        self.merges += (new is not None) - (old is not None)

    def action(self, action_id: str, posted: bool) -> None:
        """An action was posted (``posted``) or is gone: its people count coalition-wide or not."""
        if posted == (action_id in self._posted):
            return
        (self._posted.add if posted else self._posted.discard)(action_id)
        for metric, people in self._by_action.get(action_id, {}).items():
            for person in people:
                self._count(metric, person, 1 if posted else -1)

    def in_action(self, action_id: str) -> dict[str, int]:
        people = self._by_action.get(action_id, {})
        return {m: len(people.get(m, ())) for m in METRICS}

    def across(self, actions: Iterable[str] | None = None) -> dict[str, int]:
        """People counted in any posted action (or in any of ``actions``), each once."""
        if actions is None:
            return {m: len(self._across[m]) for m in METRICS}
        chosen = [self._by_action[a] for a in actions if a in self._by_action]
        return {m: len(set().union(*(people[m] for people in chosen))) for m in METRICS}

    def _count(self, metric: str, person: str, step: int) -> None:
        self._across[metric][person] += step
        if not self._across[metric][person]:
            del self._across[metric][person]
