"""Posting events to ``POST /v1/events`` as a partner, signed, the way any partner tool does.

Used by ``turnout import``. A 503 (the broker did not acknowledge) is retried after its
Retry-After: posting again is safe, every event becomes a keyed fact.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterator

import httpx

from .signing import headers


def encoded(events: list[dict[str, Any]]) -> bytes:
    """The request body ``post`` sends for ``events``."""
    return json.dumps(events).encode()


def requests(events: list[dict[str, Any]], most: int, limit: int) -> Iterator[range]:
    """``events`` in consecutive runs to post one request each: at most ``most`` events and
    ``limit`` bytes (the web app's ``TURNOUT_MAX_BODY_BYTES``) as ``encoded`` writes them. An event
    larger than ``limit`` alone is a run of its own, which no request can carry."""
    start, size = 0, 0
    for i, n in enumerate(len(encoded([e])) - 2 for e in events):  # "[...]": 2 bytes; ", " between events: 2
        if i > start and (i - start == most or size + 2 + n > limit):
            yield range(start, i)
            start = i
        size = 2 + n if i == start else size + 2 + n
    if start < len(events):
        yield range(start, len(events))


class IngressRefused(Exception):
    """The ingress refused a batch (not 202/422), or kept answering 503; ``response`` is its
    answer (``status`` its code)."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code}: {response.text[:500]}")
        self.status = response.status_code
        self.response = response


class IngressClient:
    def __init__(self, url: str, partner: str, secret: str, *, attempts: int = 5,
                 client: httpx.Client | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = url.rstrip("/") + "/v1/events"
        self.partner = partner
        self._secret = secret
        self._attempts = attempts
        self._http = client or httpx.Client(timeout=30)
        self._sleep = sleep

    def post(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """The ingress's answer (``accepted``, ``duplicates``, ``rejected``) once the broker has the batch."""
        body = encoded(events)
        for attempt in range(1, self._attempts + 1):
            r = self._http.post(self.url, content=body, headers=headers(self.partner, self._secret, body, time.time()))
            if r.status_code in (202, 422):
                return r.json()
            if r.status_code != 503 or attempt == self._attempts:
                raise IngressRefused(r)
            self._sleep(float(r.headers.get("retry-after", "1")))
        raise AssertionError("unreachable")
