"""The second same-run baseline of ``benchmarks.pipeline``: the read-process-write job the worker
does, hand-written on aiokafka with none of Faust (issue 17's "hand-written loop").

Per ``getmany`` batch: parse each record (``json.loads``), keep state per (action, person) in a
dict, produce one fact per change (acks=all), wait until the broker has every fact of the batch,
then commit the batch's offsets. At-least-once like the worker: the facts are durable before
their events are committed. What it leaves out is what the worker adds: validation of the
envelope, identity resolution, the fact rules, tables others can recover and hand over.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.settings import Settings


def fact_topic(s: Settings, partitions: int) -> str:
    """A compacted fact topic of this run only, created now."""
    name = f"{s.topic_prefix}bench-handloop-facts-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=s.bootstrap.split(","), client_id="bench-handloop")
    try:
        admin.create_topics([NewTopic(name, partitions, s.replication_factor, topic_configs={"cleanup.policy": "compact"})])
    finally:
        admin.close()
    return name


async def handloop(s: Settings, span: dict[TopicPartition, tuple[int, int]], n: int, deadline: float) -> float:
    """Seconds to turn the ``n`` records in ``span`` (first, last offset per partition) into
    facts: consume batch → parse → dict → one fact per change, acks=all → commit."""
    facts = fact_topic(s, len(span))
    group = f"{s.topic_prefix}bench-handloop-{uuid.uuid4().hex[:6]}"
    consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap.split(","), group_id=group, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap.split(","), acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    try:
        consumer.assign(list(span))
        for tp, (first, _) in span.items():
            consumer.seek(tp, first)
        state: dict[tuple[str, str], tuple[str, str]] = {}
        count, t0 = 0, time.perf_counter()
        while count < n:
            batch = await consumer.getmany(timeout_ms=500)
            sent, offsets = [], {}
            for tp, messages in batch.items():
                last = span[tp][1]
                for m in messages:
                    if m.offset > last:
                        continue
                    envelope = json.loads(m.value)
                    event = envelope["event"]
                    key, now = (event["action_id"], envelope["person_key"]), (event["status"], envelope["partner"])
                    if state.get(key) != now:
                        state[key] = now
                        fact = {"action_id": key[0], "person_key": key[1], "rsvp": now[0], "partner": now[1]}
                        sent.append(await producer.send(facts, json.dumps(fact).encode(), f"{key[0]}:{key[1]}".encode(), partition=tp.partition))
                    count += 1
                if messages:
                    offsets[tp] = messages[-1].offset + 1
            await asyncio.gather(*sent)  # every fact of the batch is durable …
            if offsets:
                await consumer.commit(offsets)  # … before its events are committed
            if time.monotonic() > deadline:
                raise TimeoutError(f"hand-written loop processed {count} of {n}")
        return time.perf_counter() - t0
    finally:
        await producer.stop()
        await consumer.stop()
