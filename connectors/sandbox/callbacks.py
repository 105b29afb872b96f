"""Posting the sandbox's webhooks in the background, like a provider: retried a few times when
the receiver answers 5xx or cannot be reached, given up on 4xx, and bounded in time.

Tasks are tracked so that shutting the sandbox down cancels them instead of leaking them.
The client is aiohttp's: a callback storm (two per text) made httpx's per-request connection
pool bookkeeping most of the sandbox's CPU, on the cores the pipeline it serves also needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Coroutine

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)


class Poster:
    def __init__(self, attempts: int = 4, timeout: float = 5.0, first_backoff: float = 0.2) -> None:
        self.attempts = attempts
        self.timeout = timeout
        self.first_backoff = first_backoff
        #: The last deliveries, newest last, for ``GET /_sandbox/callbacks``.
        self.log: deque[dict] = deque(maxlen=1000)
        #: Deliveries given up on (every attempt 5xx or unanswered), for ``GET /_sandbox/callbacks``.
        self.given_up = 0
        self._client: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        # A few requests in flight, the rest wait here rather than inside the client's pool.
        self._slots = asyncio.Semaphore(32)

    async def start(self) -> None:
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine) -> None:
        """Run ``work`` after the current response, without making anyone wait for it."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> int | None:
        """POST ``body``; return the final HTTP status, or None if the receiver never answered."""
        assert self._client is not None, "Poster.start() was not awaited"
        status: int | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                # encoded=True: the URL is signed as it is; re-quoting it (%3A → :) would break the signature.
                async with self._slots, self._client.post(URL(url, encoded=True), data=body, headers=headers) as response:
                    status = response.status
                if status < 500:
                    break
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log.info("webhook %s attempt %d: %r", url, attempt, exc)
            if attempt < self.attempts:
                await asyncio.sleep(self.first_backoff * 2 ** (attempt - 1))
        self.log.append({"url": url, "status": status, "attempts": attempt})
        if status is None or status >= 500:
            self.given_up += 1
            log.warning("webhook given up after %d attempts (last status %s): %s", attempt, status, URL(url, encoded=True).path)
        return status
