"""The safe consumer (streams/transport.py, fixes 1 and 6) against the embedded broker: a worker's
acks are committed, a seek sends partitions nobody committed on back to the beginning, and
aiokafka fetches only the partitions Faust reads, losing nothing of those it resumes."""

import asyncio
import uuid
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.topology import events_topic
from streams.transport import SafeConsumerThread, seek_to_committed_or_beginning
from tests.factories import phone, signup
from tests.polling import eventually

pytestmark = pytest.mark.integration


def test_a_worker_commits_the_events_it_processed(make_stack):
    """Acks of messages the agents processed in a steady state are accepted, so their offsets
    are committed: a consumer that refused every ack would read everything again on restart."""
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    events = [signup(f"s{i}", phone=phone(i)) for i in range(20)]
    assert stack.post("union-a", events).status_code == 202
    partitions = [TopicPartition(events_topic(stack.settings), i) for i in range(stack.settings.partitions)]
    # A fresh topic holds only these events: the committed offsets add up to their number.
    eventually(lambda: asyncio.run(committed(stack.settings.bootstrap, stack.settings.app_id, partitions)) == len(events))


async def committed(bootstrap: str, group: str, partitions: list[TopicPartition]) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    return sum(max(o.offset, 0) for o in offsets.values())


def test_a_seek_sends_partitions_nobody_committed_on_back_to_the_beginning(broker):
    """As after a rebalance: the consumer has read past messages it never committed."""
    asyncio.run(seek_after_reading(broker.bootstrap, f"t-transport-{uuid.uuid4().hex[:8]}"))


async def topics(bootstrap: str, name: str, events_partitions: int) -> tuple[str, str]:
    """A fresh events topic and a changelog (one partition), named after ``name``."""
    events, changelog = f"{name}.events", f"{name}-people_by_key-changelog"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(events, events_partitions, 1), NewTopic(changelog, 1, 1)])
    finally:
        await admin.close()
    return events, changelog


async def seek_after_reading(bootstrap: str, name: str) -> None:
    events, changelog = await topics(bootstrap, name, 2)
    kept, rewound, table = TopicPartition(events, 0), TopicPartition(events, 1), TopicPartition(changelog, 0)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for tp in (kept, rewound, table):
            for _ in range(3):
                await producer.send_and_wait(tp.topic, b"x", partition=tp.partition)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=name, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([kept, rewound, table])
        await read_to_the_end(consumer, 3)
        await consumer.commit({kept: 2})
        assert await seek_to_committed_or_beginning(consumer, {changelog}) == {kept: 2, rewound: None, table: None}
        assert [await consumer.position(tp) for tp in (kept, rewound, table)] == [2, 0, 3]
    finally:
        await consumer.stop()


async def read_to_the_end(consumer: AIOKafkaConsumer, end: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while any([await consumer.position(tp) < end for tp in consumer.assignment()]):
        assert asyncio.get_running_loop().time() < deadline, "the records did not arrive"
        await consumer.getmany(timeout_ms=200)


def test_partitions_faust_does_not_read_are_not_fetched_and_lose_nothing_when_read_again(broker):
    asyncio.run(fetch_what_faust_reads(broker.bootstrap, f"t-fetch-{uuid.uuid4().hex[:8]}"))


async def fetch_what_faust_reads(bootstrap: str, name: str) -> None:
    events, changelog = await topics(bootstrap, name, 1)
    read, recovered = TopicPartition(events, 0), TopicPartition(changelog, 0)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    await consumer.start()
    thread = object.__new__(SafeConsumerThread)  # its fetch, without a Faust app around it
    thread.consumer = SimpleNamespace(flow_active=True)

    async def fetch(active: set, until: int) -> dict:
        got: dict = {}
        deadline = asyncio.get_running_loop().time() + 10
        while sum(map(len, got.values())) < until:
            assert asyncio.get_running_loop().time() < deadline, f"fetched {got}"
            for tp, records in (await thread._fetch_records(consumer, active, timeout=0.2)).items():
                got.setdefault(tp, []).extend(r.value for r in records)
        return got

    try:
        consumer.assign([read, recovered])
        await consumer.seek_to_beginning(read, recovered)
        for _ in range(2):  # Faust reads only ``read``; the fetch in flight when it said so ends
            await fetch({read}, 0)
            await thread._fetch_records(consumer, {read}, timeout=0.3)
        for i in range(3):
            await producer.send_and_wait(events, f"e{i}".encode(), partition=0)
            await producer.send_and_wait(changelog, f"c{i}".encode(), partition=0)
        assert await fetch({read}, 3) == {read: [b"e0", b"e1", b"e2"]}
        assert consumer.paused() == {recovered}
        assert consumer.highwater(recovered) in (None, 0)  # its records were never fetched
        await producer.send_and_wait(changelog, b"c3", partition=0)
        assert await fetch({read, recovered}, 4) == {recovered: [b"c0", b"c1", b"c2", b"c3"]}
        assert consumer.paused() == set()
    finally:
        await consumer.stop()
        await producer.stop()
