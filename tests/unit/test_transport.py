"""The safe consumer's decisions (streams/transport.py, fix 1): which acks it refuses and which
partitions it rewinds, without a broker; and the flow control that keeps the agents' buffers (fix 5). tests/integration/test_transport.py runs them for real."""

import asyncio
from time import monotonic
from types import SimpleNamespace
from typing import Any, Callable

from aiokafka import TopicPartition
from mode.utils.queues import FlowControlQueue

from streams.app import Pipeline, build
from streams.settings import Settings
from streams.transport import FlowControl, SafeConsumer, fetch_only, skipped, uncommitted

EVENTS, ASKS, CHANGELOG = "t.events", "t.asks", "t-people_by_key-changelog"


def test_partitions_nobody_committed_on_are_read_again_from_the_beginning():
    """Messages Faust fetched and skipped during a rebalance advance the position; with no
    committed offset, aiokafka's seek leaves it there and they would never be processed."""
    committed = {TopicPartition(EVENTS, 0): 120, TopicPartition(EVENTS, 1): None, TopicPartition(ASKS, 2): None,
                 TopicPartition(ASKS, 3): 0, TopicPartition(CHANGELOG, 1): None}
    assert sorted(uncommitted(committed, {CHANGELOG})) == [TopicPartition(ASKS, 2), TopicPartition(ASKS, 3), TopicPartition(EVENTS, 1)]


def test_nothing_is_rewound_when_every_partition_has_a_committed_offset():
    assert uncommitted({TopicPartition(EVENTS, 0): 5, TopicPartition(ASKS, 0): 9}, {CHANGELOG}) == []


def test_only_messages_of_the_current_generation_delivered_while_flowing_are_acked():
    assert not skipped(3, 3, flowing=True)
    assert skipped(2, 3, flowing=True)  # fetched before the latest rebalance
    assert skipped(3, 3, flowing=False)  # delivered while a rebalance holds the streams


class Message:
    def __init__(self, generation_id: int) -> None:
        self.generation_id = generation_id


class Fetched(Message):
    def __init__(self, tp: TopicPartition, generation_id: int) -> None:
        super().__init__(generation_id)
        self.tp, self.tracked = tp, False


def consumer_in(generation: int, flowing: bool, in_flight: set) -> SafeConsumer:
    consumer = SafeConsumer.__new__(SafeConsumer)
    flow = SimpleNamespace(is_active=lambda: flowing)
    consumer.__dict__["app"] = SimpleNamespace(consumer_generation_id=generation, flow_control=flow)
    consumer._unacked_messages = in_flight
    return consumer


def test_an_ack_refused_during_a_rebalance_still_lets_the_rebalance_finish():
    """Faust suspends flow control, then waits until no message is in flight; an agent that
    finishes a batch meanwhile has its acks refused (not committed: read again after the
    seek), and those messages must leave the in-flight set or the wait never ends."""
    late, stale = Message(generation_id=3), Message(generation_id=2)
    in_flight = {late, stale}
    assert consumer_in(3, flowing=False, in_flight=in_flight).ack(late) is False
    assert consumer_in(3, flowing=True, in_flight=in_flight).ack(stale) is False
    assert in_flight == set()


def test_a_crashing_worker_waits_for_none_of_the_messages_it_will_never_acknowledge():
    """The outreach planner leaves its command unacknowledged when it fails (the next owner plans
    it again) and crashes the worker; Faust's stop then waited for that message for ever, deaf to
    SIGTERM, and outreach stopped with the worker (an outside probe)."""
    crashed = []

    async def crash(exc):
        crashed.append(exc)

    in_flight = {Message(generation_id=3), Message(generation_id=3)}
    consumer = consumer_in(3, flowing=True, in_flight=in_flight)
    p = Pipeline.__new__(Pipeline)
    p.app = SimpleNamespace(consumer=consumer, crash=crash)
    asyncio.run(p.crash(TimeoutError()))
    assert in_flight == set() and [type(e) for e in crashed] == [TimeoutError]


def test_resuming_flow_that_was_not_suspended_keeps_what_the_agents_buffers_hold():
    """Faust's recovery resumes the streams, seeks and resumes them again while they flow: the
    events that reached an agent's buffer in between must still be processed (fix 5)."""
    flow = build(Settings(kafka_bootstrap_servers="unused:9092")).app.flow_control
    assert isinstance(flow, FlowControl)

    async def scenario():
        buffer = FlowControlQueue(flow_control=flow, clear_on_resume=True)
        flow.resume()  # the first resume: the streams flow
        buffer.put_nowait("fetched between the two resumes")
        flow.resume()  # the second, after the seek
        kept = buffer.qsize()
        flow.suspend()  # a rebalance: what was fetched before it is read again after its seek
        flow.resume()
        return kept, buffer.qsize()

    assert asyncio.run(scenario()) == (1, 0)


def test_a_batch_handed_to_its_handler_tells_faust_that_its_partition_is_being_processed():
    """Faust's live-lock check (every 1.25 s) logs "Stream has not started processing <tp>" as an
    ERROR for any partition with records fetched and no stream inbound time once the worker is
    five minutes old. Records of a batch topic reach no Faust stream, so a busy demo logged that
    error for them while they were handled fine: handing a batch over is their inbound time."""
    app, consumer = fetching()
    asks = [Fetched(TopicPartition(ASKS, p), app.consumer_generation_id) for p in (2, 2, 5)]
    handled = []

    async def handler(batch):
        handled.extend(batch)

    asyncio.run(consumer._hand_batch(handler, asks))
    assert handled == asks
    assert set(app.monitor.stream_inbound_time) == {TopicPartition(ASKS, 2), TopicPartition(ASKS, 5)}


def fetching() -> tuple[Any, SafeConsumer]:
    """A worker's app and its consumer, in a generation, the streams flowing, a heartbeat just answered."""
    app = build(Settings(kafka_bootstrap_servers="unused:9092")).app
    consumer = SafeConsumer.__new__(SafeConsumer)
    consumer.__dict__["app"] = app
    consumer._unacked_messages = set()
    app.flow_control.resume()
    app.lease.renew(monotonic())
    return app, consumer


def test_a_worker_whose_lease_lapsed_hands_what_it_fetched_over_only_once_a_heartbeat_says_it_still_owns_it():
    """Fix 8: resumed from a freeze, a worker handled what it had fetched before (provider
    callbacks, written over facts its partitions' new owner had moved on since). It waits for a
    heartbeat answered (then handles the batch), or for the rebalance (then handles nothing: the
    records are the new owner's to read)."""
    app, consumer = fetching()
    handled = []

    async def handler(batch):
        handled.extend(batch)

    async def lapsed(then: Callable[[], None]) -> None:
        app.lease.renewed_at = monotonic() - app.lease.limit  # no heartbeat answered for a session
        handled.clear()
        fetched = [Fetched(TopicPartition(ASKS, 2), app.consumer_generation_id)]
        task = asyncio.ensure_future(consumer._hand_batch(handler, fetched))
        for _ in range(10):
            await asyncio.sleep(0)
        assert handled == [] and not task.done()
        then()
        await asyncio.wait_for(task, 5)

    asyncio.run(lapsed(lambda: app.lease.renew(monotonic())))
    assert len(handled) == 1

    def rebalanced() -> None:
        app.consumer_generation_id += 1

    asyncio.run(lapsed(rebalanced))
    assert handled == []


def test_aiokafka_fetches_only_the_partitions_faust_reads():
    """Faust's paused partitions (recovered changelogs) are paused in aiokafka too (fix 6), and
    resumed once Faust reads them again; partitions no longer assigned are left alone."""
    e0, e1, c0, c1 = TopicPartition(EVENTS, 0), TopicPartition(EVENTS, 1), TopicPartition(CHANGELOG, 0), TopicPartition(CHANGELOG, 1)
    assert fetch_only({e0, e1, c0, c1}, set(), {e0, e1}) == ({c0, c1}, set())
    assert fetch_only({e0, e1, c0, c1}, {c0, c1}, {e0, e1}) == (set(), set())
    assert fetch_only({e0, e1, c0, c1}, {c0, c1}, {e0, e1, c1}) == (set(), {c1})  # recovery reads c1 again
    assert fetch_only({e0, c0}, {c0, c1}, {e0, c0}) == (set(), {c0})
