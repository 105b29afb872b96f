"""A worker starts after anything was produced to its tables' changelogs (a buggy producer, a
hand-made replay): table recovery reads past what is not JSON, and the agents start."""

import asyncio
import signal

import pytest
from aiokafka import AIOKafkaProducer

from streams.topology import TABLES, changelog_topic
from tests.factories import phone, rsvp
from tests.polling import eventually

pytestmark = pytest.mark.integration

POISON = [b"", b"\xff\xfe\x00", b"{" + b"x" * 1_000_000, b"[" * 5000 + b"]" * 5000]


async def produce(bootstrap: str, topics: list[str], partitions: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=3_000_000)
    await producer.start()
    try:
        for topic in topics:
            for partition in range(partitions):
                for key in (b"\xff\x00", b"k"):
                    for raw in POISON:
                        await producer.send_and_wait(topic, raw, key=key, partition=partition)
    finally:
        await producer.stop()


def test_a_worker_recovers_its_tables_past_records_that_are_not_json(make_stack):
    stack = make_stack()
    first = stack.start_worker()
    stack.start_web()
    stack.announce("rally-x")
    stack.post_all("union-a", [rsvp("r0", "rally-x", phone=phone(0))])
    eventually(lambda: stack.action_rows("rally-x")["union-a"]["rsvp_yes"] == 1, timeout=90)

    topics = [changelog_topic(stack.settings, t) for t in TABLES]
    asyncio.run(produce(stack.settings.bootstrap, topics, stack.settings.partitions))
    stack.stop(first, signal.SIGKILL)
    stack.start_worker()
    stack.post_all("union-a", [rsvp(f"r{i}", "rally-x", phone=phone(i)) for i in range(1, 21)])
    eventually(lambda: stack.action_rows("rally-x")["union-a"]["rsvp_yes"] == 21, timeout=120)
