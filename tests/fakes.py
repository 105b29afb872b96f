"""A pipeline without a broker, for unit tests of the agents' orchestration.

It is the real ``streams.app.Pipeline`` with the real ``FactTable`` on every table: only what
lies under them is in memory (a Faust table's data and changelog, a topic's producer, the
app's consumer generation and flow control). So a write keeps the real port's contract
(skip-if-equal against what the table holds, ``on_change``, ``pending``), and a test sees
what reached the changelog and the topics.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace
from typing import Any

from streams.app import FactTable, PendingWrites, Pipeline, count_ask
from streams.transport import Lease
from streams.topology import ACTIONS, ASKS, ATTENDANCE, DEFERRED, ERASURES, IDENTITIES, MEMBERSHIPS, MERGES, PEOPLE, PLEDGES, RECENT_ASKS


class Acked:
    """A write the broker has acknowledged already."""

    def __await__(self):
        return iter(())


class MemoryTable:
    """What ``FactTable`` and the agents use of a Faust table: ``data``, ``send_changelog``, and
    the table's mapping reads (``keys``, ``items``, ``in``)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog: list[tuple[int, str, Any]] = []

    def keys(self):
        return self.data.keys()

    def items(self):
        return self.data.items()

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def send_changelog(self, partition: int, key: str, value: Any, value_serializer: str | None = None) -> Acked:
        self.changelog.append((partition, key, value))
        return Acked()


class MemoryTopic:
    def __init__(self, partitions: int = 4) -> None:
        self.partitions = partitions
        self.sent: list[tuple[str, bytes, int | None]] = []

    def send_soon(self, key: str, value: bytes, partition: int | None = None) -> Acked:
        self.sent.append((key, value, partition))
        return Acked()

    async def send(self, key: str | bytes, value: bytes, partition: int | None = None) -> None:
        self.sent.append((key.decode() if isinstance(key, bytes) else key, value, partition))


class Flow:
    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active


async def _crashed(exc: BaseException) -> None:
    raise AssertionError(f"the worker would stop: {exc!r}")


def memory_pipeline(partitions: int = 4) -> Pipeline:
    pending = PendingWrites()

    def table(spec, on_change=None) -> FactTable:
        return FactTable(MemoryTable(), spec.model, pending, on_change)

    topic = lambda: MemoryTopic(partitions)  # noqa: E731
    return Pipeline(
        app=SimpleNamespace(consumer_generation_id=1, flow_control=Flow(), crash=_crashed, lease=Lease(math.inf, 0.0)),
        events=topic(), dead_letters=topic(), people=table(PEOPLE), memberships=table(MEMBERSHIPS),
        attendance=table(ATTENDANCE), pledges=table(PLEDGES), actions=table(ACTIONS), targeting=topic(),
        asks_topic=topic(), provider=topic(), asks=table(ASKS, count_ask), recent_asks=table(RECENT_ASKS),
        deferred=table(DEFERRED), erasures=table(ERASURES), identity=topic(), identities=table(IDENTITIES),
        merges=table(MERGES), pending=pending, previews=topic(),
    )


def dead_letters(p: Pipeline) -> list[dict]:
    """What reached the dead-letter topic: each record's JSON, with its ``key``."""
    return [{"key": key, **json.loads(value)} for key, value, _ in p.dead_letters.sent]
