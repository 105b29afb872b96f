"""Talking to SMS and email providers: ports, the Twilio and SendGrid adapters, their fakes,
and the rules for what a refusal means (``errors``), how fast to send (``ratelimit``) and when
to try again (``retry``). Nothing here reads configuration: callers pass credentials in."""

from .email import EmailMessage, EmailSender, FakeEmail, SendGridEmail
from .errors import PermanentFailure, ProviderError, RetryLater, classify_sendgrid, classify_twilio
from .ratelimit import TokenBucket
from .retry import with_retries
from .sms import FakeSms, SentSms, SmsSender, TwilioSms

__all__ = [
    "EmailMessage",
    "EmailSender",
    "FakeEmail",
    "FakeSms",
    "PermanentFailure",
    "ProviderError",
    "RetryLater",
    "SendGridEmail",
    "SentSms",
    "SmsSender",
    "TokenBucket",
    "TwilioSms",
    "classify_sendgrid",
    "classify_twilio",
    "with_retries",
]
