"""The sandbox providers: one local HTTP server that speaks enough of Twilio's and SendGrid's
APIs for their official SDKs to work unchanged, records what it accepted, posts signed
callbacks back, and misbehaves on request. Of Twilio: create a Message (``twilio_api``), list
Messages newest first (``twilio_list``, what ``TwilioSms.find`` reads); of SendGrid: mail send.

``create_sandbox(config)`` builds the FastAPI app; ``app.state.sandbox`` is the ``Sandbox``
(inbox, faults, ``sendgrid_public_key``). Sandbox-only endpoints live under ``/_sandbox``:

- ``GET|DELETE /_sandbox/inbox``          what was accepted (``?channel=sms|email``) / forget it
                                          (and the counts below; texts still queued stay queued).
                                          A text also has ``validity_period`` (s or null) and
                                          ``left`` / ``left_at`` (when it left its queue; null
                                          until then, and for good if it failed in the queue)
- ``GET /_sandbox/inbox/count``           how many were accepted and when the first and last were
                                          (``?channel=``; cheap enough to poll, unlike the inbox),
                                          and ``in_flight``: Twilio API requests being answered
- ``GET /_sandbox/queue``                 the SMS queues, cheap to poll: ``{"sms_mps", "waiting",
                                          "left": {"count", "first", "last"}, "expired",
                                          "overflowed"}``: texts waiting; texts that left and the
                                          first and last ``left`` stamps; failed with 30036
                                          (validity) and with 30001 (Messaging Service overflow)
- ``GET /_sandbox/attempts``              every send request in arrival order: its recipients and
                                          what it was answered (``ok``, ``429``, ``5xx``, ``timeout``
                                          or the refusal's code, ``21611`` included), so a test can
                                          tell a retried 429 from a resent permanent failure
                                          (``?channel=``)
- ``GET|POST /_sandbox/faults``           current faults / change some of them (JSON patch)
- ``POST /_sandbox/reply``                ``{"from", "body", "to"?}`` → signed inbound-SMS webhook
- ``GET /_sandbox/sendgrid-public-key``   the event-webhook verification key (base64 DER)
- ``GET /_sandbox/callbacks``             recent webhook deliveries and how they went, how many wait and how many were given up on

Twilio's queue (``SandboxConfig.sms_mps``; ``turnout sandbox --sms-mps``): with an MPS > 0 each
sender (From number, or Messaging Service) lets its texts out at that rate; a text that would
wait longer than its ``ValidityPeriod`` fails with 30036 when the validity ends; a queue holding
10 hours of MPS refuses a From-number text with 21611, or accepts a Messaging Service text and
fails it with 30001. ``Faults.max_concurrent_requests`` answers 429 / 20429 to Twilio API
requests beyond that many in flight. See ``queue`` and ``twilio_status``.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .callbacks import Poster
from .control import control_router
from .faults import Dice, Faults, Outcome
from .queue import VALIDITY_EXPIRED, SenderQueues
from .sendgrid_api import sendgrid_router
from .signing import EventSigner
from .twilio_api import form_request, twilio_router
from .twilio_list import twilio_list_router
from .twilio_status import fail, leave


class SandboxConfig(BaseModel):
    """Everything the sandbox needs; nothing is read from the environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_sid: str = "AC" + "0" * 32
    auth_token: SecretStr = SecretStr("sandbox-auth-token")
    sendgrid_api_key: SecretStr = SecretStr("SG.sandbox-api-key")
    #: Where Twilio callbacks go when a message has no StatusCallback (a Messaging Service's).
    status_callback_url: str | None = None
    inbound_url: str | None = None
    event_webhook_url: str | None = None
    #: The sandbox account's number: From of Messaging Service sends, To of simulated replies.
    sender_number: str = "+15005550006"
    #: From numbers the account owns (21606 for others); empty accepts any.
    twilio_numbers: frozenset[str] = frozenset()
    seed: int = 0
    #: Texts per second each sender's queue lets out (a float: tests use tiny rates); 0: no
    #: queue, every text leaves when it is accepted.
    sms_mps: float = Field(0.0, ge=0)
    faults: Faults = Faults()
    callback_attempts: int = Field(4, ge=1, le=10)
    callback_timeout_s: float = Field(5.0, gt=0, le=60)
    #: PEM of a P-256 key to sign SendGrid events with; a fresh key per start when unset.
    sendgrid_private_key_pem: SecretStr | None = None


class Sandbox:
    """The sandbox's state: what it accepted, how it misbehaves, how it signs."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.faults = config.faults
        self.dice = Dice(config.seed)
        pem = config.sendgrid_private_key_pem
        self.signer = EventSigner(pem.get_secret_value().encode() if pem else None)
        self.poster = Poster(config.callback_attempts, config.callback_timeout_s)
        self.inbox: list[dict] = []
        self.attempts: list[dict] = []
        #: Per channel: how many accepted, first and last ``created`` stamps (for polling).
        self.counts: dict[str, dict] = {}
        self.by_sg_id: dict[str, dict] = {}
        #: Texts by recipient, oldest first, for the Messages list.
        self.sms_by_to: dict[str, list[dict]] = {}
        #: Numbers that texted STOP (and not START since): Twilio itself blocks them with 21610.
        self.opted_out: set[str] = set()
        #: Twilio API requests being answered right now (for ``Faults.max_concurrent_requests``).
        self.requests_in_flight = 0
        self.queues = SenderQueues(config.sms_mps, leave=lambda record: leave(self, record),
                                   expire=lambda record: fail(self, record, VALIDITY_EXPIRED))
        #: Texts that left (how many, first and last ``left`` stamps) and that failed in the
        #: queue (by error code), for ``GET /_sandbox/queue``.
        self.left: dict = {"count": 0, "first": None, "last": None}
        self.queue_failures: dict[int, int] = {}

    @property
    def sendgrid_public_key(self) -> str:
        return self.signer.public_key

    async def misbehave(self, channel: str, to: list[str]) -> Outcome:
        """Apply latency and roll for a fault; a ``timeout`` has already hung when this returns.
        Faults are logged as attempts here; the caller logs the others once it has answered."""
        faults = self.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        outcome: Outcome = "timeout" if channel == "email" and faults.timeout_emails.intersection(to) else self.dice.outcome(faults)
        if outcome != "ok":
            self.attempt(channel, to, outcome)
        if outcome == "timeout":
            await asyncio.sleep(faults.timeout_hang_ms / 1000)
        return outcome

    def enter_request(self) -> bool:
        """Count a Twilio API request in, unless the account's concurrency limit is reached."""
        limit = self.faults.max_concurrent_requests
        if limit and self.requests_in_flight >= limit:
            return False
        self.requests_in_flight += 1
        return True

    def leave_request(self) -> None:
        self.requests_in_flight -= 1

    def attempt(self, channel: str, to: list[str], outcome: str) -> None:
        """Log one send request and what it was answered (a ``timeout`` is logged as it starts to hang)."""
        self.attempts.append({"channel": channel, "to": to, "outcome": outcome, "at": time.time()})

    def record(self, *, channel: str, id: str, to: str, sender: str, status: str, **fields) -> dict:
        now = time.time()
        entry = {
            "channel": channel, "id": id, "to": to, "from": sender, "status": status, "created": now,
            "created_at": datetime.fromtimestamp(now, timezone.utc).isoformat(),
            "history": [{"status": status, "at": now, "error_code": None}], **fields,
        }
        self.inbox.append(entry)
        count = self.counts.setdefault(channel, {"count": 0, "first": now, "last": now})
        count["count"] += 1
        count["last"] = now
        if "sg_message_id" in fields:
            self.by_sg_id[fields["sg_message_id"]] = entry
        if channel == "sms":
            self.sms_by_to.setdefault(to, []).append(entry)
        return entry

    def mark_left(self, entry: dict) -> None:
        now = time.time()
        entry["left"], entry["left_at"] = now, datetime.fromtimestamp(now, timezone.utc).isoformat()
        left = self.left
        left["count"] += 1
        left["first"] = left["first"] or now
        left["last"] = now

    def mark_failed(self, code: int) -> None:
        self.queue_failures[code] = self.queue_failures.get(code, 0) + 1

    def forget(self) -> None:
        """Forget what was accepted and how it went (what still waits in a queue stays there)."""
        for seen in (self.inbox, self.attempts, self.counts, self.by_sg_id, self.sms_by_to, self.queue_failures):
            seen.clear()
        self.left = {"count": 0, "first": None, "last": None}

    def set_status(self, entry: dict, status: str, error_code: int | None) -> None:
        entry["status"] = status
        entry["error_code"] = error_code
        entry["history"].append({"status": status, "at": time.time(), "error_code": error_code})

    async def post_form(self, url: str, params: dict[str, str]) -> int | None:
        body, headers = form_request(self.config.auth_token.get_secret_value(), url, params)
        return await self.poster.post(url, body=body, headers=headers)

    async def post_events(self, events: list[dict]) -> int | None:
        url = self.config.event_webhook_url
        if not url or not events:
            return None
        body = json.dumps(events, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **self.signer.headers(body, int(time.time()))}
        return await self.poster.post(url, body=body, headers=headers)


def create_sandbox(config: SandboxConfig | None = None) -> FastAPI:
    sb = Sandbox(config or SandboxConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await sb.poster.start()
        try:
            yield
        finally:
            await sb.queues.stop()
            await sb.poster.stop()

    app = FastAPI(title="turnout sandbox providers", lifespan=lifespan)
    app.state.sandbox = sb
    app.include_router(twilio_router(sb))
    app.include_router(twilio_list_router(sb))
    app.include_router(sendgrid_router(sb))
    app.include_router(control_router(sb))
    return app
