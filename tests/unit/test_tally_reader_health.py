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


def test_a_fact_topic_that_went_back_is_reported_not_read_as_no_lag():
    # A memory-only broker restarted under a running web app (the topics made again): the reader
    # waited at its old offsets, counted nothing new, and /healthz said ok with a lag of 0 (an outside probe).
    from aiokafka import TopicPartition

    tp = TopicPartition("t.facts", 3)

    class Consumer:
        end = 20

        def assignment(self):
            return {tp}

        def highwater(self, _):
            return self.end

    r = reader()
    r._consumer, r._next[tp] = Consumer(), 20
    assert r.problem() is None and r.lag() == 0
    r._consumer.end = 5
    assert r.problem() == ("fact topic t.facts ends at offset 5 of partition 3, where this web app had read to 20: the broker lost its "
                           "data or the topic was made anew; restart the web app to read it again")
