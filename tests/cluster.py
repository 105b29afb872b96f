"""A coalition's workers without a broker, one per partition, for tests of identity resolution.

Each partition has a pipeline of its own (``tests.fakes.memory_pipeline``: the real tables,
in memory), as if a different worker owned each: code that read a key of another partition
would find nothing, as it would in production. What the agents send (events, identity
messages, provider envelopes) is queued per topic and partition, by key, as Kafka's default
partitioner routes it; the test decides which queue is served next, so it can interleave
partitions in any order and deliver a message twice (at-least-once), FIFO within a partition.
"""

from __future__ import annotations

import random
from collections import deque
from datetime import datetime
from typing import Any, Callable

from agents import intake
from agents.identity import Resolver
from contracts.events import Envelope, partner_event
from contracts.tallies import TallyBook
from streams.app import Pipeline
from streams.keys import event_person_key, partition_of
from tests.fakes import memory_pipeline

SECRET = b"cluster-secret"
TOPICS = ("events", "identity", "provider")


class Cluster:
    def __init__(self, partitions: int = 4, secret: bytes = SECRET) -> None:
        self.n, self.secret = partitions, secret
        self.nodes: list[Pipeline] = [memory_pipeline(partitions) for _ in range(partitions)]
        self.resolvers = [Resolver(p, secret) for p in self.nodes]
        self.queues: dict[tuple[str, int], deque[tuple[str, bytes]]] = {(t, i): deque() for t in TOPICS for i in range(partitions)}
        self.on_provider: Callable[[Pipeline, int, str, bytes], Any] | None = None

    # -- input ------------------------------------------------------------------------------

    def post(self, partner: str, item: dict, received: datetime, role: str = "member") -> str:
        """Queue a partner event as the ingress writes it; return its routing key."""
        event = partner_event.validate_python(item)
        key = event_person_key(self.secret, event)
        env = Envelope(partner=partner, received_at=received, role=role, person_key=key, event=event)
        self.enqueue("events", key, env.model_dump_json().encode())
        return key

    def enqueue(self, topic: str, key: str, raw: bytes) -> None:
        self.queues[(topic, partition_of(key, self.n))].append((key, raw))

    # -- delivery ---------------------------------------------------------------------------

    def pending(self) -> list[tuple[str, int]]:
        return [q for q, items in self.queues.items() if items]

    async def step(self, queue: tuple[str, int], again: bool = False) -> None:
        """Serve the head of ``queue``; ``again``: leave it there too (it will be delivered twice)."""
        topic, part = queue
        key, raw = self.queues[queue][0] if again else self.queues[queue].popleft()
        p, resolver = self.nodes[part], self.resolvers[part]
        if topic == "events":
            intake.handle(p, part, key, raw, self.secret, resolver=resolver)
        elif topic == "identity":
            resolver.handle(part, key, raw, intake.record)
            await resolver.flush()
        elif self.on_provider is not None:
            await self.on_provider(p, part, key, raw)
        await p.settle()
        self._collect(p)

    async def run(self, rng: random.Random | None = None, duplicates: float = 0.0, limit: int = 10_000) -> None:
        """Serve every queue until all are empty: in order of partition and topic, or in the
        random order ``rng`` picks, delivering a share ``duplicates`` of messages twice."""
        for _ in range(limit):
            queues = self.pending()
            if not queues:
                return
            queue = rng.choice(queues) if rng else queues[0]
            await self.step(queue, again=bool(rng) and rng.random() < duplicates)
        raise AssertionError("messages kept coming: a loop?")

    def _collect(self, p: Pipeline) -> None:
        for topic in TOPICS:
            sent = getattr(p, topic).sent
            for key, value, _ in sent:
                self.enqueue(topic, key, value)
            sent.clear()

    # -- the coalition's state, as every partition's tables together --------------------------

    def table(self, name: str) -> dict[str, Any]:
        """A table's contents over every partition (each key lives on one partition only)."""
        out: dict[str, Any] = {}
        for part, p in enumerate(self.nodes):
            for key, value in getattr(p, name).table.data.items():
                assert key not in out, f"{name}[{key}] on two partitions"
                out[key] = value
        return out

    def person_of(self, key: str) -> str:
        """Where an identifier's facts live: its entry followed partition by partition."""
        for _ in range(64):
            raw = self.nodes[partition_of(key, self.n)].identities.table.data.get(key)
            if raw is None or raw["person"] == key:
                return key
            key = raw["person"]
        raise AssertionError("identity entries make a cycle")

    def tallies(self) -> TallyBook:
        """The tallies a web app reading every fact topic to its end would show."""
        from streams.topology import FACT_TABLES

        book = TallyBook()
        for kind, spec in FACT_TABLES.items():
            table = {"membership": "memberships", "attendance": "attendance", "pledge": "pledges", "action": "actions", "ask": "asks", "merge": "merges", "identity": "identities"}[kind]
            for key, raw in self.table(table).items():
                book.apply(kind, key, spec.model.model_validate(raw))
        return book
