"""The outbox: retries, partly accepted email batches and what a final refusal means."""

import asyncio
import random
from datetime import datetime, timezone

from twilio.base.exceptions import TwilioRestException

from connectors.providers.errors import CARRIER_FILTER_ATTEMPTS, PermanentFailure, RetryLater
from connectors.providers.outbox import ProviderOutbox, failure
from connectors.providers.sms import FakeSms, twilio_error
from contracts.asks import AskCommand

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=timezone.utc)


def email(i: int) -> AskCommand:
    return AskCommand(ask_id=f"a:p{i:032x}:email", action_id="a", person_key=f"p{i:032x}", channel="email", partner="u",
                      referral="r", to=f"p{i}@example.org", subject="s", body="b", planned_at=NOW)


class FlakyEmail:
    """Accepts the first two messages, then a 429; the next request takes the rest."""

    def __init__(self) -> None:
        self.requests: list[list[str]] = []

    async def send(self, batch):
        self.requests.append([m.to for m in batch])
        if len(self.requests) == 1:
            raise RetryLater(0.0, "429", accepted=("m0", "m1", None))
        return [f"m{len(self.requests)}-{i}" for i in range(len(batch))]


def test_a_partly_accepted_email_batch_is_retried_only_for_the_rest():
    sender = FlakyEmail()
    outbox = ProviderOutbox(FakeSms(), sender, "http://x", base=0.0, rng=random.Random(1))
    results = asyncio.run(outbox.send([email(0), email(1), email(2)], {}))
    assert sender.requests == [["p0@example.org", "p1@example.org", "p2@example.org"], ["p2@example.org"]]
    assert [r.provider_id for r in results] == ["m0", "m1", "m2-0"]


class RateLimitedEmail:
    """Answers the first request with a 429 whose reset is beyond the outbox's cap."""

    def __init__(self, after: float) -> None:
        self.after, self.requests = after, 0

    async def send(self, batch):
        self.requests += 1
        if self.requests == 1:
            raise RetryLater(self.after, "429")
        return [f"m{i}" for i in range(len(batch))]


def test_an_email_batch_waits_out_a_rate_limit_reset_longer_than_the_cap():
    sender = RateLimitedEmail(after=0.05)
    outbox = ProviderOutbox(FakeSms(), sender, "http://x", base=0.0, cap=0.01, rng=random.Random(1))
    results = asyncio.run(outbox.send([email(0), email(1)], {}))
    assert sender.requests == 2 and [r.provider_id for r in results] == ["m0", "m1"]


def test_a_final_refusal_is_failed_with_its_code_or_in_doubt_when_the_provider_may_have_it():
    assert failure("x", PermanentFailure("21610", "opted out", opted_out=True)).model_dump(exclude={"ask_id"}) == {
        "provider_id": None, "error_code": "21610", "error": "opted out", "opted_out": True, "in_doubt": False}
    assert failure("x", RetryLater(None, None, "timeout", ambiguous=True)).in_doubt
    assert failure("x", RetryLater(None, None)).error_code == "retries_exhausted"


def test_texts_carry_their_status_callback_and_a_permanent_refusal_is_not_retried():
    sms = FakeSms(failures={"+15105550199": PermanentFailure("21211", "invalid number")})
    outbox = ProviderOutbox(sms, None, "http://turnout.example/", base=0.0)
    ask = AskCommand(ask_id="a:p1:sms", action_id="a", person_key="p1", channel="sms", partner="u", referral="r",
                     to="+15105550123", body="hi", planned_at=NOW)
    bad = ask.model_copy(update={"ask_id": "a:p2:sms", "to": "+15105550199"})
    ok, refused = asyncio.run(outbox.send([ask, bad], {"a:p1:sms": 600}))
    assert ok.ok and refused.error_code == "21211"
    assert sms.sent == [{"sid": ok.provider_id, "to": "+15105550123", "body": "hi", "validity_period": 600,
                         "status_callback": "http://turnout.example/v1/providers/twilio/status?ask=a%3Ap1%3Asms"}]


class Filtered:
    """Twilio answering 30007 (carrier filtering) to every send."""

    def __init__(self) -> None:
        self.sends = 0

    async def send(self, to, body, **kw):
        self.sends += 1
        raise twilio_error(TwilioRestException(400, "https://api.twilio.com/x", "filtered by the carrier", code=30007))


def test_a_carrier_filtered_text_is_tried_twice_then_failed_with_its_code():
    sms = Filtered()
    outbox = ProviderOutbox(sms, None, "http://x", base=0.0)
    ask = AskCommand(ask_id="a:p1:sms", action_id="a", person_key="p1", channel="sms", partner="u", referral="r",
                     to="+15105550123", body="hi", planned_at=NOW)
    [result] = asyncio.run(outbox.send([ask], {}))
    assert sms.sends == CARRIER_FILTER_ATTEMPTS
    assert (result.ok, result.error_code, result.in_doubt) == (False, "30007", False)


class NoMessageId:
    """SendGrid accepting a batch (202) without an X-Message-Id header."""

    def __init__(self) -> None:
        self.requests = 0

    async def send(self, batch):
        self.requests += 1
        return [""] * len(batch)


def test_an_email_accepted_without_a_message_id_counts_as_sent_and_is_not_sent_again():
    sender = NoMessageId()
    results = asyncio.run(ProviderOutbox(FakeSms(), sender, "http://x", base=0.0).send([email(0), email(1)], {}))
    assert sender.requests == 1 and all(r.ok for r in results)
