"""The accounts topic in memory: the latest record per key, as a reader of a compacted topic
keeps it. Pure data structure, shared by the web app and ``turnout accounts``."""

from __future__ import annotations

from datetime import datetime

from contracts.accounts import Account, Revocation, account_key, revocation_key


class AccountBook:
    def __init__(self) -> None:
        self._latest: dict[str, Account | Revocation] = {}
        self._offsets: dict[str, int] = {}  # of every key ever seen, tombstones included
        self._by_invite: dict[str, str] = {}  # invite digest → email

    def apply(self, key: str, record: Account | Revocation | None, offset: int) -> bool:
        """Take one record (``None``: a tombstone) at its topic offset. A record at or below
        the offset already applied for its key changes nothing: a writer applies its own
        writes at once and reads them back later, and must not go back in time in between."""
        if offset <= self._offsets.get(key, -1):
            return False
        self._offsets[key] = offset
        if isinstance(record, Account) and record.spent_invite_sha256 is not None and self._by_invite.get(record.spent_invite_sha256) != record.email:
            return False  # a use of a link already used (or replaced): the first use in the topic's order won
        old = self._latest.pop(key, None)
        if isinstance(old, Account) and old.invite_sha256:
            self._by_invite.pop(old.invite_sha256, None)
        if record is not None:
            self._latest[key] = record
            if isinstance(record, Account) and record.invite_sha256:
                self._by_invite[record.invite_sha256] = record.email
        return True

    def account(self, email: str) -> Account | None:
        found = self._latest.get(account_key(email))
        return found if isinstance(found, Account) else None

    def by_invite(self, digest: str, now: datetime) -> Account | None:
        """The account whose sign-in link has this token digest, if the link is still good."""
        email = self._by_invite.get(digest)
        account = self.account(email) if email else None
        if account is None or account.invite_expires_at is None or account.invite_expires_at <= now:
            return None
        return account

    def accounts(self, partner: str | None = None) -> list[Account]:
        """Every account (or one partner's), by email."""
        found = [r for r in self._latest.values() if isinstance(r, Account) and (partner is None or r.partner == partner)]
        return sorted(found, key=lambda a: a.email)

    def revoked(self, session_digest: str) -> bool:
        return revocation_key(session_digest) in self._latest

    def expired_revocations(self, now: datetime) -> list[str]:
        """Keys of revocations whose session has expired anyway (they may be tombstoned)."""
        return [k for k, r in self._latest.items() if isinstance(r, Revocation) and r.expires_at <= now]
