"""Sending SMS: the ``SmsSender`` port, the Twilio adapter and an in-memory fake.

``TwilioSms`` uses the official SDK (``Client.messages.create``). The SDK is synchronous
(``requests``), so calls run on a dedicated ``ThreadPoolExecutor`` of ``workers`` threads, never
on the event loop. Dedicated rather than ``asyncio.to_thread``: the default executor is shared
with asyncio's own DNS look-ups and every other library in the worker, and a burst of slow
provider calls must not starve them; the pool size also bounds concurrent requests to Twilio.
Each thread owns its ``Client`` (and so its ``requests.Session``), which is not thread-safe.

``base_url`` points the SDK elsewhere (the sandbox) by rewriting the scheme and host of every
``*.twilio.com`` URL in the SDK's HTTP client; paths, auth and bodies are the SDK's own.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import requests
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from .errors import PermanentFailure, ProviderError, RetryLater, classify_twilio
from .ratelimit import TokenBucket


@dataclass(frozen=True)
class SentSms:
    sid: str
    segments: int


class SmsSender(Protocol):
    async def send(
        self, to: str, body: str, *, status_callback: str | None = None, validity_period: int | None = None
    ) -> SentSms:
        """Hand one message to the provider. Raises ``RetryLater`` or ``PermanentFailure``."""


@dataclass
class FakeSms:
    """In-memory ``SmsSender``. ``failures[to]`` is raised instead of sending to ``to``."""

    sent: list[dict] = field(default_factory=list)
    failures: dict[str, ProviderError] = field(default_factory=dict)

    async def send(
        self, to: str, body: str, *, status_callback: str | None = None, validity_period: int | None = None
    ) -> SentSms:
        if to in self.failures:
            raise self.failures[to]
        sid = f"SMfake{len(self.sent):026d}"
        self.sent.append(
            {"sid": sid, "to": to, "body": body, "status_callback": status_callback, "validity_period": validity_period}
        )
        return SentSms(sid=sid, segments=1)


class RedirectingHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, sending ``https://*.twilio.com/...`` to ``base_url`` instead."""

    def __init__(self, base_url: str, **kwargs) -> None:
        super().__init__(**kwargs)
        target = urlsplit(base_url)
        self._scheme, self._netloc = target.scheme, target.netloc
        if self.session is not None:
            # The SDK sizes its pool for https only; plain-http sandbox traffic needs it too.
            self.session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=4))

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith("twilio.com"):
            url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, parts.fragment))
        return super().request(method, url, *args, **kwargs)


def _reached_provider(exc: requests.RequestException) -> bool:
    """False when the request certainly never arrived (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return not (isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError))


def twilio_error(exc: TwilioRestException, *, attempt: int = 1) -> ProviderError:
    """Map the SDK's exception to ours (``exc.code`` is Twilio's error code, ``exc.status`` HTTP)."""
    code = exc.code if isinstance(exc.code, int) else None
    verdict = classify_twilio(exc.status, code, attempt=attempt)
    reason = str(exc.msg)
    if verdict == "retry":
        return RetryLater(None, str(code or exc.status), reason)
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
        workers: int = 8,
        timeout: float = 10.0,
        bucket: TokenBucket | None = None,
    ) -> None:
        if (messaging_service_sid is None) == (from_number is None):
            raise ValueError("give exactly one of messaging_service_sid and from_number")
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._sender = {"messaging_service_sid": messaging_service_sid} if messaging_service_sid else {"from_": from_number}
        self._base_url = base_url
        self._timeout = timeout
        self._bucket = bucket or TokenBucket(None)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="twilio")
        self._local = threading.local()

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            kwargs = {"timeout": self._timeout}
            http = RedirectingHttpClient(self._base_url, **kwargs) if self._base_url else TwilioHttpClient(**kwargs)
            client = Client(self._account_sid, self._auth_token.get_secret_value(), http_client=http)
            self._local.client = client
        return client

    def _create(self, params: dict) -> SentSms:
        try:
            message = self._client().messages.create(**params)
        except TwilioRestException as exc:
            raise twilio_error(exc) from None
        except requests.RequestException as exc:
            raise RetryLater(None, None, f"no answer from Twilio: {type(exc).__name__}",
                             ambiguous=_reached_provider(exc)) from None
        return SentSms(sid=message.sid, segments=int(message.num_segments or 1))

    async def send(
        self, to: str, body: str, *, status_callback: str | None = None, validity_period: int | None = None
    ) -> SentSms:
        params = {"to": to, "body": body, **self._sender}
        if status_callback:
            params["status_callback"] = status_callback
        if validity_period is not None:
            params["validity_period"] = validity_period
        await self._bucket.acquire()
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._create, params)

    def close(self) -> None:
        """Wait for requests in flight, then release the threads."""
        self._pool.shutdown(wait=True)
