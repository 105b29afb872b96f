"""The Faust app and its topics and tables, built from settings at start-up.

``build(settings)`` returns a ``Pipeline``: the app plus every Faust topic and table,
declared from ``streams.topology``. Agents register themselves on it (``agents.register``).
Built by a function, not at import, so that tests can run several apps with unique
names against one broker and nothing reads configuration at import.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Generic, Sequence, TypeVar

import faust
from faust.serializers import codecs
from pydantic import BaseModel, ValidationError

from . import batching, metrics, transport
from .validated import Entry, Validated
from .writes import Writes
from .settings import Settings
from .topology import (
    ACTIONS, ASKS, ATTENDANCE, DEFERRED, ERASURES, IDENTITIES, MEMBERSHIPS, MERGES, PEOPLE, PLEDGES, RECENT_ASKS, TableSpec,
    asks_topic, dead_letter, dead_letter_topic, events_topic, excerpt, identity_topic, previews_topic, provider_topic, targeting_topic,
)

M = TypeVar("M", bound=BaseModel)


class LenientText(codecs.Codec):
    """Topic keys as text. A key that is not UTF-8 (no ingress writes one, but anything can be
    produced to a topic) is read with backslash escapes, so its record reaches the agent and is
    dead-lettered there, instead of failing Faust's key decoding and crashing every agent."""

    def _dumps(self, s: Any) -> bytes:
        return s.encode() if isinstance(s, str) else s

    def _loads(self, s: bytes) -> Any:
        return batching.key_text(s)


codecs.register("lenient_text", LenientText())

log = logging.getLogger(__name__)


class LenientJSON(codecs.json):
    """Table changelog keys and values as JSON. A record that is not JSON (anything can be
    produced to a changelog) is read as ``None``, so table recovery counts its offset and goes on,
    instead of failing on it without counting it and never finishing (no agent would start)."""

    def _loads(self, s: bytes) -> Any:
        try:
            return super()._loads(s)
        except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested too deep
            log.warning("read an unreadable changelog record as empty (%s)", type(exc).__name__)
            return None


codecs.register("lenient_json", LenientJSON())

#: Writes one changelog record: (partition, key, value as stored or ``None`` to delete).
Changelog = Callable[[int, str, Any], Awaitable[Any]]


def faust_changelog(table: faust.Table) -> Changelog:
    """Through Faust's own ``send_changelog`` (its producer buffer; JSON)."""
    def send(partition: int, key: str, value: Any) -> Awaitable[Any]:
        return table.send_changelog(partition, key, value, **({"value_serializer": "raw"} if value is None else {}))
    return send


class PendingWrites:
    """The writes each agent made and has not yet seen acknowledged, kept per agent (per
    asyncio task context: an agent and its send tasks share its list), so that one
    agent's ``settle()`` never takes, or is failed by, another agent's writes."""

    def __init__(self) -> None:
        self._mine: ContextVar[list[Awaitable[Any]]] = ContextVar(f"pending-{id(self)}")

    def own(self) -> list[Awaitable[Any]]:
        """This agent's list (made on first use: call it before starting helper tasks)."""
        try:
            return self._mine.get()
        except LookupError:
            mine: list[Awaitable[Any]] = []
            self._mine.set(mine)
            return mine

    def separate(self) -> None:
        """From now on, this task (and those it starts) keeps a list of its own, even if the
        task it was started from had one: concurrent actors of one agent settle apart."""
        self._mine.set([])

    def append(self, fut: Awaitable[Any]) -> None:
        try:
            self._mine.get().append(fut)
        except LookupError:
            self.own().append(fut)

    async def settle(self) -> None:
        mine = self.own()
        pending, mine[:] = list(mine), []
        await asyncio.gather(*pending)


class FactTable(Generic[M]):
    """A Faust table of pydantic facts, stored as JSON.

    Writes name their partition (agents handle batches that span partitions, where Faust's
    implicit "partition of the current event" would be wrong), skip what did not change (so
    replays and duplicates add nothing), and join ``pending``: the writing agent awaits those
    before its batch is acknowledged, because Faust commits offsets without waiting for
    changelog writes, and a crash in between would lose facts whose events are never replayed.

    A write compares with what the table holds, never with what the caller believes it holds:
    an "old" passed in could be stale or ``None`` over an existing fact, and would defeat the
    skip or hide a change from ``on_change``.
    """

    def __init__(self, table: faust.Table, model: type[M], pending: PendingWrites,
                 on_change: Callable[[M | None, M], None] | None = None, changelog: Changelog | None = None) -> None:
        self.table = table
        self.model = model
        self.pending = pending
        self.on_change = on_change
        self._changelog = changelog or faust_changelog(table)
        self._validated: Validated[M] = Validated()
        store = table.data
        #: What the table holds, by key: the memory store's own dict (its mapping methods cost a
        #: KeyError per missing key on the hot path), or the table's mapping when it has none.
        self.data: Any = store.data if isinstance(getattr(store, "data", None), dict) else store

    def get(self, key: str) -> M | None:
        raw = self.data.get(key)
        return None if raw is None else self._model(key, raw).model

    def put(self, partition: int, key: str, new: M) -> Awaitable[Any] | None:
        """Write ``new`` unless the table holds it already; the result resolves once the broker has it."""
        old = self.data.get(key)
        held = None if old is None else self._validated.get(key, old)
        if held is not None and held.exact and held.model is new:
            return None  # the very fact the table holds (a callback that moved nothing)
        value = new.model_dump(mode="json")
        if value == old:
            return None
        self.data[key] = value
        self._validated.put(key, value, new, exact=True)
        if self.on_change is not None:
            self.on_change(None if old is None else held.model if held is not None else self.model.model_validate(old), new)
        return self._sent(self._changelog(partition, key, value))

    def _model(self, key: str, raw: Any) -> Entry[M]:
        entry = self._validated.get(key, raw)
        if entry is None:
            entry = Entry(raw, self.model.model_validate(raw), False)
            self._validated.put(key, *entry)
        return entry

    def delete(self, partition: int, key: str) -> Awaitable[Any] | None:
        if self.data.pop(key, None) is None:
            return None
        return self._sent(self._changelog(partition, key, None))

    def _sent(self, fut: Awaitable[Any]) -> Awaitable[Any]:
        self.pending.append(fut)
        return fut


@dataclass
class Pipeline:
    """The app with its topics and tables. ``settle()`` waits until every write made so far
    is acknowledged: agents call it before they let their batch be acknowledged. Writes go
    through ``writes`` (``streams.writes``), or Faust's ``send_soon`` when it is ``None``."""

    app: faust.App
    events: faust.TopicT
    dead_letters: faust.TopicT
    people: FactTable[Any]
    memberships: FactTable[Any]
    attendance: FactTable[Any]
    pledges: FactTable[Any]
    actions: FactTable[Any]
    targeting: faust.TopicT
    asks_topic: faust.TopicT
    provider: faust.TopicT
    asks: FactTable[Any]
    recent_asks: FactTable[Any]
    deferred: FactTable[Any]
    erasures: FactTable[Any]
    identity: faust.TopicT
    identities: FactTable[Any]
    merges: FactTable[Any]
    pending: PendingWrites = field(default_factory=PendingWrites)
    writes: Writes | None = None
    #: The answers to the organizer console's dry runs (``contracts.preview``).
    previews: faust.TopicT | None = None

    def send_soon(self, topic: faust.TopicT, key: str, value: bytes, partition: int | None = None) -> None:
        if self.writes is None:
            self.pending.append(topic.send_soon(key=key, value=value, partition=partition))
        else:
            self.pending.append(self.writes.send(topic.get_topic_name(), key.encode(), value, partition))

    def parse(self, model: Any, record: Any, what: str, **context: Any) -> Any | None:
        """The value of ``record`` (a Faust event, or a message of a batch: raw bytes either
        way) read as ``model`` (a pydantic model or TypeAdapter), or ``None`` once the record is
        dead-lettered as "invalid <what>", with where it is and an excerpt: no record, whatever
        its bytes, stops the agent reading it."""
        m = getattr(record, "message", record)
        raw = m.value
        validate = getattr(model, "model_validate_json", None) or model.validate_json
        try:
            return validate(raw if raw is not None else b"", context=context or None)
        except ValidationError as exc:
            where = excerpt(raw, topic=m.topic, partition=m.partition, offset=m.offset)
            self.dead_letter(batching.key_text(m.key), f"invalid {what}", errors=exc.errors(include_input=False, include_url=False), **where)
            return None

    def dead_letter(self, key: str | None, reason: str, **details: object) -> None:
        """Park what an agent could not use, with the reason, on the dead-letter topic."""
        log.warning("dead-lettered a record: %s", reason)
        safe_key, value = dead_letter(key, reason, **details)
        self.send_soon(self.dead_letters, safe_key.decode(), value)

    async def settle(self) -> None:
        """Wait until every write this agent made so far is acknowledged (a failed one raises)."""
        await self.pending.settle()

    async def crash(self, exc: BaseException) -> None:
        """A batch could not be made durable: stop the worker (exit code 1) rather than go on
        with events that are neither written nor acknowledged; they are read again from the
        last commit by whichever worker takes the partitions over."""
        log.error("a batch could not be written (%s): stopping the worker", type(exc).__name__)
        # Nothing this worker holds unacknowledged will be acknowledged now: its stop must not
        # wait for it, as Faust's would, for ever (an outside probe: a worker hung so, deaf to
        # SIGTERM, and outreach stopped with it). Uncommitted, it is read again by the next owner.
        release = getattr(getattr(self.app, "consumer", None), "release_unacked", None)
        if release is not None:
            release()
        await self.app.crash(exc)

    def take_in_batches(self, topic: faust.TopicT, handle: Callable[[list[Any]], None],
                        flush: Callable[[Sequence[Any]], Awaitable[None]] | None = None) -> batching.Batches:
        """Hand ``topic``'s records to ``handle`` a fetch at a time (Faust ``Message``s: raw key and
        value bytes), bypassing Faust's per-event stream; each batch is acked once its writes
        (and ``flush``) are durable (``streams.batching``)."""
        taken = batching.Batches(handle, self.pending, lambda batch: self.app.consumer.ack_all(batch), self.crash, flush)
        batching.take_in_batches(self.app, topic, taken)
        return taken

    def work_in_batches(self, topic: faust.TopicT, work: Callable[[list[Any]], Awaitable[None]], size: int = 500) -> batching.Apart:
        """Hand ``topic``'s records to ``work`` in batches of up to ``size`` on a task of its own
        (``streams.batching.Apart``: slow work that must not hold up the other topics), each
        acked once ``work`` is done with it and its writes are durable."""
        apart = batching.Apart(work, self.pending, lambda batch: self.app.consumer.ack_all(batch), self.crash, size)
        batching.take_in_batches(self.app, topic, apart)
        return apart


def count_ask(old: Any, new: Any) -> None:
    if old is None or old.status != new.status:
        metrics.child(metrics.ASKS, new.channel, new.status).inc()


def watch_lag(p: Pipeline, every: float = 5.0) -> None:
    """Publish consumer lag per topic (``turnout_consumer_lag``): the high watermark the broker
    reported in its last fetch minus this worker's position, summed over its partitions."""

    @p.app.timer(every, name="consumer_lag")
    async def consumer_lag() -> None:
        lag: dict[str, int] = {}
        for tp in p.app.consumer.assignment():
            high, position = p.app.consumer.highwater(tp), await p.app.consumer.position(tp)
            if high is not None and position is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - position)
        for topic, n in lag.items():
            metrics.CONSUMER_LAG.labels(topic).set(n)


def broker_urls(s: Settings) -> list[str]:
    scheme = "tansu" if s.broker_flavor == "tansu" else "kafka+safe"
    return [f"{scheme}://{host}" for host in s.bootstrap.split(",")]


def build(s: Settings) -> Pipeline:
    transport.register()
    datadir = Path(tempfile.gettempdir()) / "turnout-faust" / s.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = faust.App(
        s.app_id,
        broker=broker_urls(s),
        store="memory://",
        # Tables live in memory and their changelogs; Faust only wants a directory to exist.
        datadir=str(datadir),
        autodiscover=False,
        web_enabled=False,
        topic_partitions=s.partitions,
        topic_replication_factor=s.replication_factor,
        table_standby_replicas=s.standby_replicas,
        broker_session_timeout=s.session_timeout,
        broker_heartbeat_interval=s.heartbeat_interval,
        broker_rebalance_timeout=s.rebalance_timeout,
        broker_commit_interval=s.commit_interval,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.01,  # for records sent one by one; Writes hands over whole batches, closed, which do not wait
        # A batch of writes goes to the broker as one record batch per partition (streams.writes);
        # Faust's 16 kB default split a batch of 500 facts into ten, each a broker round trip.
        producer_max_batch_size=256 * 1024,
        producer_enable_idempotence=s.idempotent_producer,
        key_serializer="raw",
        value_serializer="raw",
    )
    app.flow_control = transport.FlowControl()  # fix 5; set before any agent's buffer joins it
    app.lease = transport.Lease(s.session_timeout - s.heartbeat_interval)  # fix 8

    pending = PendingWrites()
    writes = Writes(app)

    def table(spec: TableSpec, on_change: Callable[[Any, Any], None] | None = None) -> FactTable[Any]:
        # key_type=str, no value_type: Faust reads both as JSON from the changelog.
        t = app.Table(spec.name, default=None, partitions=s.partitions, key_type=str, help=spec.key)
        t.key_serializer = t.value_serializer = "lenient_json"
        t.changelog_topic = t._new_changelog_topic()  # the one made with the table reads strict JSON
        return FactTable(t, spec.model, pending, on_change, writes.changelog(t.changelog_topic.get_topic_name()))

    def topic(name: str, partitions: int = s.partitions) -> faust.TopicT:
        return app.topic(name, key_type=str, value_type=bytes, partitions=partitions, key_serializer="lenient_text")

    return Pipeline(
        app=app,
        events=topic(events_topic(s)),
        dead_letters=topic(dead_letter_topic(s), 1),
        people=table(PEOPLE),
        memberships=table(MEMBERSHIPS),
        attendance=table(ATTENDANCE),
        pledges=table(PLEDGES),
        actions=table(ACTIONS),
        targeting=topic(targeting_topic(s)),
        asks_topic=topic(asks_topic(s)),
        provider=topic(provider_topic(s)),
        asks=table(ASKS, count_ask),
        recent_asks=table(RECENT_ASKS),
        deferred=table(DEFERRED),
        erasures=table(ERASURES),
        identity=topic(identity_topic(s)),
        identities=table(IDENTITIES),
        merges=table(MERGES),
        pending=pending,
        writes=writes,
        previews=topic(previews_topic(s), 1),
    )
