"""Where accounts live: the compacted accounts topic, read by every web app instance.

``AccountLog`` is the port: ``start`` reads the topic from the beginning up to its end (so an
instance knows every account and revocation before it answers anyone), then keeps following
it; ``append`` returns once the broker acknowledged. ``KafkaAccountLog`` is the real adapter,
``MemoryAccountLog`` the fake beside it. ``AccountStore`` writes through a log and applies its
own writes at once, so the instance that signed a session out refuses it from that moment;
other instances refuse it as soon as they read the record (their reader's lag, milliseconds).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Callable, Protocol, Sequence

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from contracts.accounts import RECORD, Account, Email, Revocation, account_key, revocation_key
from streams.settings import Settings
from streams.topology import accounts_topic
from streams.transport import true_end_offsets

from ..web.replay import replay_consumer
from .book import AccountBook
from .passwords import digest, hash_password, new_token
from .rules import AccountRefused, check_manager, invitation, password_problem, removable, with_password

log = logging.getLogger(__name__)

Record = Account | Revocation | None  # None: a tombstone
Apply = Callable[[str, Record, int], None]
EMAIL = TypeAdapter(Email)


class AccountsUnavailable(Exception):
    """The broker did not acknowledge an account change: nothing changed. Retry after ``retry_after`` s."""

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class AccountLog(Protocol):
    async def start(self, apply: Apply, follow: bool = True) -> None:
        """Hand every record so far to ``apply`` (key, record, offset), then (``follow``) each new one."""

    async def stop(self) -> None: ...

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

    async def start(self, apply: Apply, follow: bool = True) -> None:
        # aiokafka clients must be created inside the running loop.
        s = self._settings
        self._producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap.split(","), acks="all", enable_idempotence=s.idempotent_producer)
        await self._producer.start()
        self._consumer = replay_consumer(s)
        await self._consumer.start()
        self._consumer.assign([self._tp])
        await self._consumer.seek_to_beginning(self._tp)
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        if s.broker_flavor == "tansu":
            end = (await true_end_offsets(s.bootstrap.split(","), {self._tp: end}))[self._tp]
        while await self._consumer.position(self._tp) < end:
            await self._read(apply)
        if follow:
            self._task = asyncio.create_task(self._follow(apply), name="account-reader")

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

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for client in (self._consumer, self._producer):
            if client is not None:
                await client.stop()

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


class AccountStore:
    """Every change to accounts, as the rules allow it; ``book`` is the current state."""

    def __init__(self, log: AccountLog, changed: Callable[[], None] = lambda: None) -> None:
        self.book = AccountBook()
        self._log = log
        self._changed = changed

    async def start(self, follow: bool = True) -> None:
        await self._log.start(self.apply, follow)

    async def stop(self) -> None:
        await self._log.stop()

    def apply(self, key: str, record: Record, offset: int) -> None:
        if self.book.apply(key, record, offset):
            self._changed()  # wakes open dashboard streams, which check their sessions again

    async def _write(self, records: Sequence[tuple[str, Record]]) -> None:
        for (key, record), offset in zip(records, await self._log.append(records)):
            self.apply(key, record, offset)

    async def invite(self, email: str, role: str, partner: str | None, by: str, now: datetime, hours: float, manager: str | None = None) -> tuple[Account, str]:
        """Create the account (or renew its link) and return it with the one-time link's token.
        ``manager``: the partner whose admin asks (None: an organizer or the CLI)."""
        email = email_of(email)
        check_manager(manager, role, partner)
        token = new_token()
        account = invitation(self.book.account(email), email, role, partner, by, now, hours, digest(token), uuid.uuid4().hex, manager)
        await self._write([(account_key(email), account)])
        return account, token

    async def set_password(self, token: str, password: str, now: datetime) -> Account:
        """Use a sign-in link: the account gets ``password``; the link and older sessions end."""
        account = self.book.by_invite(digest(token), now)
        if account is None:
            raise AccountRefused("this sign-in link is not valid: it was used already, replaced by a newer one, or it expired. Ask whoever invited you for a new one", 400)
        if problem := password_problem(password):
            raise AccountRefused(problem, 422)
        updated = with_password(account, await hash_password(password), now)
        await self._write([(account_key(account.email), updated)])
        return updated

    async def remove(self, email: str, manager: str | None = None) -> Account:
        """Remove the account: every session of it ends."""
        account = removable(manager, self.book.account(email.strip().lower()), email)
        await self._write([(account_key(account.email), None)])
        return account

    async def sign_out(self, sid: str, expires_at: datetime, now: datetime) -> None:
        """Revoke one session; revocations of sessions expired by now go (tombstoned) on the way."""
        stale = [(key, None) for key in self.book.expired_revocations(now)]
        await self._write([(revocation_key(digest(sid)), Revocation(expires_at=expires_at)), *stale])


def email_of(raw: str) -> str:
    try:
        return EMAIL.validate_python(raw)
    except ValidationError:
        raise AccountRefused(f"{raw!r} is not an email address", 422) from None
