"""Derives tallies by reading the compacted fact topics from the beginning, then live.

A group-less aiokafka consumer assigned every partition of every fact topic: each web app
instance builds its own complete view (``contracts.tallies.TallyBook``).
"""

from __future__ import annotations

import asyncio
import time
import logging
from typing import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError
from pydantic_core import from_json

from contracts.tallies import FactKind, TallyBook
from streams.metrics import TALLY_RECORDS
from streams.settings import Settings
from streams.topology import FACT_TABLES, changelog_topic
from streams.transport import stop_consumer, true_end_offsets

from .replay import replay_consumer

log = logging.getLogger(__name__)


class Changes:
    """Wakes everyone waiting for the tallies or the accounts to change (the dashboard's event
    streams), each on its own event loop, whichever thread calls ``notify``. ``count`` goes up
    at every change: a waiter that read it before looking at what changes does not sleep
    through a change made in between (``wait``)."""

    def __init__(self) -> None:
        self.count = 0
        self._waiting: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}

    def notify(self) -> None:
        self.count += 1
        waiting, self._waiting = self._waiting, {}
        for future, loop in list(waiting.items()):
            loop.call_soon_threadsafe(_wake, future)

    async def wait(self, timeout: float, since: int) -> bool:
        """Whether a change came since ``count`` was ``since``, waiting up to ``timeout`` seconds for one."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting[future] = loop
        try:
            if self.count != since:
                return True
            await asyncio.wait_for(future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting.pop(future, None)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class TallyReader:
    def __init__(self, s: Settings, book: TallyBook, changes: Changes | None = None) -> None:
        self.book = book
        self.changes = changes or Changes()
        self.kinds: dict[str, FactKind] = {changelog_topic(s, spec): kind for kind, spec in FACT_TABLES.items()}
        self.skipped = 0
        self._next: dict[TopicPartition, int] = {}
        self._settings = s
        self._bootstrap = s.bootstrap.split(",")
        self._tansu = s.broker_flavor == "tansu"  # its ListOffsets answer is wrong: see streams.transport
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        self._said_back = False  # logged that a fact topic went back (``_went_back``), once
        #: When the broker last answered a fetch of a fact topic (seconds since the epoch).
        self.last_read = time.time()

    async def start(self) -> None:
        await self._open()
        self._task = asyncio.create_task(self._run(), name="tally-reader")

    async def read_to_end(self, progress: Callable[[int, int], None]) -> None:
        """Read every fact topic up to where it ends now, then stop (one-off exports).
        ``progress(done, total)`` counts offsets."""
        try:
            tps = await self._open()
        except BaseException:
            if self._consumer is not None:
                await stop_consumer(self._consumer)  # a broker that is not there: no "Unclosed AIOKafkaConsumer"
            raise
        try:
            starts = await self._consumer.beginning_offsets(tps)
            ends = await self._consumer.end_offsets(tps)
            if self._tansu:
                ends = await true_end_offsets(self._bootstrap, ends)
            total = sum(ends[tp] - starts[tp] for tp in tps)
            remaining = {tp for tp in tps if ends[tp] > starts[tp]}
            progress(0, total)
            while remaining:
                for tp, messages in (await self._consumer.getmany(*remaining, timeout_ms=500, max_records=5000)).items():
                    self._take(tp, messages)
                    if self._next[tp] >= ends[tp]:
                        remaining.discard(tp)
                progress(sum(min(self._next.get(tp, starts[tp]), ends[tp]) - starts[tp] for tp in tps), total)
        finally:
            await stop_consumer(self._consumer)

    async def _open(self) -> list[TopicPartition]:
        # aiokafka clients must be created inside the running loop.
        self._consumer = replay_consumer(self._settings)
        await self._consumer.start()
        tps = []
        for topic in self.kinds:
            partitions = await self._partitions(topic)
            tps += [TopicPartition(topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        return tps

    async def _partitions(self, topic: str) -> set[int]:
        # The topics are provisioned before the web app starts; metadata may lag a moment.
        for _ in range(100):
            if topic in await self._consumer.topics():  # refreshes metadata
                partitions = self._consumer.partitions_for_topic(topic)
                if partitions:
                    return partitions
            await asyncio.sleep(0.1)
        raise RuntimeError(f"fact topic {topic} does not exist: run `turnout topics ensure`")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await stop_consumer(self._consumer)

    def lag(self) -> int | None:
        """Records known to exist but not yet read (from fetch high watermarks)."""
        if self._consumer is None:
            return None
        total = 0
        for tp in self._consumer.assignment():
            hw = self._consumer.highwater(tp)
            if hw is None:
                return None
            total += max(0, hw - self._next.get(tp, 0))
        return total

    async def _run(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, messages in batches.items():
                    self._take(tp, messages)
            except Exception as exc:  # noqa: BLE001 - read again from where it got to, and say so
                self.failures += 1
                log.error("the tally reader failed (%s); reading on in 1 s", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            self.last_read = max(self.last_read, self._heard())
            if batches:
                self.changes.notify()
            if not self._said_back and (back := self._went_back()) is not None:
                self._said_back = True
                log.error("the tallies are frozen: %s", back)

    def _heard(self) -> float:
        """When the broker last answered a fetch, by the consumer's own record of its fetch
        responses: ``getmany`` returns (empty) every 200 ms whether the broker answers or not."""
        assert self._consumer is not None
        stamps = [t for tp in self._consumer.assignment() if (t := self._consumer.last_poll_timestamp(tp))]
        return max(stamps) / 1000 if stamps else 0.0

    def problem(self, stuck_after: float = 30.0) -> str | None:
        """Why the tallies may be frozen, or ``None``: the reader stopped, or the broker has not
        answered its fetches for ``stuck_after`` seconds (``/healthz`` answers 503 then)."""
        if self._task is not None and self._task.done():
            return "the tally reader stopped"
        if (back := self._went_back()) is not None:
            return back
        if (silent := time.time() - self.last_read) > stuck_after:
            return f"the tally reader has not heard from the broker for {silent:.0f} s"
        return None

    def _went_back(self) -> str | None:
        """A fact topic that now ends before where this reader got to: the broker lost its data (a
        memory-only broker restarted) or the topic was made anew. Nothing read since counts here,
        and the lag reads 0: only a restart of the web app reads the topics again."""
        if self._consumer is None:
            return None
        for tp in self._consumer.assignment():
            if (end := self._consumer.highwater(tp)) is not None and end < self._next.get(tp, 0):
                return (f"fact topic {tp.topic} ends at offset {end} of partition {tp.partition}, where this web app had read to "
                        f"{self._next[tp]}: the broker lost its data or the topic was made anew; restart the web app to read it again")
        return None

    def _take(self, tp: TopicPartition, messages: list[ConsumerRecord]) -> None:
        kind = self.kinds[tp.topic]
        for m in messages:
            self._apply(kind, m.key, m.value)
        self._next[tp] = messages[-1].offset + 1

    def _apply(self, kind: FactKind, key: bytes | None, value: bytes | None) -> None:
        try:
            k = from_json(key) if key is not None else None
            fact = None if value is None else FACT_TABLES[kind].model.model_validate_json(value)
        except (ValueError, ValidationError):
            self.skipped += 1
            log.warning("skipped an unreadable %s fact", kind)
            return
        if isinstance(k, str):
            self.book.apply(kind, k, fact)
            TALLY_RECORDS.inc()
