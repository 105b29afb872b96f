"""The door page posts check-ins as a client of the partner API: ``POST /v1/events``, signed
with the partner's webhook secret, exactly as a partner's own tool would. It runs the route in
process (httpx's ASGI transport into this same app: every middleware, the signature check, the
validation and the authority checks), so it is no back door: what a partner may not post, the
door page may not either, and a refusal comes back as the API words it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import httpx
from starlette.types import ASGIApp

from connectors.signing import headers


@dataclass(frozen=True)
class Answer:
    """The API's answer: its status, JSON body and Retry-After (if any)."""

    status: int
    body: dict
    retry_after: str | None = None


class Ingress(Protocol):
    async def post(self, partner: str, secret: str, events: list[dict]) -> Answer:
        """Post ``events`` signed as ``partner``."""


class AsgiIngress:
    """The real adapter: the web app's own ``/v1/events``, in process. ``app()`` returns the
    ASGI app (known only once it is built)."""

    def __init__(self, app: Callable[[], ASGIApp], clock: Callable[[], float] = time.time) -> None:
        self._app = app
        self._clock = clock

    async def post(self, partner: str, secret: str, events: list[dict]) -> Answer:
        body = json.dumps(events).encode()
        transport = httpx.ASGITransport(app=self._app())
        async with httpx.AsyncClient(transport=transport, base_url="http://turnout.internal") as client:
            r = await client.post("/v1/events", content=body, headers=headers(partner, secret, body, self._clock()))
        try:
            data = r.json()
        except ValueError:
            data = {"detail": r.text[:200]}
        return Answer(r.status_code, data if isinstance(data, dict) else {"detail": str(data)[:200]}, r.headers.get("retry-after"))
