"""Each agent settles its own writes; a batch that cannot be made durable stops the worker and
is not acknowledged."""

import asyncio
from types import SimpleNamespace

import pytest

from streams.app import PendingWrites, Pipeline


def test_one_agents_settle_neither_takes_nor_is_failed_by_another_agents_writes():
    async def main():
        pending = PendingWrites()
        slow, failing = asyncio.get_running_loop().create_future(), asyncio.get_running_loop().create_future()
        settled = []

        async def agent(name, fut):
            pending.append(fut)
            try:
                await pending.settle()
                settled.append(name)
            except RuntimeError:
                settled.append(f"{name} failed")

        a = asyncio.create_task(agent("a", slow))
        b = asyncio.create_task(agent("b", failing))
        await asyncio.sleep(0)
        failing.set_exception(RuntimeError("broker refused"))
        await b
        assert settled == ["b failed"] and not a.done()  # a still waits for its own write
        slow.set_result(None)
        await a
        assert settled == ["b failed", "a"]

    asyncio.run(main())


class Stream:
    """What ``Pipeline.batches`` uses of a Faust stream: events without auto-ack, and ack."""

    def __init__(self, n):
        self.items, self.acked = [SimpleNamespace(value=i) for i in range(n)], []

    def noack(self):
        return self

    async def events(self):
        for item in self.items:
            yield item

    async def ack(self, event):
        self.acked.append(event.value)


def test_a_batch_whose_writes_fail_stops_the_worker_and_is_never_acknowledged():
    crashed = []

    async def crash(exc):
        crashed.append(exc)

    p = Pipeline.__new__(Pipeline)
    p.pending, p.app = PendingWrites(), SimpleNamespace(crash=crash)

    async def flush(batch):
        if 3 in [e.value for e in batch]:
            raise RuntimeError("MessageSizeTooLargeError")

    async def main():
        stream = Stream(6)
        with pytest.raises(RuntimeError):
            async for _ in p.batches(stream, size=2, every=60, flush=flush):
                pass
        return stream.acked

    assert asyncio.run(main()) == [0, 1]
    assert [str(e) for e in crashed] == ["MessageSizeTooLargeError"]
