"""Password hashing (argon2id, argon2-cffi's defaults: RFC 9106's low-memory profile, 64 MiB
and about 0.2 s on one core) and one-time tokens.

A password is hashed and checked in Unicode NFKC (NIST SP 800-63B): "é" is the same typed as
one character (Windows) or as e and a combining accent (macOS, iOS). A hash made before
passwords were normalized still checks against the password as typed.

Hashing is deliberately slow, so it never runs on the event loop: ``hash_password`` and
``verify`` run in a pool of ``PARALLEL`` threads (a burst of sign-ins queues there instead of
taking every core and 64 MiB per attempt; the pool's threads start on first use).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import unicodedata
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

PARALLEL = 2
_hasher = PasswordHasher()
_pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="argon2")
# Verified when there is no such account (a hash of a random string nobody kept), so an unknown
# email costs the same time as a wrong password.
_DUMMY = "$argon2id$v=19$m=65536,t=3,p=4$2LUkMa36ZdVCYor7oMTKGw$3lyLNUGwOc1nyYRgP+WszSj9CjZyLCgB51c+GEGSu9w"


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_pool, _hasher.hash, unicodedata.normalize("NFKC", password))


async def verify(password_hash: str | None, password: str) -> bool:
    def check(typed: str) -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY, typed) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    normalized, loop = unicodedata.normalize("NFKC", password), asyncio.get_running_loop()
    return await loop.run_in_executor(_pool, check, normalized) or (normalized != password and await loop.run_in_executor(_pool, check, password))


def new_token() -> str:
    """256 random bits, URL-safe: a sign-in link's token or a session id."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    # 256 random bits cannot be guessed: a plain SHA-256 is enough to keep it out of storage.
    return hashlib.sha256(token.encode()).hexdigest()
