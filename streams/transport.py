"""Faust transports with fixes for Faust (1, 5, 6), aiokafka (7), the embedded broker (2, 4), batches (3) and a lease on group membership (8).

1. ``kafka+safe://`` and ``tansu://``: Faust acknowledges the messages it *skips* after a
   rebalance (fetched under an older consumer generation, or delivered while flow control is
   paused). Recording those acks lets a later commit pass events that were never processed:
   reproduced as 1-5% of check-ins lost after a worker hand-over. The consumer here refuses
   such acks; the events are fetched again after the seek and processed (at-least-once).

   A refused message is still dropped from the set of messages in flight: a rebalance first
   suspends flow control and then waits for that set to empty, so a batch an agent finished
   during the wait (its acks refused) held the rebalance up for ever, and the whole group with
   it: reproduced as a fan-out that stopped for good after two workers were SIGKILLed.

   The seek is aiokafka's ``seek_to_committed``, which only moves partitions that have a
   committed offset above 0. A partition taken over before anyone committed on it (a worker
   killed in the middle of its first batch there: the asks of a big fan-out) kept the position
   the skipped messages had advanced it to, and they were never processed: reproduced as a
   third of a fan-out's asks left "planned" after two workers were SIGKILLed (``make soak``).
   ``SafeConsumerThread`` rewinds such partitions to the beginning, as
   ``consumer_auto_offset_reset="earliest"`` would have placed them (changelogs excepted:
   table recovery positions those itself).

2. ``tansu://`` only: Tansu's wrong "latest" end offsets, below.

3. ``kafka+safe://`` and ``tansu://``: topics registered with ``streams.batching`` reach their
   handler a fetch at a time instead of through Faust's per-event stream (``_drain_messages``).

4. ``tansu://`` only: a short fetch wait (``TANSU_FETCH_MAX_WAIT_MS``), because Tansu holds
   every fetch for its full max wait instead of answering when records arrive.

5. ``FlowControl`` (the app's ``flow_control``, set by ``streams.app.build``): Faust's table
   recovery resumes the streams once the active tables are read, and resumes them again after
   it has sought the stream partitions to their committed offsets, while they already flow.
   Every resume empties the agents' buffers (meant for what was fetched before a rebalance), so
   the second one dropped events fetched in between, unprocessed and never acknowledged, and
   the acknowledgements of the events after them let a commit pass them: reproduced as a
   "delivered" callback lost for good after a worker took partitions over (the short soak's
   fan-out with two kills: its tallies never settled). A resume while flowing changes nothing.

6. ``kafka+safe://`` and ``tansu://``: Faust pauses partitions it does not read (the active
   tables' changelogs once they are recovered) only in its own bookkeeping: aiokafka went on
   fetching them, 88 of a worker's 129 partitions in every fetch (8 partitions). An idle
   worker spent 2.5 % of a core decoding those answers, Tansu 15 %, and a worker's own table
   writes came back to it unread. They are paused in aiokafka too, and resumed when Faust
   reads them again (recovery after a rebalance).

7. Any broker: with the broker gone, ``AIOKafkaConsumer.stop()`` awaits the fetch task it has
   just cancelled and raises its ``CancelledError``. The worker's consumer thread then never
   said it had stopped: a worker told to stop waited a minute for it and logged the traceback
   a word per line; the web app's shutdown failed. Every consumer is stopped with
   :func:`stop_consumer`.

8. Any broker: the consumer's membership is leased (``Lease``): a worker frozen past its session
   timeout (SIGSTOP, a paused VM, a stall) resumes believing it owns its partitions until a
   heartbeat is refused, and meanwhile sent texts the partitions' new owner had sent already
   (an outside probe: 71 of 300 people texted twice after a 25 s SIGSTOP). Each heartbeat the
   coordinator answers renews the lease from when it was sent; what must only be done by the
   owner (a text handed over, a fetch handed to its batch handler) waits until the lease is held,
   or until the rebalance says the partitions are no longer this worker's. Resumed, a frozen
   worker also wrote what it had in hand over the new owner's facts (in CI: texts the tallies
   showed delivered, back to "sent" or "in doubt"): nothing is written after a lapse the
   group may have moved on in (``agents.outreach.agents.answerable``).

Tansu (the embedded dev/test broker) answers ListOffsets(latest), i.e.
``AIOKafkaConsumer.end_offsets()``, with "first offset of the LAST BATCH + 1"
instead of "last offset + 1"; the high watermark inside Fetch responses is
right.  Faust table recovery stops at the ListOffsets value, so a recovering
worker silently drops the tail of the last changelog batch.

Fix: :func:`true_end_offsets` re-reads each partition from ``reported - 1``
with a throw-away, group-less consumer and takes the fetch high watermark.
:func:`register` maps ``tansu://host:port`` to a Faust transport using it::

    from streams import transport
    transport.register()
    app = faust.App("id", broker="tansu://127.0.0.1:9092")
"""

from __future__ import annotations

import asyncio
from time import monotonic
from typing import AbstractSet, Any, AsyncIterator, Callable, Collection, List, Mapping, Optional, Protocol, Set, Union, cast

import aiokafka
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faust.transport.drivers import TRANSPORTS
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from mode.utils.queues import FlowControlEvent

from . import batching

#: Tansu answers a fetch only when its max wait is over, even when records arrive sooner (Kafka
#: answers at once). Faust's 1,500 ms made every event wait ~0.4 s on average in the worker
#: (make bench: dashboard freshness, changelog p50 399 ms → 43 ms at 100 ms).
TANSU_FETCH_MAX_WAIT_MS = 100

__all__ = ["FlowControl", "stop_consumer", "true_end_offsets", "skipped", "uncommitted", "seek_to_committed_or_beginning", "fetch_only", "SafeConsumerThread", "SafeTransport", "Transport", "Consumer", "ConsumerThread", "register", "TANSU_FETCH_MAX_WAIT_MS"]


async def stop_consumer(consumer: aiokafka.AIOKafkaConsumer) -> None:
    """``consumer.stop()``, also once the broker is gone (fix 7): the cancelled fetch is not an
    error, and the consumer's connections are closed all the same."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        if (task := asyncio.current_task()) is not None and task.cancelling():
            raise  # this stop itself was cancelled
        await consumer._client.close()
    except KafkaError:
        await consumer._client.close()


async def true_end_offsets(
    bootstrap_servers: Union[str, List[str]],
    reported: Mapping[TopicPartition, int],
    *,
    timeout: float = 10.0,
) -> dict[TopicPartition, int]:
    """Return corrected end offsets (``last offset + 1``) for ``reported``.

    ``bootstrap_servers`` is anything aiokafka accepts ("host:port" or a list).
    Partitions reported empty (<= 0) are returned unchanged.  A partition whose
    fetch does not answer within ``timeout`` seconds keeps its reported value;
    results are never lower than reported.
    """
    result = {TopicPartition(tp.topic, tp.partition): off for tp, off in reported.items()}
    pending = {tp for tp, off in result.items() if off is not None and off > 0}
    if not pending:
        return result
    consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        # Falling back to ListOffsets would be wrong again; max() keeps reported.
        auto_offset_reset="latest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        consumer.assign(list(pending))
        for tp in pending:
            # reported - 1 is the first offset of the last batch: one fetch
            # returns that whole batch plus the real high watermark.
            consumer.seek(tp, result[tp] - 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while pending and (remaining := deadline - loop.time()) > 0:
            batches = await consumer.getmany(
                *pending, timeout_ms=int(min(remaining, 1.0) * 1000)
            )
            for tp in list(pending):
                records = batches.get(tp)
                if records:
                    result[tp] = max(result[tp], records[-1].offset + 1)
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    result[tp] = max(result[tp], highwater)
                    pending.discard(tp)
    finally:
        await stop_consumer(consumer)
    return result


class FlowControl(FlowControlEvent):
    """Faust's flow control of the agents' buffers, except that resuming flow that was not
    suspended keeps what the buffers hold (fix 5)."""

    def resume(self) -> None:
        if not self.is_active():
            super().resume()


def skipped(generation: int | None, current: int, flowing: bool) -> bool:
    """Whether Faust delivered a message (fetched under consumer ``generation``) only to skip
    it: fetched before the latest rebalance, or while flow control is suspended for one."""
    return generation != current or not flowing


def uncommitted(committed: Mapping[TopicPartition, int | None], changelogs: Collection[str]) -> list[TopicPartition]:
    """The partitions aiokafka's ``seek_to_committed`` left where they were (no committed offset
    above 0), changelogs excepted: table recovery positions those itself."""
    return [tp for tp, offset in committed.items() if not offset and tp.topic not in changelogs]


class Seeker(Protocol):
    """What aiokafka's consumer and Faust's consumer thread both offer."""

    async def seek_to_committed(self) -> Mapping[TopicPartition, int | None]: ...

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None: ...


async def seek_to_committed_or_beginning(consumer: Seeker, changelogs: Collection[str]) -> Mapping[TopicPartition, int | None]:
    """Seek every assigned partition to its committed offset, and those with none (but
    ``changelogs``) to the beginning; return the committed offsets."""
    committed = await consumer.seek_to_committed()
    if rewind := uncommitted(committed, changelogs):
        await consumer.seek_to_beginning(*rewind)  # never with no argument: that is every partition
    return committed


def fetch_only(assigned: AbstractSet[TopicPartition], paused: AbstractSet[TopicPartition],
               active: Collection[TP]) -> tuple[set[TopicPartition], set[TopicPartition]]:
    """What to pause and what to resume in aiokafka so that it fetches only the partitions
    Faust reads (``active``) of those assigned (fix 6)."""
    wanted = {tp for tp in assigned if tp not in active}
    return wanted - paused, (paused & assigned) - wanted


#: How often a worker whose lease lapsed looks again.
LEASE_POLL = 0.05


class Lease:
    """How long ago the group coordinator last took this worker's heartbeat (fix 8): ``held()``
    while that is under ``limit`` (the session timeout less a heartbeat interval), so the group
    cannot have moved the worker's partitions on meanwhile. Renewed from the consumer's thread,
    read from the worker's loop (a float, replaced whole)."""

    def __init__(self, limit: float, renewed_at: float = float("-inf")) -> None:
        self.limit, self.renewed_at = limit, renewed_at

    def renew(self, at: float) -> None:
        self.renewed_at = max(self.renewed_at, at)

    def held(self) -> bool:
        return monotonic() - self.renewed_at < self.limit

    async def wait(self, still: Callable[[], bool]) -> None:
        """Return once the lease is held, or as soon as ``still()`` says it no longer matters
        (the partitions were taken away: their rebalance reached this worker)."""
        while still() and not self.held():
            await asyncio.sleep(LEASE_POLL)


def renew_on_heartbeat(coordinator: Any, lease: Lease) -> None:
    """Renew ``lease`` at each heartbeat the coordinator answers, from when it was sent (the
    broker counts the session from when it got it, no earlier)."""
    beat = coordinator._do_heartbeat

    async def heartbeat() -> bool:
        sent = monotonic()
        ok = await beat()
        if ok:
            lease.renew(sent)
        return ok

    coordinator._do_heartbeat = heartbeat


class SafeConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Consumer thread whose seek to committed offsets also rewinds partitions that have none,
    whose consumer fetches only what Faust reads (fix 6), and whose heartbeats renew the app's
    ``lease`` (fix 8)."""

    async def on_start(self) -> None:
        await super().on_start()  # makes and starts the aiokafka consumer, its group coordinator with it
        lease, coordinator = getattr(self.app, "lease", None), getattr(self._consumer, "_coordinator", None)
        if lease is not None and coordinator is not None and hasattr(coordinator, "_do_heartbeat"):
            renew_on_heartbeat(coordinator, lease)
        elif lease is not None:  # an aiokafka without the hook: held for good, as before fix 8, not never
            self.log.warning("this aiokafka's heartbeats cannot be watched: a worker frozen past its session is not fenced")
            lease.renew(float("inf"))

    async def on_thread_stop(self) -> None:
        # Faust's, with the consumer stopped by ``stop_consumer`` (fix 7).
        await super(faust_aiokafka.AIOKafkaConsumerThread, self).on_thread_stop()
        if self._consumer is not None:
            await stop_consumer(self._consumer)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        # super(): Faust's own seeks, run on the consumer's thread.
        return await seek_to_committed_or_beginning(super(), self.app.tables.changelog_topics)

    async def _fetch_records(self, consumer: aiokafka.AIOKafkaConsumer, active_partitions: Set[TP],
                             timeout: Optional[float] = None, max_records: Optional[int] = None) -> Any:
        if active_partitions is not None:
            pause, resume = fetch_only(consumer.assignment(), consumer.paused(), active_partitions)
            consumer.pause(*pause)
            consumer.resume(*resume)
        return await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)


class ConsumerThread(SafeConsumerThread):
    """Consumer thread whose end offsets (used by table recovery) are true."""

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = TANSU_FETCH_MAX_WAIT_MS  # Faust hard-codes 1500 ms
        return consumer

    async def _highwaters(self, partitions: List[TP]) -> Mapping[TP, int]:
        reported = await super()._highwaters(partitions)
        if self.consumer.in_transaction:  # last_stable_offset comes from Fetch
            return reported
        transport = cast(faust_aiokafka.Transport, self.transport)
        servers = faust_aiokafka.server_list(transport.url, transport.default_port)
        fixed = await true_end_offsets(
            servers, reported, timeout=self.app.conf.broker_request_timeout
        )
        return {TP(tp.topic, tp.partition): off for tp, off in fixed.items()}


class SafeConsumer(faust_aiokafka.Consumer):
    """Refuses acks of messages Faust skipped, and has them read again (fix 1 in the module docstring)."""

    def ack(self, message: Message) -> bool:
        if skipped(message.generation_id, self.app.consumer_generation_id, self.app.flow_control.is_active()):
            # Not committed, but no longer waited for: a rebalance suspends flow control and
            # then waits for every message in flight to be acked (stream_wait_empty), so a
            # batch an agent finished meanwhile would hold the rebalance up for ever.
            self._unacked_messages.discard(message)
            return False
        return super().ack(message)

    def _new_consumer_thread(self) -> SafeConsumerThread:
        return SafeConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def release_unacked(self) -> None:
        """Wait for none of the messages in flight when the worker stops (it is crashing: they
        will never be acknowledged). They stay uncommitted, and are read again."""
        self._unacked_messages.clear()

    def ack_all(self, messages: list[Message]) -> None:
        """``ack`` each of ``messages`` (a batch of ``streams.batching``), refusing the skipped ones alike."""
        generation, flowing, ack = self.app.consumer_generation_id, self.app.flow_control.is_active(), super().ack
        for message in messages:
            if skipped(message.generation_id, generation, flowing):
                self._unacked_messages.discard(message)
            else:
                ack(message)

    async def _drain_messages(self, fetcher: object) -> None:  # pragma: no cover - runs in a worker
        """Faust's fetch loop (``faust.transport.consumer.Consumer._drain_messages``, the same
        offset and gap bookkeeping), except that records of a topic with a batch handler
        (``streams.batching``) are collected and handed to it once per fetch."""
        handlers = batching.handlers(self.app)
        if not handlers:
            return await super()._drain_messages(fetcher)
        callback, getmany = self.callback, self.getmany
        get_read_offset, set_read_offset = self._read_offset.__getitem__, self._read_offset.__setitem__
        acks_enabled_for = self.app.topics.acks_enabled_for
        stopped = lambda: self._stopped.is_set() or fetcher._stopped.is_set()  # type: ignore[attr-defined]  # noqa: E731
        try:
            while not stopped():
                self.diag.set_flag(faust_consumer.CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                collected: dict[str, list[Message]] = {}
                if not self.should_stop:
                    async for tp, message in ait:
                        offset, r_offset = message.offset, get_read_offset(tp)
                        if r_offset is not None and offset < r_offset:
                            continue  # Faust drops these too (already read)
                        if offset - (r_offset or 0) > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if self._commit_every is not None and self._n_acked >= self._commit_every:
                            self._n_acked = 0
                            await self.commit()
                        if message.topic in handlers:
                            collected.setdefault(message.topic, []).append(message)
                        else:
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                    self.diag.unset_flag(faust_consumer.CONSUMER_FETCHING)
                for topic, messages in collected.items():
                    await self._hand_batch(handlers[topic], messages)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(faust_consumer.CONSUMER_FETCHING)

    async def _hand_batch(self, handler: batching.Handler, messages: list[Message]) -> None:
        # A worker resumed from a freeze (fix 8) handles nothing it fetched before until a
        # heartbeat says the partitions are still its own, or the rebalance says they are not.
        generation = self.app.consumer_generation_id
        await self.app.lease.wait(lambda: generation == self.app.consumer_generation_id and self.app.flow_control.is_active() and not self.app.should_stop)
        batch = batching.taken(messages, self.app.consumer_generation_id, self.app.flow_control.is_active())
        unacked = self._unacked_messages
        for message in batch:  # as Faust's stream does when it takes a message (without its sensors' counts)
            message.tracked = True
            unacked.add(message)
        if batch:
            # Faust's live-lock check reads a partition's stream inbound time; no Faust stream
            # sees these records, so without it every busy batch partition logged "Stream has
            # not started processing" as an error once the worker was five minutes old.
            now, inbound = monotonic(), self.app.monitor.stream_inbound_time
            for tp in {message.tp for message in batch}:
                inbound[tp] = now
            await handler(batch)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # pragma: no cover - runs in a worker
        """Faust's ``Consumer.getmany``, except that the end offset it reports to the monitor is
        looked up once per partition and fetch, not once per record (a lock and two look-ups
        each: 5% of the worker's CPU)."""
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            try:
                await self.perform_seek()
            except Exception as ex:  # noqa: BLE001 - as Faust does
                self.log.warning(f"exception performing seek when flow not active {ex}")
            return
        to_message, reported = self._to_message, set()
        for tp, record in self.scheduler.iterate(records):
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                break
            if active_partitions is None or tp in active_partitions or tp in self._buffered_partitions:
                if tp not in reported:
                    reported.add(tp)
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                yield tp, to_message(tp, record)


class Consumer(SafeConsumer):
    """The safe consumer, running :class:`ConsumerThread` (true end offsets)."""

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class SafeTransport(faust_aiokafka.Transport):
    """For Apache Kafka: ``kafka+safe://host:port``."""

    Consumer = SafeConsumer


class Transport(faust_aiokafka.Transport):
    """For the embedded broker: ``tansu://host:port``."""

    Consumer = Consumer


def register() -> None:
    """Make ``kafka+safe://`` and ``tansu://`` broker URLs use these transports; idempotent."""
    TRANSPORTS.aliases["kafka+safe"] = f"{__name__}:SafeTransport"
    TRANSPORTS.aliases["tansu"] = f"{__name__}:Transport"
