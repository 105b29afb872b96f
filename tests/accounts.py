"""Dashboard accounts for tests: seeded accounts on the in-memory account log, and signing them in."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from functools import cache

from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from connectors.accounts.store import AccountStore, MemoryAccountLog
from contracts.accounts import Account, account_key

PASSWORD = "correct horse battery staple"


@cache
def password_hash() -> str:
    """``PASSWORD`` hashed with argon2id at its lowest cost, so that signing seeded accounts in
    takes a millisecond, not the default's 0.2 s (verification reads the cost from the hash).
    Passwords set through a sign-in link in the tests are hashed at the default cost."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)


def account(email: str, role: str = "viewer", partner: str | None = None) -> Account:
    """An account whose password (``PASSWORD``) is set."""
    at = datetime.now(timezone.utc)
    return Account(email=email, id=uuid.uuid4().hex, role=role, partner=partner, password_hash=password_hash(),
                   sessions_since=at, invited_by="test", created_at=at)


def started_store(log: MemoryAccountLog) -> AccountStore:
    store = AccountStore(log)
    asyncio.run(store.start())
    return store


def add(log: MemoryAccountLog, *accounts: Account) -> None:
    asyncio.run(log.append([(account_key(a.email), a) for a in accounts]))


def sign_in(client: TestClient, email: str, password: str = PASSWORD):
    return client.post("/dashboard/login", data={"email": email, "password": password}, follow_redirects=False)
