"""An asyncio token bucket: at most ``rate`` sends per second on average, ``burst`` at once.

Providers throttle per account (a US long code sends about 1 segment/s, a short code 100+/s,
SendGrid counts requests), so each adapter owns one bucket and awaits it before every request,
retries included: a retry is a request too.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable


class TokenBucket:
    """``await bucket.acquire()`` before each request. ``rate`` 0 or None means unlimited.

    Each caller reserves its token at once (the balance may go negative) and sleeps off its own
    deficit, so waiters are served in arrival order and a steady stream of callers cannot starve
    an early one. A cancelled waiter's token is not given back: the bucket errs on the slow
    side. ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        rate: float | None,
        burst: float = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate or 0.0
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._stamp = clock()

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, tokens: float = 1) -> None:
        """Return once ``tokens`` may be spent; never returns early."""
        if self.unlimited:
            return
        if tokens > self.burst:
            raise ValueError(f"cannot take {tokens} tokens from a bucket of {self.burst}")
        self._refill()
        self._tokens -= tokens
        if self._tokens < 0:
            # Sleeping exactly the deficit, rather than re-checking in a loop, keeps float
            # rounding from turning the last 1e-16 of a token into a busy wait.
            await self._sleep(-self._tokens / self.rate)
