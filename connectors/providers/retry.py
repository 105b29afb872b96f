"""Retrying a provider call: exponential backoff with full jitter, the provider's word first.

Full jitter (sleep a uniform time in [0, min(cap, base * 2**n)]) spreads the retries of many
senders that failed together, which is exactly what a 429 storm produces. When the provider
says how long to wait (``RetryLater.after``, from Retry-After or X-RateLimit-Reset) we wait at
least that long; if it asks for more than ``cap`` we stop and re-raise, so the caller can
reschedule the message instead of holding a coroutine (and its batch) asleep.
"""

from __future__ import annotations

import asyncio
import logging
import random
from email.utils import parsedate_to_datetime
from typing import Awaitable, Callable, TypeVar

from .errors import RetryLater

log = logging.getLogger(__name__)

T = TypeVar("T")


def retry_after(value: str | None, now: float) -> float | None:
    """A Retry-After header in seconds from ``now`` (Unix time): delta-seconds, or an HTTP date
    (RFC 9110 allows both); ``None`` if absent or neither."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter delay before retry number ``attempt`` (1 for the first retry)."""
    return rng.uniform(0, min(cap, base * 2 ** (attempt - 1)))


async def with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    base: float,
    cap: float,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    retry_ambiguous: bool = True,
    max_wait: float | None = None,
) -> T:
    """Call ``fn`` up to ``attempts`` times while it raises ``RetryLater``.

    ``PermanentFailure`` and every other exception propagate at once. With
    ``retry_ambiguous=False`` a ``RetryLater(ambiguous=True)`` (the provider may have the message)
    propagates too, so the caller can mark the ask in doubt rather than risk a double send.
    A ``RetryLater.after`` beyond ``max_wait`` (default ``cap``) propagates as well; pass
    ``math.inf`` to sit out whatever the provider asks. After the last attempt (or the
    ``RetryLater.attempts`` the error allows) the last ``RetryLater`` is re-raised.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except RetryLater as exc:
            if attempt >= min(attempts, exc.attempts or attempts) or (exc.ambiguous and not retry_ambiguous):
                raise
            if exc.after is not None and exc.after > (cap if max_wait is None else max_wait):
                raise
            delay = max(exc.after or 0.0, backoff(attempt, base=base, cap=cap, rng=rng))
            log.info("%s; retry %d/%d in %.2fs", f"provider said {exc.code}" if exc.code else exc.reason, attempt, attempts - 1, delay)
            await sleep(delay)
    raise AssertionError("unreachable")
