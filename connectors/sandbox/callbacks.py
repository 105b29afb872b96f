"""Posting the sandbox's webhooks in the background, like a provider: retried a few times when
the receiver answers 5xx or cannot be reached, given up on 4xx, and bounded in time.

Tasks are tracked so that shutting the sandbox down cancels them instead of leaking them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Coroutine

import httpx

log = logging.getLogger(__name__)


class Poster:
    def __init__(self, attempts: int = 4, timeout: float = 5.0, first_backoff: float = 0.2) -> None:
        self.attempts = attempts
        self.timeout = timeout
        self.first_backoff = first_backoff
        #: The last deliveries, newest last, for ``GET /_sandbox/callbacks``.
        self.log: deque[dict] = deque(maxlen=1000)
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task] = set()
        # A few requests in flight, the rest wait here: thousands of requests queued inside
        # httpx's connection pool made its scheduling the sandbox's whole CPU cost.
        self._slots = asyncio.Semaphore(32)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

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
                async with self._slots:
                    response = await self._client.post(url, content=body, headers=headers)
                status = response.status_code
                if status < 500:
                    break
            except httpx.HTTPError as exc:
                log.info("webhook %s attempt %d: %r", url, attempt, exc)
            if attempt < self.attempts:
                await asyncio.sleep(self.first_backoff * 2 ** (attempt - 1))
        self.log.append({"url": url, "status": status, "attempts": attempt})
        return status
