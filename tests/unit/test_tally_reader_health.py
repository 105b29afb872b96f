"""A tally reader that stopped or stalled is reported, so /healthz can answer 503."""

import asyncio
import time

from pydantic import SecretStr

from connectors.web.tally_reader import TallyReader
from contracts.tallies import TallyBook
from streams.settings import Settings


def reader() -> TallyReader:
    s = Settings(kafka_bootstrap_servers="unused:9092", person_key_secret=SecretStr("k"))
    return TallyReader(s, TallyBook())


def test_a_reader_that_reads_is_healthy_one_that_stalled_or_stopped_is_not():
    r = reader()
    assert r.problem() is None
    r.last_read = time.time() - 31
    assert r.problem().startswith("the tally reader has not heard from the broker for")

    async def stopped():
        r._task = asyncio.create_task(asyncio.sleep(0))
        await r._task
        return r.problem()

    assert asyncio.run(stopped()) == "the tally reader stopped"
