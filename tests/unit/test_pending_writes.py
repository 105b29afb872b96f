"""Each agent settles its own writes (a batch that cannot be made durable: tests/unit/test_batching.py)."""

import asyncio

from streams.app import PendingWrites


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
