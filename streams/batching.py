"""Hot topics taken from Faust's consumer a fetch at a time instead of an event at a time.

Faust hands every record to its agents one by one: per record its fetch loop starts two tasks
to wait for "delivered or flow suspended" (``Service.wait_first``), the conductor decodes it into
an ``Event`` and queues it, and the agent's ``Stream`` takes it off the queue, runs sensors and
context variables, and acks it. At about 60 µs of CPU per record that was half of the worker's
cost (``make bench``: README "The hot path"). A topic registered here skips that: the consumer
hands the records of one fetch to the topic's handler as a list (``BatchingConsumer``), and the
handler acks them through the consumer once what they wrote is durable (``Batches``).

What stays Faust's: the consumer group, partition assignment and rebalancing, offsets and their
commits (only acked offsets, contiguous per partition), flow control, tables with their
changelogs, recovery and standbys. The consumer subscribes to the topic because it is
registered with the conductor like any agent's.

Guarantees: a record is acked only after every write its batch
made (and the ``flush`` after it) is acknowledged by the broker, so a commit can never pass a
fact that might be lost; a batch whose writes fail stops the worker and is never acked. Records
fetched before a rebalance (an older consumer generation) or while flow control is suspended are
not handled (``taken``): the consumer seeks back and they are fetched again.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from typing import Any, Awaitable, Callable, Iterable, Protocol, Sequence

#: The records of one fetch for a topic, in order per partition.
Handler = Callable[[list[Any]], Awaitable[None]]


def taken(messages: Iterable[Any], generation: int, flowing: bool) -> list[Any]:
    """The records a batch handles: those fetched under the current consumer ``generation``,
    none while flow control is suspended (a rebalance is under way)."""
    if not flowing:
        return []
    return [m for m in messages if m.generation_id == generation]


def key_text(key: bytes | None) -> str | None:
    """A record's key as agents read keys (``streams.app.LenientText``: what is not UTF-8 kept as escapes)."""
    return None if key is None else key.decode("utf-8", "backslashreplace")


def handlers(app: Any) -> dict[str, Handler]:
    """The batch handlers registered on ``app``, by topic name (made on first use)."""
    try:
        return app.turnout_batch_handlers
    except AttributeError:
        app.turnout_batch_handlers = {}
        return app.turnout_batch_handlers


def take_in_batches(app: Any, topic: Any, handler: Handler) -> None:
    """Have ``app``'s consumer subscribe to ``topic`` and hand its records to ``handler`` a fetch at a time."""
    for name in topic.topics:
        handlers(app)[name] = handler
    app.topics.add(topic)


class Pending(Protocol):
    def own(self) -> list[Awaitable[Any]]: ...


class Acks:
    """Acking a batch once every write it made is acknowledged, and stopping the worker (never
    acking) when one fails: what both batch handlers below share."""

    def __init__(self, ack: Callable[[list[Any]], object], crash: Callable[[BaseException], Awaitable[None]]) -> None:
        self.ack, self.crash = ack, crash
        self.failed: BaseException | None = None

    async def _ack_when_durable(self, batch: list[Any], written: list[Awaitable[Any]]) -> None:
        try:
            await asyncio.gather(*written)
        except Exception as exc:  # noqa: BLE001 - any failed write: the batch is read again by whoever takes over
            await self._fail(exc)
            return
        self.ack(batch)

    async def _fail(self, exc: BaseException) -> None:
        if self.failed is None:
            self.failed = exc
            await self.crash(exc)


class Batches(Acks):
    """One topic's batch handler: decide and write synchronously (``handle``), run ``flush``,
    then ack the batch once every write it made is acknowledged, without holding up the next
    batch: up to ``max_in_flight`` records may wait for their writes at a time (Faust's own
    ``stream_buffer_maxsize``), beyond that the next batch waits for the oldest.

    Ports: ``pending`` (the writes made so far, ``PendingWrites``), ``ack`` (acks a batch: the consumer's ``ack_all``),
    ``crash`` (stops the worker). Calls are serialised by the consumer's fetch loop.
    """

    def __init__(self, handle: Callable[[Sequence[Any]], None], pending: Pending, ack: Callable[[list[Any]], object],
                 crash: Callable[[BaseException], Awaitable[None]], flush: Callable[[Sequence[Any]], Awaitable[None]] | None = None,
                 size: int = 1000, max_in_flight: int = 4096) -> None:
        super().__init__(ack, crash)
        self.handle, self.pending, self.flush = handle, pending, flush
        self.size, self.max_in_flight = size, max_in_flight
        self.in_flight: deque[tuple[int, asyncio.Task]] = deque()

    async def __call__(self, messages: list[Any]) -> None:
        for start in range(0, len(messages), self.size):
            await self._one(messages[start:start + self.size])
            await asyncio.sleep(0)  # the producer's sender, acks and timers get their turn between batches

    async def _one(self, batch: list[Any]) -> None:
        if self.failed is not None:
            return  # the worker is stopping: nothing more is handled, nothing acked
        await self._room(len(batch))
        mine = self.pending.own()
        try:
            self.handle(batch)
            if self.flush is not None:
                await self.flush(batch)
        except Exception as exc:  # noqa: BLE001 - a batch that cannot be handled is never acked
            await self._fail(exc)
            return
        written, mine[:] = list(mine), []
        self.in_flight.append((len(batch), asyncio.ensure_future(self._ack_when_durable(batch, written))))

    async def _room(self, n: int) -> None:
        while self.in_flight and self.in_flight[0][1].done():
            self.in_flight.popleft()
        while self.in_flight and sum(k for k, _ in self.in_flight) + n > self.max_in_flight:
            _, oldest = self.in_flight.popleft()
            await oldest

    async def drain(self) -> None:
        """Wait until every batch handed over so far is acked (or failed)."""
        while self.in_flight:
            await self.in_flight.popleft()[1]


class Apart(Acks):
    """One topic's batch handler for slow work (handing asks to the providers): the records of
    each fetch, in batches of ``size``, wait in a queue of ``depth`` batches for a task of their
    own, so that the fetch loop goes on reading the other topics meanwhile (when the queue is
    full it waits, as it waits for a full Faust stream buffer). Batches are worked one at a
    time, in order; each is acked once ``work`` is done with it and every write it made is
    acknowledged, without holding up the next one. ``work`` that raises, or a write that fails,
    stops the worker: that batch is never acked, and no batch is worked after it.

    ``work`` runs in a fresh context, so its writes are its own (``PendingWrites``), never the
    fetch loop's batches'. ``stop()`` cancels it (the worker is stopping)."""

    def __init__(self, work: Callable[[list[Any]], Awaitable[None]], pending: Pending, ack: Callable[[list[Any]], object],
                 crash: Callable[[BaseException], Awaitable[None]], size: int = 500, depth: int = 4) -> None:
        super().__init__(ack, crash)
        self.work, self.pending, self.size = work, pending, size
        self.queue: asyncio.Queue[list[Any]] = asyncio.Queue(depth)
        self.task: asyncio.Task | None = None
        self.acking: set[asyncio.Task] = set()

    async def __call__(self, messages: list[Any]) -> None:
        if self.failed is not None:
            return  # the worker is stopping: nothing more is worked, nothing acked
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), context=contextvars.Context())
        for start in range(0, len(messages), self.size):
            await self.queue.put(messages[start:start + self.size])

    async def _run(self) -> None:
        mine = self.pending.own()
        while self.failed is None:
            batch = await self.queue.get()
            try:
                await self.work(batch)
            except Exception as exc:  # noqa: BLE001 - a batch that cannot be worked is never acked
                await self._fail(exc)
                return
            written, mine[:] = list(mine), []
            acking = asyncio.ensure_future(self._ack_when_durable(batch, written))
            self.acking.add(acking)
            acking.add_done_callback(self.acking.discard)

    async def stop(self) -> None:
        tasks = [t for t in (self.task, *self.acking) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
