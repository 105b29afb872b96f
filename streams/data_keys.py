"""The data-keys topic as a process uses it: follow it into a ``KeyRing``, make a person's
first key, erase a person's keys.

``DataKeys`` is the port. ``KafkaDataKeys`` follows the compacted data-keys topic from its
start for as long as the process runs (a group-less consumer: every process reads every key)
and writes key records and tombstones through the ``publish`` it is given (the web app's
publisher: acknowledged by every in-sync replica before it returns). ``MemoryDataKeys`` is the
in-memory fake.

Ordering: a new key's record is acknowledged before any event sealed with it is written, so a
reader that meets an unknown key id reads the topic up to its end once (``caught_up``) and
then knows: still unknown means erased.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Collection, Iterable, Protocol, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from .crypto import DataKey, KeyRing, MasterKey, UnknownMasterKey, key_record, tombstone
from .settings import Settings
from .topology import data_keys_topic
from .transport import TANSU_FETCH_MAX_WAIT_MS, stop_consumer

log = logging.getLogger(__name__)
Publish = Callable[..., Awaitable[None]]  # (records, topic, partition=...): the web app's ``Publisher.publish``


class DataKeys(Protocol):
    ring: KeyRing

    async def caught_up(self, timeout: float = 30.0) -> bool:
        """Return once every key record written before the call is in ``ring`` (``False``: not
        within ``timeout`` seconds)."""

    async def keys_for(self, person_keys: Iterable[str], introducing: Collection[str] | None = None) -> dict[str, DataKey]:
        """A data key for each person: their oldest known one, else a new one, durable on return.
        ``introducing``: the people the events introduce (``None``: all of them); a key made for
        the others says so, and a forgotten person introduced again has their key's record
        written again to say it (``KeyRing.forgotten``)."""

    async def forget(self, person_keys: Iterable[str]) -> int:
        """Tombstone every data key of these people; return how many (durable on return)."""

    async def stop(self) -> None: ...


def master_keys(s: Settings) -> list[MasterKey]:
    """The current master key, then the ones it replaced (``TURNOUT_PREVIOUS_MASTER_KEYS``)."""
    return [MasterKey(k) for k in s.master_key_bytes()]


def needed(ring: KeyRing, person_keys: Iterable[str], introducing: Collection[str] | None) -> tuple[dict[str, DataKey], list[tuple[DataKey, bool]]]:
    """Each person's data key, and the key records to write first (key, whether it introduces
    its person): a new key for a person who has none; the record of a forgotten person's key,
    made for an event that introduced nobody, again when an event introduces them (a sign-up)."""
    out, written = {}, []
    for pk in dict.fromkeys(person_keys):
        introduces = introducing is None or pk in introducing
        key = ring.for_person(pk)
        if key is None:
            key = ring.new_key(pk)
            written.append((key, introduces))
        elif introduces and ring.forgotten(pk):
            written.append((key, True))
        out[pk] = key
    return out, written


class MemoryDataKeys:
    """The fake: one ring, no broker (``master``: a throwaway one when not given)."""

    def __init__(self, masters: Sequence[MasterKey] | None = None) -> None:
        import os

        self.ring = KeyRing(list(masters or [MasterKey(os.urandom(32))]))
        self.records: list[tuple[bytes, bytes | None]] = []

    async def caught_up(self, timeout: float = 30.0) -> bool:
        return True

    async def keys_for(self, person_keys: Iterable[str], introducing: Collection[str] | None = None) -> dict[str, DataKey]:
        out, written = needed(self.ring, person_keys, introducing)
        for key, introduces in written:
            self.records.append(key_record(self.ring.master, key, introduces=introduces))
            self.ring.made(key, introduces)
        return out

    async def forget(self, person_keys: Iterable[str]) -> int:
        gone = self.ring.of_people(person_keys)
        for key in gone:
            self.records.append(tombstone(key.record_key))
            self.ring.apply(key.record_key, None)
        return len(gone)

    async def stop(self) -> None:
        pass


class KafkaDataKeys:
    """Follows the data-keys topic; writes through ``publish`` (``None``: a reader only, as
    workers are). Started on first use, inside the running loop."""

    def __init__(self, s: Settings, publish: Publish | None = None, ring: KeyRing | None = None) -> None:
        self.settings = s
        self.topic = data_keys_topic(s)
        self.ring = ring or KeyRing(master_keys(s))
        self._publish = publish
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._starting = asyncio.Lock()
        self._rounds = 0  # fetch rounds finished
        self._at_end = -1  # the last round that ended with every partition read to its end
        self._tick = asyncio.Event()
        self._unreadable: set[bytes] = set()  # keys whose newest record this process cannot read
        self._known = False  # read the topic to its end once: a known person gets no second key

    async def start(self) -> None:
        async with self._starting:
            if self._task is not None:
                return
            tansu = {"fetch_max_wait_ms": TANSU_FETCH_MAX_WAIT_MS} if self.settings.broker_flavor == "tansu" else {}
            consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap.split(","), group_id=None, enable_auto_commit=False,
                                        auto_offset_reset="earliest", **tansu)
            await consumer.start()
            tps = [TopicPartition(self.topic, 0)]  # one partition (streams.topology)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            self._consumer, self._tps = consumer, tps
            self._task = asyncio.create_task(self._follow(), name="data-keys")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await stop_consumer(self._consumer)

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batch = await self._consumer.getmany(timeout_ms=200)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker comes back; the ring stays as it was
                log.warning("reading the data-keys topic failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(1)
                continue
            for messages in batch.values():
                for m in messages:
                    self._apply(m.key, m.value)
            self._rounds += 1
            if await self._read_to_end():  # not "an empty answer": under steady sign-ups there may be none
                self._at_end = self._rounds
            self._tick.set()
            self._tick = asyncio.Event()

    @property
    def unreadable(self) -> int:
        """Data keys this process cannot read: the newest record of each, not every record read
        (an erased key, or one written again since, is not counted)."""
        return len(self._unreadable)

    def _apply(self, key: bytes, value: bytes | None) -> None:
        try:
            self.ring.apply(key, value)
            self._unreadable.discard(key)
        except UnknownMasterKey as exc:
            self._unreadable.add(key)
            log.error("a data key is wrapped by master key %s, which this process was not given (TURNOUT_PREVIOUS_MASTER_KEYS)", exc.master_id)
        except Exception as exc:  # noqa: BLE001 - a damaged record: its key stays unknown, the rest is read
            self._unreadable.add(key)
            log.error("a data-keys record could not be read (%s)", type(exc).__name__)

    async def _read_to_end(self) -> bool:
        # The fetch answers' high watermark: ListOffsets is wrong on the embedded broker.
        assert self._consumer is not None
        for tp in self._tps:
            high = self._consumer.highwater(tp)
            if high is None or await self._consumer.position(tp) < high:
                return False
        return True

    async def caught_up(self, timeout: float = 30.0) -> bool:
        await self.start()
        want = self._rounds + 2  # a whole fetch round that began after this call
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._at_end < want:
            tick = self._tick
            try:
                await asyncio.wait_for(tick.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                return False
        return True

    async def keys_for(self, person_keys: Iterable[str], introducing: Collection[str] | None = None) -> dict[str, DataKey]:
        if not self._known:  # the first request of this process: learn the keys that exist (not
            # for longer than the broker may take to acknowledge: a person would get a second key, no more)
            self._known = await self.caught_up(self.settings.ack_timeout)
        out, written = needed(self.ring, person_keys, introducing)
        if written:
            new = [key for key, _ in written]
            self.ring.writing(new)  # their own records come back too, and are then skipped
            try:
                await self._write([key_record(self.ring.master, k, introduces=i) for k, i in written])
            except BaseException:
                self.ring.not_made(new)
                raise
            for key, introduces in written:
                self.ring.made(key, introduces)
        return out

    async def forget(self, person_keys: Iterable[str]) -> int:
        await self.caught_up()  # keys another web app made for them, too
        gone = self.ring.of_people(list(person_keys))
        if gone:
            await self._write([tombstone(k.record_key) for k in gone])
            for key in gone:
                self.ring.apply(key.record_key, None)
        return len(gone)

    async def rewrap(self) -> int:
        """Wrap every key with the current master key (after a rotation); return how many changed.
        A key erased while this ran would be written back by it: such keys are erased again."""
        await self.caught_up()
        stale = [self.ring.keys[rk.rpartition(":")[2]] for rk, m in list(self.ring.wrapped_by.items()) if m != self.ring.master.id]
        if stale:
            await self._write([key_record(self.ring.master, k, introduces=self.ring.introduces(k)) for k in stale])
            await self.caught_up()
            again = [k.record_key for k in stale if k.record_key in self.ring.erased]
            if again:
                await self._write([tombstone(rk) for rk in again])
        return len(stale)

    async def _write(self, records: Sequence[tuple[bytes, bytes | None]]) -> None:
        if self._publish is None:
            raise RuntimeError("this process only reads data keys")
        await self._publish(records, self.topic, partition=0)  # the topic's one partition: no hashing of each key
