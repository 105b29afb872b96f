"""What a provider's refusal means for the ask, decided by pure functions.

::

    ProviderError                 the provider did not take the message; ``code`` says why
    ├── RetryLater(after)         try again later: 429/20429, 5xx, timeouts, connection errors
    └── PermanentFailure(code)    never send this message again (``opted_out`` for 21610)

``classify_twilio`` and ``classify_sendgrid`` hold the rules so that the adapters, the status
callback handlers and the tests share one table.

Twilio 30007 (carrier filtering) is the one code that is neither: a carrier filters on content
*and* on volume, so a later resend sometimes passes but the same text usually does not. It is
retried up to ``CARRIER_FILTER_ATTEMPTS`` attempts in all, then treated as permanent.
"""

from __future__ import annotations

from typing import Literal

from contracts.providers import TWILIO_OPTED_OUT as OPTED_OUT

Verdict = Literal["retry", "permanent", "opted_out"]

CARRIER_FILTERED = 30007
#: Attempts in all (the first send included) before a 30007 is taken as final.
CARRIER_FILTER_ATTEMPTS = 2
#: Codes that no resend can fix: bad or unreachable numbers, landlines, sender set-up errors.
TWILIO_PERMANENT: frozenset[int] = frozenset(
    {21211, 21408, 21606, 21612, 21614, 30003, 30004, 30005, 30006}
)
TWILIO_TOO_MANY_REQUESTS = 20429


class ProviderError(Exception):
    """The provider did not take (or did not deliver) the message.

    ``accepted`` holds the ids of the messages of a batch that *were* accepted before this error,
    in batch order: they must not be sent again.
    """

    def __init__(self, code: str | None, reason: str, accepted: tuple[str, ...] = ()) -> None:
        super().__init__(f"{code}: {reason}" if code else reason)
        self.code = code
        self.reason = reason
        self.accepted = accepted


class RetryLater(ProviderError):
    """Transient: try again, not before ``after`` seconds if the provider said so.

    ``ambiguous`` is True when the request may have reached the provider (a read timeout): a
    retry may then send the message twice, since neither Twilio nor SendGrid takes an
    idempotency key. Callers that must not double-send record the ask as in doubt instead.
    ``attempts`` caps the attempts in all (the first included) for this cause, below the
    caller's own limit (Twilio 30007: ``CARRIER_FILTER_ATTEMPTS``).
    """

    def __init__(
        self,
        after: float | None,
        code: str | None,
        reason: str = "try again later",
        *,
        ambiguous: bool = False,
        accepted: tuple[str, ...] = (),
        attempts: int | None = None,
    ) -> None:
        super().__init__(code, reason, accepted)
        self.after = after
        self.ambiguous = ambiguous
        self.attempts = attempts


class PermanentFailure(ProviderError):
    """Final for this message and address; ``opted_out`` means the person said STOP at the carrier."""

    def __init__(
        self, code: str, reason: str, opted_out: bool = False, *, accepted: tuple[str, ...] = ()
    ) -> None:
        super().__init__(code, reason, accepted)
        self.opted_out = opted_out


def classify_twilio(status: int | None, code: int | None) -> Verdict:
    """What to do after Twilio answered ``status`` with error ``code``.

    ``status`` is None when there was no HTTP answer (timeout, connection error) or when the code
    came from a status callback. A 30007 is "retry": its budget of ``CARRIER_FILTER_ATTEMPTS``
    travels on the ``RetryLater`` (``connectors.providers.sms.twilio_error``).
    """
    if code == OPTED_OUT:
        return "opted_out"
    if code in TWILIO_PERMANENT:
        return "permanent"
    if code == CARRIER_FILTERED or code == TWILIO_TOO_MANY_REQUESTS or status == 429:
        return "retry"
    if status is not None and 400 <= status < 500:
        return "permanent"
    # 5xx, no answer at all, or an unlisted carrier code (30001 queue overflow, 30008 unknown).
    return "retry"


def classify_sendgrid(status: int | None) -> Literal["retry", "permanent"]:
    """What to do after SendGrid answered ``status`` (None: no answer). Only for failures."""
    if status is not None and 200 <= status < 300:
        raise ValueError(f"{status} is not a failure")
    if status is None or status == 429 or status >= 500:
        return "retry"
    return "permanent"
