"""The hot topics' batch path (``streams.batching``): which records a batch handles, when they
are acknowledged, and that a batch whose writes fail is never acknowledged; and the same for
slow work on a task of its own (``Apart``, the send agent's). Driven with fakes: the real
``PendingWrites``, write futures the test resolves, and the consumer's ack recorded."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from streams.app import PendingWrites
from streams.batching import Apart, Batches, taken


def records(*offsets: int, generation: int = 1) -> list[SimpleNamespace]:
    return [SimpleNamespace(topic="events", partition=0, offset=o, key=b"k", value=b"{}", generation_id=generation) for o in offsets]


class Harness:
    """A ``Batches`` whose ``handle`` makes one write per record, each a future the test resolves."""

    def __init__(self, **options: object) -> None:
        self.pending = PendingWrites()
        self.writes: dict[int, asyncio.Future] = {}
        self.handled: list[list[int]] = []
        self.acked: list[int] = []
        self.crashed: list[BaseException] = []
        self.batches = Batches(self.handle, self.pending, lambda batch: self.acked.extend(m.offset for m in batch), self.crash, **options)

    def handle(self, batch):  # noqa: ANN001
        self.handled.append([m.offset for m in batch])
        for m in batch:
            self.writes[m.offset] = asyncio.get_running_loop().create_future()
            self.pending.append(self.writes[m.offset])

    async def crash(self, exc: BaseException) -> None:
        self.crashed.append(exc)

    def durable(self, *offsets: int) -> None:
        for o in offsets:
            self.writes[o].set_result(None)


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_a_batch_is_acknowledged_only_once_every_write_it_made_is_durable():
    async def main():
        h = Harness()
        await h.batches(records(0, 1, 2))
        await turns()
        assert h.handled == [[0, 1, 2]] and h.acked == []
        h.durable(0, 1)
        await turns()
        assert h.acked == []  # one write still in flight: nothing of the batch is acknowledged
        h.durable(2)
        await h.batches.drain()
        assert h.acked == [0, 1, 2] and h.crashed == []

    asyncio.run(main())


def test_the_next_batch_is_handled_while_the_last_ones_writes_are_in_flight_and_each_is_acked_on_its_own():
    async def main():
        h = Harness()
        await h.batches(records(0, 1))
        await h.batches(records(2, 3))
        assert h.handled == [[0, 1], [2, 3]]
        h.durable(2, 3)
        await turns()
        assert h.acked == [2, 3]  # Faust commits only contiguous acked offsets: 0 and 1 hold the commit back
        h.durable(0, 1)
        await h.batches.drain()
        assert sorted(h.acked) == [0, 1, 2, 3]

    asyncio.run(main())


def test_a_batch_whose_write_fails_is_never_acknowledged_stops_the_worker_and_nothing_after_it_is_handled():
    async def main():
        h = Harness()
        await h.batches(records(0, 1))
        h.writes[0].set_result(None)
        h.writes[1].set_exception(RuntimeError("NotEnoughReplicas"))
        await h.batches.drain()
        await h.batches(records(2))
        await h.batches.drain()
        assert h.acked == [] and h.handled == [[0, 1]]
        assert [str(e) for e in h.crashed] == ["NotEnoughReplicas"]

    asyncio.run(main())


def test_a_batch_whose_handling_raises_is_never_acknowledged_and_stops_the_worker():
    async def main():
        h = Harness()

        def broken(batch):  # noqa: ANN001
            h.handle(batch)
            raise ValueError("a bug")

        h.batches.handle = broken
        await h.batches(records(0, 1))
        h.durable(0, 1)
        await h.batches.drain()
        assert h.acked == [] and [type(e) for e in h.crashed] == [ValueError]

    asyncio.run(main())


def test_flush_runs_after_the_batch_is_handled_and_its_own_writes_hold_the_acknowledgement_too():
    async def main():
        h = Harness()
        late: list[asyncio.Future] = []

        async def flush(batch):  # noqa: ANN001 - what the identity agent does: deletes once the folds are durable
            assert h.handled[-1] == [m.offset for m in batch]
            late.append(asyncio.get_running_loop().create_future())
            h.pending.append(late[-1])

        h.batches.flush = flush
        await h.batches(records(0))
        h.durable(0)
        await turns()
        assert h.acked == []  # the flush's write is not durable yet
        late[0].set_result(None)
        await h.batches.drain()
        assert h.acked == [0]

    asyncio.run(main())


def test_a_fetch_bigger_than_a_batch_is_handled_and_acknowledged_batch_by_batch():
    async def main():
        h = Harness(size=2)
        await h.batches(records(0, 1, 2, 3, 4))
        assert h.handled == [[0, 1], [2, 3], [4]]
        h.durable(2, 3)
        await turns()
        assert h.acked == [2, 3]
        h.durable(0, 1, 4)
        await h.batches.drain()
        assert sorted(h.acked) == [0, 1, 2, 3, 4]

    asyncio.run(main())


def test_beyond_max_in_flight_records_the_next_batch_waits_until_the_oldest_is_acknowledged():
    async def main():
        h = Harness(size=2, max_in_flight=2)
        await h.batches(records(0, 1))
        second = asyncio.ensure_future(h.batches(records(2, 3)))
        await turns()
        assert h.handled == [[0, 1]] and not second.done()  # bounded: what waits for the broker is at most 2 records
        h.durable(0, 1)
        await second
        assert h.handled == [[0, 1], [2, 3]] and h.acked == [0, 1]

    asyncio.run(main())


def test_a_batch_takes_only_records_of_the_current_generation_and_none_while_flow_is_suspended():
    old, new = records(0, 1, generation=1), records(2, 3, generation=2)
    assert [m.offset for m in taken(old + new, generation=2, flowing=True)] == [2, 3]
    assert taken(new, generation=2, flowing=False) == []


class Slow:
    """An ``Apart`` whose ``work`` makes one write per record and then waits until the test
    lets that batch finish (``done``), as the send agent waits for the providers."""

    def __init__(self, **options: object) -> None:
        self.pending = PendingWrites()
        self.writes: dict[int, asyncio.Future] = {}
        self.finish: dict[int, asyncio.Event] = {}
        self.worked: list[list[int]] = []
        self.acked: list[int] = []
        self.crashed: list[BaseException] = []
        self.apart = Apart(self.work, self.pending, lambda batch: self.acked.extend(m.offset for m in batch), self.crash, **options)

    async def work(self, batch):  # noqa: ANN001
        self.worked.append([m.offset for m in batch])
        for m in batch:
            self.writes[m.offset] = asyncio.get_running_loop().create_future()
            self.pending.append(self.writes[m.offset])
        await self.finish.setdefault(batch[0].offset, asyncio.Event()).wait()

    def done(self, first: int) -> None:
        self.finish.setdefault(first, asyncio.Event()).set()

    async def crash(self, exc: BaseException) -> None:
        self.crashed.append(exc)

    def durable(self, *offsets: int) -> None:
        for o in offsets:
            self.writes[o].set_result(None)


def test_slow_work_runs_apart_batch_by_batch_in_order_and_the_fetch_loop_goes_on_until_the_queue_is_full():
    async def main():
        s = Slow(size=2, depth=1)
        await s.apart(records(0, 1, 2, 3))  # returns once queued: the fetch loop reads on meanwhile
        await turns()
        assert s.worked == [[0, 1]]
        third = asyncio.ensure_future(s.apart(records(4, 5)))
        await turns()
        assert not third.done()  # [2, 3] waits in the queue (depth 1): the fetch loop waits too
        s.done(0)
        await turns()
        assert s.worked == [[0, 1], [2, 3]] and third.done()  # one batch at a time, in order
        await s.apart.stop()

    asyncio.run(main())


def test_a_slow_batch_is_acked_once_worked_and_durable_without_holding_up_the_next():
    async def main():
        s = Slow(size=2)
        await s.apart(records(0, 1, 2, 3))
        await turns()
        s.done(0)
        await turns()
        assert s.worked == [[0, 1], [2, 3]] and s.acked == []  # the next batch is worked while [0, 1]'s writes are in flight
        s.durable(0, 1)
        await turns()
        assert s.acked == [0, 1]
        s.durable(2, 3)
        await turns()
        assert s.acked == [0, 1]  # durable, but its work is not done
        s.done(2)
        await turns()
        assert s.acked == [0, 1, 2, 3] and s.crashed == []
        await s.apart.stop()

    asyncio.run(main())


def test_slow_work_that_raises_or_a_write_that_fails_stops_the_worker_and_nothing_more_is_acked():
    async def main():
        s = Slow()
        s.done(0)
        await s.apart(records(0))
        await turns()
        s.writes[0].set_exception(RuntimeError("NotEnoughReplicas"))
        await turns()
        await s.apart(records(1))
        await turns()
        assert s.acked == [] and s.worked == [[0]] and [str(e) for e in s.crashed] == ["NotEnoughReplicas"]

        broken = Slow()

        async def work(batch):  # noqa: ANN001
            raise ValueError("a bug")

        broken.apart.work = work
        await broken.apart(records(0))
        await turns()
        assert broken.acked == [] and [type(e) for e in broken.crashed] == [ValueError]

    asyncio.run(main())


def test_slow_work_has_its_own_writes_not_those_of_the_fetch_loop_that_handed_it_over():
    async def main():
        s = Slow()
        fetch_loops = s.pending.own()  # the fetch loop's batches wrote before handing over
        fetch_loops.append(asyncio.get_running_loop().create_future())  # never durable
        s.done(0)
        await s.apart(records(0))
        await turns()
        s.durable(0)
        await turns()
        assert s.acked == [0] and len(fetch_loops) == 1  # not held up by, and did not take, the other's write
        await s.apart.stop()

    asyncio.run(main())
