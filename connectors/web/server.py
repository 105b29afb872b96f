"""How the web app is served: uvicorn on httptools, with the bounds uvicorn leaves out.

uvicorn closes a keep-alive connection that stays idle after a response
(``timeout_keep_alive``) and caps connections (``limit_concurrency``: 503 beyond), but it
waits for ever for a request's head on a fresh connection, for a body that trickles in, and
lets httptools gather a head of any size. ``BoundedHttpTools`` adds those three bounds to
uvicorn's own httptools protocol (no proxy is needed in front, though one may be):

- the head (request line and headers) must arrive within ``head_timeout`` seconds of the
  connection opening or, on a keep-alive connection, of its first byte (an idle one is closed by
  uvicorn after ``keep_alive``), and be at most ``max_head_bytes`` long
  (else 408 or 431, and the connection is closed). The size is counted twice: the bytes read
  while a head is incomplete (a head that never ends), and the target and header lines the
  parser hands over (a head read whole in one piece, which the first count cannot see end);
- the body must arrive within ``body_timeout`` seconds of the head (else the connection is
  closed: the app sees a disconnect, logged at INFO).

These refusals, uvicorn's own 400 for a request that is not HTTP and its 503 beyond
``limit_concurrency`` (``over_capacity``, in place of uvicorn's plain-text one) have the body and
headers every refusal of the app has: ``{"detail": "…", "errors": []}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

import uvicorn
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from streams.settings import Settings

from .middleware import DATA_POLICY, security_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    head_timeout: float
    body_timeout: float
    keep_alive: float
    max_head_bytes: int
    max_connections: int
    https: bool = False  # the refusals below then carry HSTS, as the app's answers do

    @classmethod
    def of(cls, s: Settings) -> Limits:
        return cls(s.web_head_timeout, s.web_body_timeout, s.web_keep_alive, s.web_max_head_bytes, s.web_max_connections, s.https)


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for the head and the body, and a head size cap."""

    limits: Limits  # set on the subclass ``protocol()`` makes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_too_large = False
        self._idle = False
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._idle:  # the next request begins on a keep-alive connection: its head has a deadline
            self._idle = False
            self._arm(self.limits.head_timeout, self._head_late)
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

    def on_message_begin(self) -> None:
        self._parsed_head = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_parsed(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count_parsed(self, n: int) -> None:
        self._parsed_head += n
        if self._parsed_head > self.limits.max_head_bytes:
            # Stops the parser before the head completes, so no app sees the request; uvicorn
            # answers a parser stop with ``send_400_response``, which says 431 instead.
            self._head_too_large = True
            raise HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self._refuse(431, "request head too large")
        else:
            self._refuse(400, msg)

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
        self._idle = idle and not self.transport.is_closing()

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
        body = json.dumps({"detail": reason, "errors": []}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), (b"connection", b"close"),
                   *security_headers(self.limits.https), (b"content-security-policy", DATA_POLICY.encode())]
        self.transport.write(b"HTTP/1.1 %d %s\r\n%s\r\n%s" % (status, _PHRASES[status], b"".join(b"%s: %s\r\n" % h for h in headers), body))
        self.transport.close()

    def _arm(self, seconds: float, then) -> None:
        self._cancel()
        self._deadline = self.loop.call_later(seconds, then)

    def _cancel(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None


def over_capacity(https: bool):  # noqa: ANN201 - an ASGI app
    """What a request gets beyond ``TURNOUT_WEB_MAX_CONNECTIONS``: a 503 like every refusal."""
    body = json.dumps({"detail": "too many connections to the web app at once: try again in a moment", "errors": []}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), (b"connection", b"close"),
               (b"retry-after", b"1"), *security_headers(https), (b"content-security-policy", DATA_POLICY.encode())]

    async def refuse(scope, receive, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return refuse


class HeadTooLarge(Exception):
    """Raised from a parser callback: the head passed ``max_head_bytes``."""


_PHRASES = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def protocol(limits: Limits) -> type[BoundedHttpTools]:
    return type("BoundedHttpTools", (BoundedHttpTools,), {"limits": limits})


def config(app, s: Settings, host: str, port: int, **kwargs) -> uvicorn.Config:
    """The uvicorn configuration the web app runs with (``turnout web``, and tests that serve it)."""
    limits = Limits.of(s)
    httptools_impl.service_unavailable = over_capacity(limits.https)  # what uvicorn answers beyond limit_concurrency
    return uvicorn.Config(
        app, host=host, port=port, http=protocol(limits), timeout_keep_alive=limits.keep_alive,
        limit_concurrency=limits.max_connections, **kwargs,
    )
