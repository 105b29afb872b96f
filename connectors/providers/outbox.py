"""The outbox the send agent calls (``agents.outreach.agents.Outbox``): SMS through an
``SmsSender``, email through an ``EmailSender``, each with retries, one result per ask.

SMS are never retried after an ambiguous failure (a timeout after the request left): neither
provider takes an idempotency key, so such an ask is reported in doubt instead of risking a
second text. Emails go in requests (the sender's ``plan``, up to 1000 each), each sent and retried
on its own: a refused or timed-out request fails, or leaves in doubt, only its own asks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import Awaitable, Callable, Iterator, Sequence

from contracts.asks import AskCommand, SendResult

from streams import metrics
from streams.settings import Settings

from .email import EmailMessage, EmailSender, SendGridEmail
from .errors import ProviderError, RetryLater
from .ratelimit import TokenBucket
from .retry import with_retries
from .sms import TIMEOUT as SMS_TIMEOUT, SmsSender, TwilioSms, escaped

log = logging.getLogger(__name__)

#: How far the worker's clock and Twilio's may disagree when a text a dead worker handed over is
#: looked up. Its body is its ask's own (its signed link); at worst an identical text sent that much
#: earlier, for another action, is taken for it: a text not sent, never one sent twice.
CLOCK_SKEW = timedelta(minutes=10)


async def _ours(ask: AskCommand) -> bool:
    return True


class ProviderOutbox:
    def __init__(self, sms: SmsSender, email: EmailSender, public_url: str, *, attempts: int = 8,
                 base: float = 0.2, cap: float = 20.0, rng: random.Random | None = None, concurrency: int = 0,
                 answered_within: float = 0.0) -> None:
        self.sms, self.email = sms, email
        #: How long after it was sent a text's request may still be answered (the SMS sender's
        #: timeout): a dead worker's texts are looked up no sooner (``recover``).
        self.answered_within = answered_within
        # Texts in flight (0: the sender's own bound only). Held here, not only in the sender, so
        # that a text is checked (``wanted``, ``validity``) once it has its slot, right before
        # its request, not when its chunk was handed over: a chunk waits for slots a while.
        self.slots = asyncio.Semaphore(concurrency) if concurrency else None
        self.callback = public_url.rstrip("/") + "/v1/providers/twilio/status?ask="
        self.retry = dict(attempts=attempts, base=base, cap=cap, rng=rng or random.Random())
        self.replies: set[asyncio.Task] = set()

    async def send(self, asks: Sequence[AskCommand], validity: Callable[[AskCommand], int | None],
                   wanted: Callable[[AskCommand], bool] = lambda ask: True, ours: Callable[[AskCommand], Awaitable[bool]] = _ours) -> list[SendResult]:
        """One result per ask handed over; an ask that ``ours`` or ``wanted`` refuses right
        before its request is not sent and has none (``agents.outreach.agents.Outbox``)."""
        texts = [self._text(a, validity, wanted, ours) for a in asks if a.channel == "sms"]
        results = [r for r in await asyncio.gather(*texts) if r is not None]
        emails = [a for a in asks if a.channel == "email" and await ours(a) and wanted(a)]
        return results + await self._emails(emails)

    async def recover(self, orphans: Sequence[tuple[AskCommand, datetime]]) -> list[SendResult | None]:
        """Twilio lists the messages it has for a number: a text found there with this body,
        created since the mark (by the system clock, give or take ``CLOCK_SKEW``), was handed
        over by the worker that died. Its last requests may still be with Twilio (a slow
        answer): the look-ups wait ``answered_within`` first, from now, since it died before now
        (an outside probe: a provider answering in 20 s, a dead worker's texts were looked up
        after 8 and sent again). Email has no such lookup: in doubt."""
        if self.answered_within and any(ask.channel == "sms" for ask, _ in orphans):
            await asyncio.sleep(self.answered_within)
        return [await self._recover(ask, since) for ask, since in orphans]

    async def _recover(self, ask: AskCommand, since: datetime) -> SendResult | None:
        if ask.channel != "sms":
            return SendResult(ask_id=ask.ask_id, error="its worker stopped mid-send", in_doubt=True)
        try:
            sid = await self.sms.find(ask.to, ask.body, since - CLOCK_SKEW)
        except ProviderError as exc:
            return SendResult(ask_id=ask.ask_id, error=f"could not check with Twilio: {exc.reason}", in_doubt=True)
        return None if sid is None else SendResult(ask_id=ask.ask_id, provider_id=sid)

    def reply(self, to: str, body: str) -> None:
        task = asyncio.ensure_future(self._reply(to, body))
        self.replies.add(task)
        task.add_done_callback(self.replies.discard)

    async def _reply(self, to: str, body: str) -> None:
        try:
            await with_retries(lambda: self.sms.send(to, body), **self.retry, retry_ambiguous=False)
        except ProviderError as exc:
            log.warning("reply not sent: %s", exc.code)

    async def test(self, channel: str, to: str, subject: str | None, body: str, sponsor: str, request_id: str) -> str | None:
        """One test message to ``to`` (the organizer's own): no status callback, and an email
        whose ``ask_id`` is no ask's (``test:<request id>``), so its events are skipped as not
        ours. Two attempts: the organizer is waiting. ``None`` if accepted, else the reason."""
        retry = {**self.retry, "attempts": 2, "cap": 2.0}
        try:
            if channel == "sms":
                await with_retries(lambda: self.sms.send(to, body), **retry, retry_ambiguous=False)
            else:
                message = EmailMessage(to=to, subject=subject or "", text=body, ask_id=f"test:{request_id}", partner=sponsor)
                await with_retries(lambda: self.email.send([message]), **retry, retry_ambiguous=False)
        except ProviderError as exc:
            return f"refused by the provider ({exc.code or 'no answer'})"
        except ValueError:  # an address the provider's message cannot take
            return "not an address the provider can send to"
        return None

    async def aclose(self) -> None:
        await asyncio.gather(*self.replies)
        await self.sms.aclose()
        self.email.close()

    async def _text(self, ask: AskCommand, validity: Callable[[AskCommand], int | None],
                    wanted: Callable[[AskCommand], bool], ours: Callable[[AskCommand], Awaitable[bool]]) -> SendResult | None:
        async def once():
            async with self.slots or nullcontext():
                if not (await ours(ask) and wanted(ask)):
                    return None
                with timed("twilio"):
                    return await self.sms.send(ask.to, ask.body, status_callback=self.callback + escaped(ask.ask_id.encode()).decode(),
                                               validity_period=validity(ask))

        try:
            sent = await with_retries(once, **self.retry, retry_ambiguous=False)
        except ProviderError as exc:
            return failure(ask.ask_id, exc)
        return None if sent is None else SendResult(ask_id=ask.ask_id, provider_id=sent.sid)

    async def _emails(self, asks: list[AskCommand]) -> list[SendResult]:
        if not asks:
            return []
        messages = [EmailMessage(to=a.to, subject=a.subject or "", text=a.body, ask_id=a.ask_id, partner=a.partner,
                                 unsubscribe_url=a.unsubscribe_url) for a in asks]
        plan = self.email.plan(messages)
        # Requests run concurrently; the sender bounds how many are in flight (SendGridEmail:
        # its thread pool).
        done = await asyncio.gather(*(self._email_request([asks[i] for i in r], [messages[i] for i in r]) for r in plan))
        results = {i: result for request, part in zip(plan, done) for i, result in zip(request, part)}
        return [results[i] for i in range(len(asks))]

    async def _email_request(self, asks: list[AskCommand], messages: list[EmailMessage]) -> list[SendResult]:
        """Send one request until it is accepted or refused for good; one result per ask."""
        async def once() -> list[str]:
            with timed("sendgrid"):
                return await self.email.send(messages)

        try:
            # A request waits out SendGrid's X-RateLimit-Reset, however long: failing it
            # instead would fail every ask in it.
            ids = await with_retries(once, **self.retry, retry_ambiguous=False, max_wait=math.inf)
        except ProviderError as exc:
            return [failure(a.ask_id, exc) for a in asks]
        return [SendResult(ask_id=a.ask_id, provider_id=mid) for a, mid in zip(asks, ids)]


@contextmanager
def timed(provider: str) -> Iterator[None]:
    """Time a provider request and count its refusal (by code) if it raises one."""
    start = time.perf_counter()
    try:
        yield
    except ProviderError as exc:
        metrics.PROVIDER_ERRORS.labels(provider, exc.code or "no_answer").inc()
        raise
    finally:
        metrics.child(metrics.PROVIDER_SECONDS, provider).observe(time.perf_counter() - start)


def failure(ask_id: str, exc: ProviderError) -> SendResult:
    """What a refusal that ended the retries means for the ask: in doubt if the provider may
    have the message (never resent), else failed with the provider's code."""
    if isinstance(exc, RetryLater) and exc.ambiguous:
        return SendResult(ask_id=ask_id, error=exc.reason, in_doubt=True)
    code = exc.code or ("retries_exhausted" if isinstance(exc, RetryLater) else None)
    return SendResult(ask_id=ask_id, error_code=code, error=exc.reason, opted_out=getattr(exc, "opted_out", False))


def outbox_from(s: Settings) -> ProviderOutbox:
    """Real adapters from settings (pointed at the sandbox when its URLs are set)."""
    timeout = {"timeout": s.provider_timeout} if s.provider_timeout else {}  # else each adapter's default
    sms = TwilioSms(
        s.twilio_account_sid, s.twilio_auth_token,
        messaging_service_sid=s.twilio_messaging_service_sid, from_number=None if s.twilio_messaging_service_sid else s.twilio_from,
        base_url=s.twilio_base_url, concurrency=s.send_concurrency, **timeout,
    )
    email = SendGridEmail(
        s.sendgrid_api_key, from_email=s.sendgrid_from, base_url=s.sendgrid_base_url or "https://api.sendgrid.com",
        bucket=TokenBucket(s.email_rate or None), **timeout,  # each ask carries its own signed unsubscribe link
    )
    return ProviderOutbox(sms, email, s.public_url, concurrency=s.send_concurrency, answered_within=s.provider_timeout or SMS_TIMEOUT)
