"""Sending email: the ``EmailSender`` port, the SendGrid adapter and an in-memory fake.

An ``EmailSender`` sends one request at a time, all or nothing, and says how a batch is split
into requests (``plan``): the caller sends and retries each request on its own, so a refusal or
a timeout of one request concerns only the messages in it.

``SendGridEmail`` uses the official SDK (``SendGridAPIClient`` and the ``Mail`` helper). One
``/v3/mail/send`` request carries up to 1000 personalizations, one per recipient; each message's
own subject is set on its personalization and its text/html travel as substitutions into a
shared body of two tags, so a batch of differently-rendered asks is still one request. SendGrid
substitutes in subjects too, so the tags are new for each request: a subject or a name that
spells one (``%text%``) is sent as written.
SendGrid caps substitutions at 10,000 bytes per personalization, so a longer message goes in a
request of its own with literal content.

SendGrid keeps ``custom_args`` forever and they cannot be redacted, so they carry only
``ask_id`` and ``partner`` (an ask id holds a keyed hash, never an address).

The SDK is synchronous (urllib), so it runs on a dedicated, bounded
``ThreadPoolExecutor``, one SDK client per thread; ``base_url`` is the SDK's own ``host``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence
from urllib.error import URLError
from urllib.parse import quote

from pydantic import Field, SecretStr
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Content, CustomArg, From, Header, Mail, Personalization, Substitution, To

from contracts.people import Frozen

from .errors import PermanentFailure, ProviderError, RetryLater, classify_sendgrid
from .ratelimit import TokenBucket

MAX_PERSONALIZATIONS = 1000
SUBSTITUTION_LIMIT = 10_000


class EmailMessage(Frozen):
    # The SDK's helper reads a string without "@" as a display name and sends to nobody.
    to: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    subject: str
    text: str
    html: str | None = None
    ask_id: str
    partner: str
    unsubscribe_url: str | None = None


class EmailSender(Protocol):
    def plan(self, batch: Sequence[EmailMessage]) -> list[list[int]]:
        """Indexes of ``batch`` per request: every message in exactly one, each fit for ``send``."""

    async def send(self, request: Sequence[EmailMessage]) -> list[str]:
        """Hand one request (a group of ``plan``) to the provider, all or nothing; return one
        message id per message, in order ("" where accepted without an id).

        Raises ``RetryLater`` or ``PermanentFailure`` for the whole request, and ``ValueError``
        if ``request`` is not one request (empty, too big, mixed kinds).
        """

    def close(self) -> None:
        """Release what the sender holds (threads, connections)."""


@dataclass
class FakeEmail:
    """In-memory ``EmailSender`` splitting as SendGrid does, in requests of ``max_per_request``.

    A request containing ``to`` raises the next error of ``failures[to]`` while any is left, then
    is accepted. ``attempts`` holds the recipients of every request, as the sandbox logs them.
    """

    sent: list[EmailMessage] = field(default_factory=list)
    failures: dict[str, list[ProviderError]] = field(default_factory=dict)
    max_per_request: int = MAX_PERSONALIZATIONS
    attempts: list[list[str]] = field(default_factory=list)

    def plan(self, batch: Sequence[EmailMessage]) -> list[list[int]]:
        return plan_requests(batch, self.max_per_request)

    async def send(self, request: Sequence[EmailMessage]) -> list[str]:
        check_one_request(self, request)
        self.attempts.append([m.to for m in request])
        for message in request:
            if self.failures.get(message.to):
                raise self.failures[message.to].pop(0)
        self.sent.extend(request)
        return [f"fake{len(self.attempts)}"] * len(request)

    def close(self) -> None:
        pass


def plan_requests(batch: Sequence[EmailMessage], limit: int = MAX_PERSONALIZATIONS) -> list[list[int]]:
    """Indexes of ``batch`` per request: ≤``limit`` each, text-only and html mail apart, big ones alone."""
    requests: list[list[int]] = []
    open_: dict[bool, list[int]] = {}
    for i, message in enumerate(batch):
        size = len(message.text.encode()) + len((message.html or "").encode())
        if size > SUBSTITUTION_LIMIT - 100:
            requests.append([i])
            continue
        group = open_.setdefault(message.html is not None, [])
        if not group:
            requests.append(group)
        group.append(i)
        if len(group) == limit:
            open_[message.html is not None] = []
    return requests


def check_one_request(sender: EmailSender, request: Sequence[EmailMessage]) -> None:
    """Refuse what ``sender.plan`` would not send as one request (a caller's bug, not the provider's)."""
    if len(sender.plan(request)) != 1:
        raise ValueError(f"{len(request)} messages are not one request: split them with plan()")


class SendGridEmail:
    """``EmailSender`` on SendGrid. Each message's own ``unsubscribe_url`` (a signed link) goes
    into its ``List-Unsubscribe`` header, with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
    (RFC 8058); ``unsubscribe_url`` here, which may contain ``{ask_id}``, serves messages without one.

    ``max_per_request`` (SendGrid's 1000 by default) only exists so that a test can span several
    requests without thousands of recipients.
    """

    def __init__(
        self,
        api_key: SecretStr,
        *,
        from_email: str,
        from_name: str | None = None,
        base_url: str = "https://api.sendgrid.com",
        unsubscribe_mailto: str | None = None,
        unsubscribe_url: str | None = None,
        workers: int = 4,
        timeout: float = 15.0,
        max_per_request: int = MAX_PERSONALIZATIONS,
        bucket: TokenBucket | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._api_key = api_key
        self._from = From(from_email, from_name)
        self._base_url = base_url
        self._mailto = unsubscribe_mailto
        self._unsub_url = unsubscribe_url
        self._timeout = timeout
        if not 1 <= max_per_request <= MAX_PERSONALIZATIONS:
            raise ValueError(f"max_per_request must be 1 to {MAX_PERSONALIZATIONS}")
        self._max_per_request = max_per_request
        self._bucket = bucket or TokenBucket(None)
        self._now = now
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sendgrid")
        self._local = threading.local()

    def _client(self) -> SendGridAPIClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = SendGridAPIClient(self._api_key.get_secret_value(), host=self._base_url)
            client.client.timeout = self._timeout  # inherited by the per-path clients it builds
            self._local.client = client
        return client

    def _unsubscribe_headers(self, message: EmailMessage) -> dict[str, str]:
        links = []
        if self._mailto:
            links.append(f"<mailto:{self._mailto}?subject=unsubscribe%20{quote(message.ask_id, safe='')}>")
        url = message.unsubscribe_url or (self._unsub_url.format(ask_id=quote(message.ask_id, safe="")) if self._unsub_url else None)
        if url:
            links.append(f"<{url}>")
        headers = {"List-Unsubscribe": ", ".join(links)} if links else {}
        if url:
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
        return headers

    def build_mail(self, messages: Sequence[EmailMessage]) -> Mail:
        """One ``Mail`` for up to 1000 messages of one kind (see ``plan_requests``)."""
        mail = Mail(from_email=self._from)
        literal = len(messages) == 1
        nonce = secrets.token_hex(8)
        text_tag, html_tag = f"%text-{nonce}%", f"%html-{nonce}%"
        has_html = messages[0].html is not None
        mail.add_content(Content("text/plain", messages[0].text if literal else text_tag))
        if has_html:
            mail.add_content(Content("text/html", messages[0].html if literal else html_tag))
        for n, message in enumerate(messages):
            p = Personalization()
            p.add_to(To(message.to))
            p.subject = message.subject
            if not literal:
                p.add_substitution(Substitution(text_tag, message.text))
                if has_html:
                    p.add_substitution(Substitution(html_tag, message.html))
            p.add_custom_arg(CustomArg("ask_id", message.ask_id))
            p.add_custom_arg(CustomArg("partner", message.partner))
            for name, value in self._unsubscribe_headers(message).items():
                p.add_header(Header(name, value))
            mail.add_personalization(p, index=n)  # the helper inserts at 0 by default
        return mail

    def _post(self, mail: Mail) -> str:
        try:
            response = self._client().send(mail)
        except HTTPError as exc:
            raise self._error(exc) from None
        except URLError as exc:  # raised before the request was fully sent
            raise RetryLater(None, None, f"no connection to SendGrid: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:  # after sending: it may have arrived
            raise RetryLater(None, None, f"no answer from SendGrid: {type(exc).__name__}", ambiguous=True) from None
        return response.headers.get("X-Message-Id") or ""  # accepted all the same

    def _error(self, exc: HTTPError) -> ProviderError:
        status = int(exc.status_code)
        try:
            errors = json.loads(exc.body)["errors"]
            reason = "; ".join(str(e.get("message")) for e in errors)
        except (ValueError, KeyError, TypeError, AttributeError):
            reason = str(exc.reason)
        if classify_sendgrid(status) == "permanent":
            return PermanentFailure(str(status), reason)
        after = None
        reset = exc.headers.get("X-RateLimit-Reset") if exc.headers else None
        if reset and reset.isdigit():
            after = max(0.0, int(reset) - self._now())
        return RetryLater(after, str(status), reason)

    def plan(self, batch: Sequence[EmailMessage]) -> list[list[int]]:
        return plan_requests(batch, self._max_per_request)

    async def send(self, request: Sequence[EmailMessage]) -> list[str]:
        check_one_request(self, request)
        mail = self.build_mail(request)
        await self._bucket.acquire()
        message_id = await asyncio.get_running_loop().run_in_executor(self._pool, self._post, mail)
        return [message_id] * len(request)  # SendGrid gives one X-Message-Id per request

    def close(self) -> None:
        """Let the SDK threads go once their request is done (the outbox awaited its sends)."""
        self._pool.shutdown(wait=False)
