"""Writing accepted events to Kafka, and knowing when that cannot be promised.

``Publisher`` is the port the ingress needs. ``KafkaPublisher`` answers only once the broker
acknowledged every record (acks=all); ``ListPublisher`` is the in-memory fake for unit tests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

Record = tuple[bytes, bytes]  # (key, value)


class BrokerUnavailable(Exception):
    """The broker did not acknowledge in time: nothing may be promised. Retry after ``retry_after`` s."""

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Publisher(Protocol):
    async def publish(self, records: Sequence[Record], topic: str | None = None, partition: int | None = None) -> None:
        """Return only when every record is durably acknowledged (on ``topic``, default the
        events topic; ``partition``: all of them there, else by key); else raise ``BrokerUnavailable``."""


class ListPublisher:
    def __init__(self) -> None:
        self.by_topic: dict[str | None, list[Record]] = {}
        self.down = False

    @property
    def records(self) -> list[Record]:
        """What went to the events topic (the default)."""
        return self.by_topic.get(None, [])

    async def publish(self, records: Sequence[Record], topic: str | None = None, partition: int | None = None) -> None:
        if self.down:
            raise BrokerUnavailable(5, "broker down (fake)")
        self.by_topic.setdefault(topic, []).extend(records)


class KafkaPublisher:
    def __init__(self, bootstrap: str, topic: str, timeout: float, idempotent: bool) -> None:
        self.topic = topic
        self.timeout = timeout
        self._config = dict(
            bootstrap_servers=bootstrap.split(","),
            acks="all",
            enable_idempotence=idempotent,
            linger_ms=2,
            request_timeout_ms=int(max(timeout * 2, 10) * 1000),
        )
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # aiokafka clients must be created inside the running loop.
        self._producer = AIOKafkaProducer(**self._config)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    @property
    def retry_after(self) -> int:
        return max(1, round(self.timeout))

    async def publish(self, records: Sequence[Record], topic: str | None = None, partition: int | None = None) -> None:
        if self._producer is None:
            raise BrokerUnavailable(self.retry_after, "not connected to the broker yet")
        try:
            await asyncio.wait_for(self._send_all(records, topic or self.topic, partition), self.timeout)
        except (asyncio.TimeoutError, KafkaError) as exc:
            log.warning("broker did not acknowledge %d records: %r", len(records), exc)
            raise BrokerUnavailable(self.retry_after, "the broker did not acknowledge in time") from None

    async def _send_all(self, records: Sequence[Record], topic: str, partition: int | None = None) -> None:
        acks = [await self._producer.send(topic, value=value, key=key, partition=partition) for key, value in records]
        await asyncio.gather(*acks)
