"""``streams.writes`` against the embedded broker, through aiokafka's own producer."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.writes import Writes

pytestmark = pytest.mark.integration


def test_a_batch_of_writes_is_acknowledged_without_waiting_out_the_producers_linger(broker):
    """Each hand-over of the write queue is a record batch of its own (``send_batch``), made
    whole already: the producer's linger, which lets records sent one by one gather into a batch,
    has nothing to wait for. A batch left open waited it out: every ``settle`` took at least the
    worker's 10 ms linger (an outreach chunk waited that long for its marks before its texts
    went; an alert of a few people, that long per partition). With a linger of a minute, the
    writes must be acknowledged well within it."""
    topic = f"writes-{uuid.uuid4().hex[:8]}"

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 2, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=60_000)
        await producer.start()
        try:
            faust_producer = type("FaustProducer", (), {"_ensure_producer": lambda self: producer,
                                                        "key_partition": lambda self, t, k: None})()
            w = Writes(type("App", (), {"producer": faust_producer})())  # type: ignore[arg-type]
            futs = [w.send(topic, b"k%d" % i, b"v%d" % i, i % 2) for i in range(10)]
            await asyncio.wait_for(asyncio.gather(*futs), timeout=20)
        finally:
            await producer.stop()

    asyncio.run(run())
