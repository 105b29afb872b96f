"""Every change to dashboard accounts, written through an ``AccountLog`` (``log``).

``AccountStore`` applies its own writes to its book at once, so the instance that signed a
session out refuses it from that moment; other instances refuse it as soon as they read the
record (their reader's lag, milliseconds).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Callable, Sequence

from pydantic import TypeAdapter, ValidationError

from contracts.accounts import Account, Email, Revocation, account_key, revocation_key

from .book import AccountBook
from .log import AccountLog, AccountsUnavailable, KafkaAccountLog, MemoryAccountLog, Record
from .passwords import digest, hash_password, new_token
from .rules import AccountRefused, check_manager, invitation, password_problem, removable, with_password

__all__ = ["AccountStore", "AccountsUnavailable", "KafkaAccountLog", "MemoryAccountLog", "email_of"]

EMAIL = TypeAdapter(Email)
#: Seconds a sign-in link not known here yet may wait for this instance to read the topic.
CATCH_UP = 3.0
USED = "this sign-in link is not valid: it was used already, replaced by a newer one, or it expired. Ask whoever invited you for a new one"


class AccountStore:
    """Every change to accounts, as the rules allow it; ``book`` is the current state."""

    def __init__(self, log: AccountLog) -> None:
        self.book = AccountBook()
        self._log = log
        self._listeners: list[Callable[[], None]] = []

    def listen(self, changed: Callable[[], None]) -> None:
        """Call ``changed()`` after every change to the book, whoever wrote it."""
        self._listeners.append(changed)

    async def start(self, follow: bool = True) -> None:
        await self._log.start(self.apply, follow)

    async def stop(self) -> None:
        await self._log.stop()

    def apply(self, key: str, record: Record, offset: int) -> None:
        if self.book.apply(key, record, offset):
            for changed in self._listeners:
                changed()  # wakes open dashboard streams, which check their sessions again

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

    async def invited(self, token: str, now: datetime) -> Account:
        """The account a sign-in link is for, while the link is good (``AccountRefused`` 400 if not)."""
        account = self.book.by_invite(digest(token), now)
        if account is None:
            # Written a moment ago by the CLI or another instance, perhaps, and not read here yet.
            await self._log.catch_up(CATCH_UP)
            account = self.book.by_invite(digest(token), now)
        if account is None:
            raise AccountRefused(USED, 400)
        return account

    async def set_password(self, token: str, password: str, now: datetime) -> Account:
        """Use a sign-in link: the account gets ``password``; the link and older sessions end."""
        account = await self.invited(token, now)
        if problem := password_problem(password):
            raise AccountRefused(problem, 422)
        updated, key = with_password(account, await hash_password(password), now), account_key(account.email)
        (offset,) = await self._log.append([(key, updated)])
        # Two uses of one link at once (here or on another instance) both get this far: the
        # topic's order decides (``AccountBook.apply``). Read up to this record, as every
        # instance does, before saying whether this use won.
        await self._log.catch_up(CATCH_UP)
        self.apply(key, updated, offset)  # read already, unless the reader is that late
        if self.book.account(account.email) != updated:
            raise AccountRefused(USED, 400)
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
        raise AccountRefused(f"{raw!r} is not an email address", 422, "email") from None
