"""What can go wrong at the sandbox providers, and the seeded dice that decide when it does.

Request-level faults (latency, 429, 5xx, timeouts) apply to both APIs. ``max_concurrent_requests``
is Twilio's account concurrency limit: a Twilio API request arriving while that many are in
flight is answered 429 with error 20429 (0: no limit). Per-address behaviour mirrors what Twilio
and SendGrid really do:

- ``invalid_numbers``   → 400 21211 at create time (Twilio rejects the request)
- ``opted_out_numbers`` → 400 21610 at create time (Twilio blocks after STOP)
- ``landline_numbers``  → 201, then an ``undelivered`` callback with 30006. Twilio does not look
  up line types on send: 30006 is a carrier delivery error reported in the status callback.
- ``carrier_errors``    → 201, then ``undelivered`` with the given code (30003, 30005, 30007…)
- ``bounce_emails`` / ``dropped_emails`` → 202, then a ``bounce`` / ``dropped`` event.
- ``timeout_emails``    → a mail-send request with any of these recipients is a ``timeout``
  (hangs ``timeout_hang_ms``, answers 504, logged as ``timeout``), whatever the dice say: a test
  can time out exactly one request of a batch.
"""

from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal["ok", "429", "5xx", "timeout"]


class Faults(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: int = Field(0, ge=0, le=60_000)
    share_429: float = Field(0.0, ge=0, le=1)
    share_5xx: float = Field(0.0, ge=0, le=1)
    share_timeout: float = Field(0.0, ge=0, le=1)
    #: How long a "timeout" hangs before answering 504: longer than the client waits, but
    #: bounded, so a test's clean-up never waits on it for long.
    timeout_hang_ms: int = Field(5_000, ge=0, le=120_000)
    #: Seconds until the X-RateLimit-Reset a SendGrid 429 announces.
    rate_limit_reset_s: int = Field(1, ge=0, le=3600)
    #: Twilio API requests in flight at once before the next is answered 429 / 20429 (0: no limit).
    max_concurrent_requests: int = Field(0, ge=0, le=10_000)
    #: Delay between successive status callbacks of one message.
    callback_delay_ms: int = Field(20, ge=0, le=60_000)
    invalid_numbers: frozenset[str] = frozenset()
    opted_out_numbers: frozenset[str] = frozenset()
    landline_numbers: frozenset[str] = frozenset()
    carrier_errors: dict[str, int] = {}
    bounce_emails: frozenset[str] = frozenset()
    dropped_emails: frozenset[str] = frozenset()
    timeout_emails: frozenset[str] = frozenset()

    def updated(self, patch: dict) -> "Faults":
        """A validated copy with ``patch`` applied (unknown keys are an error)."""
        return Faults.model_validate({**self.model_dump(), **patch})


class Dice:
    """Seeded decisions, so a test with the same seed and request order sees the same faults."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def outcome(self, faults: Faults) -> Outcome:
        roll = self._rng.random()
        for outcome, share in (("429", faults.share_429), ("5xx", faults.share_5xx), ("timeout", faults.share_timeout)):
            if roll < share:
                return outcome  # type: ignore[return-value]
            roll -= share
        return "ok"

    def server_error(self) -> int:
        return self._rng.choice((500, 503))

    def hex(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))
