"""Writes to Kafka in the order they are made, handed straight to the app's producer.

Agents write table facts (changelogs) and topic records from synchronous code, so a write is
queued and produced later; ``Writes.send`` returns a future that resolves once the broker has
the record. Faust's own ``send_soon`` does the same through its producer buffer, at a cost that
dominated a fan-out: per record a ``FutureMessage``, a queue hop, a task switch and sensor
calls; and while that buffer holds more than 100 records Faust's conductor stops delivering
messages to every agent until it drains (``ProducerBuffer.wait_until_ebb``), one record per
wake-up. Here one task hands the whole queue to the producer per wake-up, in order.

Order: every record goes through one FIFO into aiokafka, which keeps the order of records per
partition; so two writes of one key reach its changelog in the order they were made, as with
Faust's buffer. Bytes: changelog keys are encoded exactly as Faust encodes them (its ``json``
codec), values as the same JSON document (pydantic writes it), topic keys as raw UTF-8, so
Faust's table recovery, standbys and every reader decode them unchanged. What Faust's changelog
callback adds, a persisted offset per partition, is for RocksDB stores; these tables live in
memory (``store="memory://"``), where it does nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from typing import Any, Callable

import faust
import pydantic_core

#: As Faust's JSON codec writes them (``faust.utils.json.dumps`` without orjson).
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def changelog_key(key: str) -> bytes:
    """A table key as Faust writes it in the changelog (its ``json`` codec)."""
    return _dumps(key).encode()


class Writes:
    """One ordered queue of records into ``app.producer``.

    When the producer takes record batches (aiokafka under Faust's producer), the records
    written to one partition between two hand-overs of the queue share one future (a *slot*):
    it resolves once every record written with it is acknowledged (it counts them), and fails
    with the first of them that fails. One future per partition and hand-over instead of one
    per record: a batch of facts is one to a few futures for its writer to wait for.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._queue: deque[tuple[str, bytes | None, bytes | None, int | None, asyncio.Future]] = deque()
        self._drain: asyncio.Task | None = None
        self._known: set[str] = set()  # topics whose partitions the producer knows
        self._batched: bool | None = None  # whether the producer takes record batches (known at the first write)
        self._slots: dict[tuple[str, int], asyncio.Future] = {}  # the open slot of each partition
        self._unacked: dict[asyncio.Future, int] = {}  # records written with each slot and not yet acknowledged

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None) -> asyncio.Future:
        """Queue a record; the future resolves once the broker has it (with its metadata, when
        it has a future of its own)."""
        if self._batched is None:
            self._batched = _batching(self.app.producer) is not None
        if self._batched and partition is not None:
            fut = self._slots.get((topic, partition))
            if fut is None:
                fut = self._slots[topic, partition] = asyncio.get_running_loop().create_future()
                self._unacked[fut] = 0
            self._unacked[fut] += 1
        else:
            fut = asyncio.get_running_loop().create_future()
        self._queue.append((topic, key, value, partition, fut))
        if self._drain is None:
            self._drain = asyncio.ensure_future(self._hand_over())
        return fut

    def _acked(self, futs: list[asyncio.Future], done: asyncio.Future) -> None:
        """``done`` (a batch, or one record) settled the records written with ``futs``."""
        failed = done.cancelled() or done.exception() is not None
        for fut, n in Counter(futs).items():
            left = self._unacked.get(fut)
            if left is not None:  # a slot: resolved when its last record is acknowledged (or one fails)
                if left > n and not failed:
                    self._unacked[fut] = left - n
                    continue
                del self._unacked[fut]
                self._close(fut)
            _resolve(fut, done)

    def _close(self, fut: asyncio.Future) -> None:
        for tp, open_ in list(self._slots.items()):
            if open_ is fut:
                del self._slots[tp]

    def changelog(self, topic: str) -> Callable[[int, str, Any], asyncio.Future]:
        """What ``FactTable`` writes a table's changelog with: (partition, key, the value as the
        table stores it or ``None`` to delete)."""
        def send(partition: int, key: str, value: Any) -> asyncio.Future:
            # pydantic-core's JSON encoder: the same document as Faust's codec writes, in a
            # quarter of the time (and cheaper than dumping the model a second time).
            data = None if value is None else pydantic_core.to_json(value)
            return self.send(topic, changelog_key(key), data, partition)
        return send

    async def _hand_over(self) -> None:
        producer, queue = self.app.producer, self._queue
        kafka = _batching(producer)
        try:
            while queue:
                if kafka is not None:
                    await self._in_batches(kafka, producer, queue)
                    continue
                await self._one(producer, *queue.popleft())
        finally:
            self._drain = None

    async def _one(self, producer: Any, topic: str, key: bytes | None, value: bytes | None, partition: int | None,
                   fut: asyncio.Future) -> None:
        try:
            acked = await producer.send(topic, key, value, partition, None, None)
        except Exception as exc:  # the writer of this record awaits it (settle)
            self._acked([fut], _failed(exc))
            return
        acked.add_done_callback(lambda done, fut=fut: self._acked([fut], done))

    async def _in_batches(self, kafka: Any, producer: Any, queue: deque) -> None:
        """Everything queued now, as one record batch per partition (aiokafka's ``create_batch``
        and ``send_batch``: no per-record future, partitioner or accumulator call): a batch of
        events' facts is a few broker requests. A record for no partition in particular goes to
        the one its key hashes to (the producer's own partitioner, as ``send`` would), so each
        partition gets its records in the order they were written."""
        self._slots = {}  # what is written from now on waits for the next hand-over
        open_: dict[tuple[str, int], tuple[Any, list[asyncio.Future]]] = {}
        while queue:
            topic, key, value, partition, fut = queue.popleft()
            if partition is None:
                partition = await self._partition_of(kafka, producer, topic, key)
            batch = open_.get((topic, partition))
            if batch is None:
                batch = open_[topic, partition] = (kafka.create_batch(), [])
            if batch[0].append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                await self._send_batches(kafka, {(topic, partition): open_.pop((topic, partition))})
                batch = open_[topic, partition] = (kafka.create_batch(), [])
                if batch[0].append(key=key, value=value, timestamp=None) is None:  # too big for any batch
                    open_.pop((topic, partition))
                    await self._one(producer, topic, key, value, partition, fut)
                    continue
            batch[1].append(fut)
        await self._send_batches(kafka, open_)

    async def _send_batches(self, kafka: Any, batches: dict[tuple[str, int], tuple[Any, list[asyncio.Future]]]) -> None:
        for (topic, partition), (batch, futs) in batches.items():
            batch.close()  # whole: sent at once, not after the producer's linger (an open batch waits it out)
            try:
                acked = await kafka.send_batch(batch, topic, partition=partition)
            except Exception as exc:  # their writers await them (settle)
                self._acked(futs, _failed(exc))
                continue
            acked.add_done_callback(lambda done, futs=futs: self._acked(futs, done))
        batches.clear()

    async def _partition_of(self, kafka: Any, producer: Any, topic: str, key: bytes | None) -> int:
        if topic not in self._known:
            await kafka.client._wait_on_metadata(topic)  # what ``send`` and ``send_batch`` wait for too
            self._known.add(topic)
        return producer.key_partition(topic, key).partition


def _failed(exc: BaseException) -> asyncio.Future:
    fut = asyncio.get_running_loop().create_future()
    fut.set_exception(exc)
    return fut


def _batching(producer: Any) -> Any:
    """The aiokafka producer under Faust's, when there is one (a test's fake producer has none)."""
    ensure = getattr(producer, "_ensure_producer", None)
    return None if ensure is None else ensure()


def _resolve(fut: asyncio.Future, done: asyncio.Future) -> None:
    if fut.done():
        return
    if done.cancelled():
        fut.cancel()
    elif (exc := done.exception()) is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(done.result())
