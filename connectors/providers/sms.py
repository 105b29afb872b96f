"""Sending SMS: the ``SmsSender`` port, the Twilio adapter and an in-memory fake.

``TwilioSms`` uses the official SDK's async client (``AsyncTwilioHttpClient``, aiohttp, and the
request ``Client.messages.create_async`` makes): requests run on the event loop, no thread per request. A
semaphore bounds the requests in flight (``concurrency``); nothing paces them: Twilio queues
texts per sender and sends them at the sender's rate itself (README: handing over). The
client's aiohttp session belongs to one event loop, so it is made on the first send, inside
that loop, and closed by ``aclose()``.

``find`` reads Twilio's Messages list (``messages.stream_async``, page by page) to tell whether a
send whose answer was lost was accepted after all: neither Twilio nor we have an idempotency key.

``base_url`` points the SDK elsewhere (the sandbox) by rewriting the scheme and host of every
``*.twilio.com`` URL in the SDK's HTTP client; paths, auth and bodies are the SDK's own.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from twilio.rest.api.v2010.account.message import MessageList

from .errors import CARRIER_FILTER_ATTEMPTS, CARRIER_FILTERED, PermanentFailure, ProviderError, RetryLater, classify_twilio


#: Seconds a request to Twilio may take, unless ``TURNOUT_PROVIDER_TIMEOUT`` says otherwise.
TIMEOUT = 10.0
#: Messages per page when ``find`` reads Twilio's Messages list.
FIND_PAGE_SIZE = 50
#: Seconds an idle connection to the provider may be reused: under the keep-alive of the
#: servers it talks to (uvicorn, the sandbox's: 5 s), so none is reused after the server closed it.
IDLE_REUSE = 2.0


@dataclass(frozen=True)
class SentSms:
    sid: str
    segments: int


class SmsSender(Protocol):
    async def send(
        self, to: str, body: str, *, status_callback: str | None = None, validity_period: int | None = None
    ) -> SentSms:
        """Hand one message to the provider. Raises ``RetryLater`` or ``PermanentFailure``."""

    async def find(self, to: str, body: str, since: datetime) -> str | None:
        """The sid of a message to ``to`` with exactly ``body``, created at or after ``since``
        (timezone-aware), or None: whether a send whose answer was lost was accepted after all.
        Raises ``RetryLater`` or ``PermanentFailure`` when the provider cannot say."""

    async def aclose(self) -> None:
        """Release connections; sends in flight are the caller's to await first."""


@dataclass
class FakeSms:
    """In-memory ``SmsSender``. ``failures[to]`` is raised instead of sending to ``to``;
    ``created[sid]`` is when a message was sent, by ``clock``, for ``find``."""

    sent: list[dict] = field(default_factory=list)
    failures: dict[str, ProviderError] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))
    created: dict[str, datetime] = field(default_factory=dict)

    async def send(
        self, to: str, body: str, *, status_callback: str | None = None, validity_period: int | None = None
    ) -> SentSms:
        if to in self.failures:
            raise self.failures[to]
        sid = f"SMfake{len(self.sent):026d}"
        self.sent.append(
            {"sid": sid, "to": to, "body": body, "status_callback": status_callback, "validity_period": validity_period}
        )
        self.created[sid] = self.clock()
        return SentSms(sid=sid, segments=1)

    async def find(self, to: str, body: str, since: datetime) -> str | None:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        for m in reversed(self.sent):
            if m["to"] == to and m["body"] == body and self.created[m["sid"]] >= since:
                return m["sid"]
        return None

    async def aclose(self) -> None:
        pass


class AsyncHttpClient(AsyncTwilioHttpClient):
    """The SDK's aiohttp client (its documented extension point: ``Client(http_client=...)``)
    with what it lacks or spends for nothing per request: its ``timeout`` applied to every
    request (the SDK's async client stores it but does not pass it on), its log lines formatted
    only when they are logged, no cookie jar (Twilio sets no cookies) and no copy of each request
    and response kept for the SDK's tests; and, given ``base_url``, ``https://*.twilio.com/...``
    sent there instead (the sandbox).

    The SDK's form (a dict) is encoded here (``form_body``), as aiohttp's ``FormData`` would
    encode it but without building one, and the basic-auth header is made once per account:
    those two were about an eighth of the worker's CPU per text (make bench, profiled); the
    rest above saves a few per cent more (the adapter alone, interleaved runs). Same bytes on
    the wire."""

    def __init__(self, base_url: str | None = None, *, timeout: float) -> None:
        super().__init__(timeout=timeout, pool_connections=False)
        # An idle connection is not reused after IDLE_REUSE seconds: a server that closed it
        # meanwhile (uvicorn's keep-alive is 5 s) makes the next text on it "no answer", in doubt.
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(keepalive_timeout=IDLE_REUSE), cookie_jar=aiohttp.DummyCookieJar())
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        target = urlsplit(base_url) if base_url else None
        self._target = (target.scheme, target.netloc) if target else None

    async def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,  # noqa: ANN001
                      allow_redirects=False) -> Response:
        if self._target:
            url = redirected(url, self._target)
        if auth is not None:
            headers = {**(headers or {}), "Authorization": basic_auth(*auth)}
        kwargs = {"method": method.upper(), "url": url, "params": params, "headers": headers, "allow_redirects": allow_redirects,
                  "data": form_body(data) if isinstance(data, dict) and data else data,
                  "timeout": self._timeout if timeout is None else aiohttp.ClientTimeout(total=timeout)}
        logs = self.logger.isEnabledFor(logging.INFO)
        if logs:
            self.log_request(kwargs)
        async with self.session.request(**kwargs) as response:
            text = (await response.read()).decode("utf-8", "replace")  # Twilio answers UTF-8 JSON
        if logs:
            self.log_response(response.status, response)
        return Response(response.status, text, response.headers)


@functools.lru_cache(maxsize=64)  # every text goes to the same URL
def redirected(url: str, target: tuple[str, str]) -> str:
    """``url`` sent to ``target`` (scheme, host) instead when it is Twilio's."""
    parts = urlsplit(url)
    if parts.hostname and parts.hostname.endswith("twilio.com"):
        return urlunsplit((*target, parts.path, parts.query, parts.fragment))
    return url


@functools.lru_cache(maxsize=8)
def basic_auth(login: str, password: str) -> str:
    """The ``Authorization`` header aiohttp would make of ``auth=(login, password)``, once per account."""
    return aiohttp.BasicAuth(login, password).encode()


#: The bytes percent-encoding leaves as they are (``urllib.parse.quote``'s "always safe").
UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
_ESCAPES = [f"%{b:02X}".encode() for b in range(256)]


def escaped(raw: bytes, safe: bytes = UNRESERVED) -> bytes:
    """``raw`` with every byte not in ``safe`` as %XX: what ``quote_from_bytes(raw, safe)``
    returns, with one C-level ``bytes.replace`` per distinct byte to escape (a text has a few)
    instead of a Python-level lookup per byte."""
    unsafe = raw.translate(None, safe)
    if unsafe:
        if 0x25 in unsafe:
            raw = raw.replace(b"%", b"%25")  # first: the escapes below bring their own "%"
        for b in set(unsafe).difference(b"%"):
            raw = raw.replace(bytes((b,)), _ESCAPES[b])
    return raw


def form_body(data: dict[str, object]) -> bytes:
    """The SDK's form parameters as an ``application/x-www-form-urlencoded`` body, byte for byte
    what aiohttp's ``FormData`` makes of the dict (``urlencode(data, doseq=True)``: a list value
    repeats the name; ``quote_plus``: a space as "+"), in a third of ``urlencode``'s time."""
    fields = []
    for name, value in data.items():
        for v in value if isinstance(value, (list, tuple)) else (value,):
            fields.append(b"%s=%s" % (_name(name), _plus(v)))
    return b"&".join(fields)


@functools.lru_cache(maxsize=64)  # the SDK's few names, the same for every text
def _name(name: str) -> bytes:
    return _plus(name)


def _plus(value: object) -> bytes:
    return escaped(str(value).encode(), UNRESERVED + b" ").replace(b" ", b"+")


def _reached_provider(exc: Exception) -> bool:
    """False when the request certainly never arrived (refused, DNS, connect timeout)."""
    return not isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))


def twilio_error(exc: TwilioRestException) -> ProviderError:
    """Map the SDK's exception to ours (``exc.code`` is Twilio's error code, ``exc.status`` HTTP).
    A 30007 is retried, but only ``CARRIER_FILTER_ATTEMPTS`` times in all."""
    code = exc.code if isinstance(exc.code, int) else None
    verdict = classify_twilio(exc.status, code)
    reason = str(exc.msg)
    if verdict == "retry":
        return RetryLater(None, str(code or exc.status), reason, attempts=CARRIER_FILTER_ATTEMPTS if code == CARRIER_FILTERED else None)
    return PermanentFailure(str(code or exc.status), reason, opted_out=verdict == "opted_out")


class TwilioSms:
    """``SmsSender`` on Twilio. Exactly one of ``messaging_service_sid`` and ``from_number``."""

    def __init__(
        self,
        account_sid: str,
        auth_token: SecretStr,
        *,
        messaging_service_sid: str | None = None,
        from_number: str | None = None,
        base_url: str | None = None,
        concurrency: int = 8,
        timeout: float = TIMEOUT,
    ) -> None:
        if (messaging_service_sid is None) == (from_number is None):
            raise ValueError("give exactly one of messaging_service_sid and from_number")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._sender = {"messaging_service_sid": messaging_service_sid} if messaging_service_sid else {"from_": from_number}
        self._base_url = base_url
        self._timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)
        self._http: AsyncHttpClient | None = None
        self._messages: MessageList | None = None

    def _messages_list(self) -> MessageList:
        """The account's Messages resource, made on the first call (inside the event loop: the
        client's aiohttp session belongs to it) and kept: the SDK makes it anew at every
        ``client.messages``."""
        if self._messages is None:
            self._http = AsyncHttpClient(self._base_url, timeout=self._timeout)
            self._messages = Client(self._account_sid, self._auth_token.get_secret_value(), http_client=self._http).messages
        return self._messages

    async def send(
        self, to: str, body: str, *, status_callback: str | None = None, validity_period: int | None = None
    ) -> SentSms:
        params = {"to": to, "body": body, **self._sender}
        if status_callback:
            params["status_callback"] = status_callback
        if validity_period is not None:
            params["validity_period"] = validity_period
        async with self._slots:
            try:
                # The request ``create_async`` makes, without the ``MessageInstance`` it builds of
                # the answer (three RFC 2822 dates parsed, a twentieth of the worker's CPU per text):
                # the sid and the segments are all a send needs.
                message, _, _ = await self._messages_list()._create_async(**params)
            except TwilioRestException as exc:
                raise twilio_error(exc) from None
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise RetryLater(None, None, f"no answer from Twilio: {type(exc).__name__}",
                                 ambiguous=_reached_provider(exc)) from None
        return SentSms(sid=message.get("sid"), segments=int(message.get("num_segments") or 1))

    async def find(self, to: str, body: str, since: datetime) -> str | None:
        """The sid of a message to ``to`` with exactly ``body`` created at or after ``since``, or
        None. Reads Twilio's Messages list for ``to``, newest first, page by page, until the
        messages are older than ``since``. Twilio's ``date_created`` has whole seconds, so a
        message created up to a second before ``since`` also counts (``since`` is rounded down).
        """
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        floor = since.replace(microsecond=0)
        async with self._slots:
            try:
                async for message in await self._messages_list().stream_async(to=to, page_size=FIND_PAGE_SIZE):
                    if message.date_created is not None and message.date_created < floor:
                        return None  # newest first: the rest are older still
                    if message.body == body:
                        return message.sid
            except TwilioRestException as exc:
                raise twilio_error(exc) from None
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise RetryLater(None, None, f"no answer from Twilio: {type(exc).__name__}") from None
        return None

    async def aclose(self) -> None:
        """Close the HTTP session (requests in flight are the caller's to await first)."""
        if self._http is not None:
            await self._http.close()
            self._http = self._messages = None
