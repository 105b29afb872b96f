"""Builds the door directory by reading the events topic from its start, then live.

A group-less aiokafka consumer assigned every partition (as ``TallyReader`` reads the fact
topics). Records it cannot read are skipped and counted: the intake dead-letters them already.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from pydantic_core import from_json

from contracts.erasure import FORGET_PREFIX, ForgetPerson
from streams.settings import Settings
from streams.topology import events_topic
from streams.transport import stop_consumer

from ..replay import replay_consumer
from .directory import Directory

log = logging.getLogger(__name__)
#: Records read between two turns of the event loop.
YIELD_EVERY = 500


def apply_record(directory: Directory, key: bytes | None, value: bytes | None) -> bool:
    """One record of the events topic; False if it could not be read."""
    if value is None:
        return True
    try:
        if key is not None and key.startswith(FORGET_PREFIX.encode()):
            directory.forget(ForgetPerson.model_validate_json(value))  # rare: validated in full
        else:
            directory.apply(from_json(value))  # pydantic-core's parser: a third of json.loads's time
    except (ValidationError, ValueError, KeyError, TypeError, AttributeError):
        return False
    return True


class DirectoryReader:
    def __init__(self, s: Settings, directory: Directory) -> None:
        self.directory = directory
        self.skipped = 0
        self._settings = s
        self._topic = events_topic(s)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = replay_consumer(self._settings)  # created inside the running loop
        await self._consumer.start()
        partitions = None
        for _ in range(100):  # provisioned before the web app starts; metadata may lag a moment
            if self._topic in await self._consumer.topics() and (partitions := self._consumer.partitions_for_topic(self._topic)):
                break
            await asyncio.sleep(0.1)
        if not partitions:
            raise RuntimeError(f"events topic {self._topic} does not exist: run `turnout topics ensure`")
        tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._run(), name="door-directory-reader")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await stop_consumer(self._consumer)

    async def _run(self) -> None:
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            except Exception as exc:  # noqa: BLE001 - read again from where it got to, and say so
                log.error("the door directory reader failed (%s); reading on in 1 s", type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            for messages in batches.values():
                for i, m in enumerate(messages):
                    if not apply_record(self.directory, m.key, m.value):
                        self.skipped += 1
                    if i % YIELD_EVERY == YIELD_EVERY - 1:
                        await asyncio.sleep(0)  # a long replay never holds up the requests this app serves
