"""What one drain of the write queue sends when the producer can take record batches
(``streams.writes``): one batch per partition, every partition's records in the order they were
written, each record's future resolved by its own batch's acknowledgement."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from streams.writes import Writes


class Batch:
    """aiokafka's ``BatchBuilder`` as ``Writes`` uses it: ``append`` answers ``None`` when full."""

    def __init__(self, room: int) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []
        self.room, self.closed = room, False

    def close(self) -> None:
        self.closed = True

    def append(self, *, key, value, timestamp):  # noqa: ANN001
        if len(self.records) >= self.room:
            return None
        self.records.append((key, value))
        return object()


class Kafka:
    """aiokafka's producer: ``create_batch`` and ``send_batch`` (its future, acked by the test);
    one record at a time through ``send`` for records of no partition in particular."""

    def __init__(self, room: int = 100, refuse: str | None = None) -> None:
        self.sent: list[tuple[str, int | None, list]] = []  # (topic, partition, records) in the order they reached the producer
        self.acks: list[asyncio.Future] = []
        self.room, self.refuse = room, refuse
        self.metadata: list[str] = []  # topics whose metadata was awaited

    def create_batch(self) -> Batch:
        return Batch(self.room)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future:
        if topic == self.refuse:
            raise RuntimeError("topic authorization failed")
        assert batch.closed, "an open batch waits out the producer's linger before it is sent"
        return self._sent(topic, partition, batch.records)

    async def send(self, topic, key, value, partition, timestamp, headers):  # noqa: ANN001 - Faust's producer
        return self._sent(topic, partition, [(key, value)])

    def _sent(self, topic: str, partition: int | None, records: list) -> asyncio.Future:
        self.sent.append((topic, partition, records))
        self.acks.append(asyncio.get_running_loop().create_future())
        return self.acks[-1]

    def _ensure_producer(self) -> Kafka:  # Faust's producer hands out the aiokafka one
        return self

    def key_partition(self, topic: str, key: bytes) -> SimpleNamespace:  # Faust's producer: the partitioner's answer
        return SimpleNamespace(topic=topic, partition=len(key) % 4)

    @property
    def client(self) -> SimpleNamespace:
        async def wait_on_metadata(topic: str) -> None:
            self.metadata.append(topic)
        return SimpleNamespace(_wait_on_metadata=wait_on_metadata)


def writes(kafka: Kafka) -> Writes:
    return Writes(type("App", (), {"producer": kafka})())  # type: ignore[arg-type]


async def drained() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_drain_sends_one_batch_per_partition_with_its_records_in_order_each_resolved_by_its_batch():
    async def run():
        kafka = Kafka()
        w = writes(kafka)
        futs = [w.send("facts", b"a", b"1", 0), w.send("facts", b"b", b"1", 1), w.send("facts", b"a", b"2", 0)]
        await drained()
        assert kafka.sent == [("facts", 0, [(b"a", b"1"), (b"a", b"2")]), ("facts", 1, [(b"b", b"1")])]
        kafka.acks[1].set_result("partition 1")
        await drained()
        assert [f.done() for f in futs] == [False, True, False]
        kafka.acks[0].set_exception(RuntimeError("not enough replicas"))
        await drained()
        with pytest.raises(RuntimeError):
            futs[0].result()
        with pytest.raises(RuntimeError):
            futs[2].result()

    asyncio.run(run())


def test_a_record_for_no_partition_joins_the_batch_of_the_partition_its_key_hashes_to_in_order():
    async def run():
        kafka = Kafka()
        w = writes(kafka)
        w.send("identity", b"ab", b"1", 2)
        w.send("identity", b"cd", b"2", None)  # the partitioner puts b"cd" on 2
        w.send("identity", b"ef", b"3", 2)
        w.send("identity", b"g", b"4", None)  # … and b"g" on 1
        await drained()
        assert kafka.sent == [("identity", 2, [(b"ab", b"1"), (b"cd", b"2"), (b"ef", b"3")]), ("identity", 1, [(b"g", b"4")])]
        assert kafka.metadata == ["identity"]  # looked up once

    asyncio.run(run())


def test_a_full_batch_is_sent_and_the_partitions_next_records_start_another_in_order():
    async def run():
        kafka = Kafka(room=2)
        w = writes(kafka)
        for i in range(5):
            w.send("facts", b"k", str(i).encode(), 3)
        await drained()
        assert [[v for _, v in records] for _, _, records in kafka.sent] == [[b"0", b"1"], [b"2", b"3"], [b"4"]]

    asyncio.run(run())


def test_a_batch_the_producer_refuses_fails_its_own_records_and_the_others_still_go():
    async def run():
        kafka = Kafka(refuse="forbidden")
        w = writes(kafka)
        refused, ok = w.send("forbidden", b"a", b"1", 0), w.send("facts", b"b", b"1", 0)
        await drained()
        with pytest.raises(RuntimeError, match="authorization"):
            refused.result()
        assert kafka.sent == [("facts", 0, [(b"b", b"1")])] and not ok.done()

    asyncio.run(run())


def test_records_written_to_a_partition_between_two_hand_overs_share_one_future_resolved_by_their_last_ack():
    async def run():
        kafka = Kafka(room=2)
        w = writes(kafka)
        futs = [w.send("facts", b"k", str(i).encode(), 3) for i in range(3)]  # two batches: [0, 1] and [2]
        await drained()
        assert len({id(f) for f in futs}) == 1
        kafka.acks[0].set_result("first batch")
        await drained()
        assert not futs[0].done()  # record 2 is not acknowledged yet
        later = w.send("facts", b"k", b"3", 3)  # after the hand-over: waits for its own batch only
        await drained()
        assert later is not futs[0]
        kafka.acks[1].set_result("second batch")
        await drained()
        assert futs[0].done() and not later.done()
        kafka.acks[2].set_result("third batch")
        await drained()
        assert later.done()

    asyncio.run(run())


def test_a_shared_future_fails_with_the_first_of_its_records_that_fails():
    async def run():
        kafka = Kafka(room=1)
        w = writes(kafka)
        first, second = w.send("facts", b"a", b"1", 0), w.send("facts", b"b", b"2", 0)
        await drained()
        assert first is second
        kafka.acks[1].set_exception(RuntimeError("not enough replicas"))
        await drained()
        with pytest.raises(RuntimeError, match="replicas"):
            first.result()
        kafka.acks[0].set_result("late")  # changes nothing
        await drained()
        with pytest.raises(RuntimeError, match="replicas"):
            first.result()

    asyncio.run(run())
