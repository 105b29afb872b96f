"""How facts are written: ``Pipeline.settle`` across agents."""

from __future__ import annotations

import asyncio

from tests.fakes import memory_pipeline


def test_settle_waits_for_writes_another_agents_settle_took():
    """Two agents share ``pending``; an agent that settles second must not return while the
    first one's settle still waits for writes the second made (it took them from the list)."""

    async def run():
        p = memory_pipeline()
        slow = asyncio.get_running_loop().create_future()
        p.pending.append(slow)  # agent B's write, not yet acknowledged
        a = asyncio.ensure_future(p.settle())  # agent A settles first and takes it
        await asyncio.sleep(0)
        b = asyncio.ensure_future(p.settle())  # agent B, before acknowledging its batch
        await asyncio.sleep(0.01)
        assert not b.done()
        slow.set_result(None)
        await asyncio.gather(a, b)

    asyncio.run(run())
