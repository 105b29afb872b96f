"""Where accounts live: the compacted accounts topic, read by every web app instance.

``AccountLog`` is the port: ``start`` reads the topic from the beginning up to its end (so an
instance knows every account and revocation before it answers anyone), then keeps following
it; ``append`` returns once the broker acknowledged. ``KafkaAccountLog`` is the real adapter,
``MemoryAccountLog`` the fake beside it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Protocol, Sequence

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from contracts.accounts import RECORD, Account, Revocation
from streams.settings import Settings
from streams.topology import accounts_topic
from streams.transport import stop_consumer, true_end_offsets

from ..web.replay import replay_consumer

log = logging.getLogger(__name__)

Record = Account | Revocation | None  # None: a tombstone
Apply = Callable[[str, Record, int], None]


class AccountsUnavailable(Exception):
    """The broker did not acknowledge an account change: nothing changed. Retry after ``retry_after`` s."""

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class AccountLog(Protocol):
    async def start(self, apply: Apply, follow: bool = True) -> None:
        """Hand every record so far to ``apply`` (key, record, offset), then (``follow``) each new one."""

    async def stop(self) -> None: ...

    async def catch_up(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until every record written so far, by anyone, was handed on."""

    async def append(self, records: Sequence[tuple[str, Record]]) -> list[int]:
        """Return the offsets the records got once every one is acknowledged; else raise ``AccountsUnavailable``."""


class MemoryAccountLog:
    """The fake: one partition in memory. Stores started on the same log see every append at
    once, as web app instances reading the same topic would."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Record]] = []
        self.down = False
        self._followers: list[Apply] = []

    async def start(self, apply: Apply, follow: bool = True) -> None:
        for offset, (key, record) in enumerate(self.records):
            apply(key, record, offset)
        if follow:
            self._followers.append(apply)

    async def stop(self) -> None:
        self._followers.clear()

    async def catch_up(self, timeout: float) -> None:
        return None  # every append is handed on at once

    async def append(self, records: Sequence[tuple[str, Record]]) -> list[int]:
        if self.down:
            raise AccountsUnavailable(5, "broker down (fake)")
        offsets = []
        for key, record in records:
            offsets.append(len(self.records))
            self.records.append((key, record))
            for apply in self._followers:
                apply(key, record, offsets[-1])
        return offsets


class KafkaAccountLog:
    def __init__(self, s: Settings) -> None:
        self._settings = s
        self._tp = TopicPartition(accounts_topic(s), 0)
        self._producer: AIOKafkaProducer | None = None
        self._consumer = None
        self._task: asyncio.Task[None] | None = None
        self._next = 0  # the offset after the last record handed on

    async def start(self, apply: Apply, follow: bool = True) -> None:
        try:
            await self._start(apply, follow)
        except BaseException:
            await self.stop()  # no client left open behind a failed start
            raise

    async def _start(self, apply: Apply, follow: bool) -> None:
        # aiokafka clients must be created inside the running loop.
        s = self._settings
        self._producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap.split(","), acks="all", enable_idempotence=s.idempotent_producer)
        await self._producer.start()
        self._consumer = replay_consumer(s)
        await self._consumer.start()
        await self._exists()
        self._consumer.assign([self._tp])
        await self._consumer.seek_to_beginning(self._tp)
        end = await self._end()
        while await self._consumer.position(self._tp) < end:
            await self._read(apply)
        if follow:
            self._task = asyncio.create_task(self._follow(apply), name="account-reader")

    async def _exists(self) -> None:
        # Provisioned before the web app starts (`turnout topics ensure`); metadata may lag a moment.
        for _ in range(50):
            if self._tp.topic in await self._consumer.topics():  # refreshes metadata
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the accounts topic {self._tp.topic} does not exist: run `turnout topics ensure`")

    async def _end(self) -> int:
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        if self._settings.broker_flavor == "tansu":  # its ListOffsets answer is wrong: see streams.transport
            end = (await true_end_offsets(self._settings.bootstrap.split(","), {self._tp: end}))[self._tp]
        return end

    async def catch_up(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                end = await self._end()
                while self._next < end:
                    await asyncio.sleep(0.05)  # the follower task reads; this only waits for it
        except (TimeoutError, KafkaError):
            pass

    async def _follow(self, apply: Apply) -> None:
        while True:
            await self._read(apply)

    async def _read(self, apply: Apply) -> None:
        for messages in (await self._consumer.getmany(self._tp, timeout_ms=200, max_records=5000)).values():
            for m in messages:
                try:
                    key = m.key.decode()
                    record = None if m.value is None else RECORD.validate_json(m.value)
                except (AttributeError, UnicodeDecodeError, ValidationError):
                    log.warning("skipped an unreadable account record at offset %d", m.offset)
                    continue
                apply(key, record, m.offset)
            self._next = messages[-1].offset + 1 if messages else self._next

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await stop_consumer(self._consumer)
        if self._producer is not None:
            await self._producer.stop()

    async def append(self, records: Sequence[tuple[str, Record]]) -> list[int]:
        timeout = self._settings.ack_timeout
        try:
            return await asyncio.wait_for(self._send_all(records), timeout)
        except (asyncio.TimeoutError, KafkaError) as exc:
            log.warning("broker did not acknowledge %d account records: %r", len(records), exc)
            raise AccountsUnavailable(max(1, round(timeout)), "the broker did not acknowledge in time") from None

    async def _send_all(self, records: Sequence[tuple[str, Record]]) -> list[int]:
        if self._producer is None:
            raise KafkaError("not connected to the broker yet")
        sent = [
            await self._producer.send(self._tp.topic, key=key.encode(), value=None if r is None else r.model_dump_json().encode(), partition=0)
            for key, r in records
        ]
        return [meta.offset for meta in await asyncio.gather(*sent)]
