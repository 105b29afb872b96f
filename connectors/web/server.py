"""How the web app is served: uvicorn on httptools, with the bounds uvicorn leaves out.

uvicorn closes a keep-alive connection that stays idle after a response
(``timeout_keep_alive``) and caps connections (``limit_concurrency``: 503 beyond), but it
waits for ever for a request's head on a fresh connection, for a body that trickles in, and
lets httptools gather a head of any size. ``BoundedHttpTools`` adds those three bounds to
uvicorn's own httptools protocol (no proxy is needed in front, though one may be):

- the head (request line and headers) must arrive within ``head_timeout`` seconds of the
  connection opening or of the previous response, and be at most ``max_head_bytes`` long
  (else 408 or 431, and the connection is closed);
- the body must arrive within ``body_timeout`` seconds of the head (else the connection is
  closed: the app sees a disconnect, logged at INFO).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    head_timeout: float
    body_timeout: float
    keep_alive: float
    max_head_bytes: int
    max_connections: int

    @classmethod
    def of(cls, s: Settings) -> Limits:
        return cls(s.web_head_timeout, s.web_body_timeout, s.web_keep_alive, s.web_max_head_bytes, s.web_max_connections)


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for the head and the body, and a head size cap."""

    limits: Limits  # set on the subclass ``protocol()`` makes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and self.transport is not None and not self.transport.is_closing():
            # Bytes read while a head is incomplete are head bytes, except in the read where the
            # previous request ended: its split is not known, so that one read is not counted.
            if self._head_began_mid_read:
                self._head_began_mid_read = False
            else:
                self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(431, "request head too large")

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._arm(self.limits.body_timeout, self._body_late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel()
        # What follows is the next request's head, even while this one is being answered.
        self._in_head, self._head_bytes, self._head_began_mid_read = True, 0, True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        idle = not self.pipeline  # else uvicorn starts the next request, whose head is in
        super().on_response_complete()
        if idle and not self.transport.is_closing():
            self._arm(self.limits.head_timeout, self._head_late)

    def _await_head(self) -> None:
        self._in_head, self._head_bytes, self._head_began_mid_read = True, 0, False
        self._arm(self.limits.head_timeout, self._head_late)

    def _head_late(self) -> None:
        if self._head_bytes:
            self._refuse(408, "request head not received in time")
        elif not self.transport.is_closing():
            self.transport.close()  # idle: nothing to say

    def _body_late(self) -> None:
        log.info("closing a connection whose request body did not arrive within %ss", self.limits.body_timeout)
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse(self, status: int, reason: str) -> None:
        self._cancel()
        log.info("refused a request: %s", reason)
        body = reason.encode()
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, _PHRASES[status], len(body), body))
        self.transport.close()

    def _arm(self, seconds: float, then) -> None:
        self._cancel()
        self._deadline = self.loop.call_later(seconds, then)

    def _cancel(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None


_PHRASES = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def protocol(limits: Limits) -> type[BoundedHttpTools]:
    return type("BoundedHttpTools", (BoundedHttpTools,), {"limits": limits})


def config(app, s: Settings, host: str, port: int, **kwargs) -> uvicorn.Config:
    """The uvicorn configuration the web app runs with (``turnout web``, and tests that serve it)."""
    limits = Limits.of(s)
    return uvicorn.Config(
        app, host=host, port=port, http=protocol(limits), timeout_keep_alive=limits.keep_alive,
        limit_concurrency=limits.max_connections, **kwargs,
    )
