"""Provider rules without a network: what a refusal means, how fast we send, when we retry."""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException

from connectors.providers import (
    FakeEmail,
    FakeSms,
    PermanentFailure,
    RetryLater,
    SendGridEmail,
    TokenBucket,
    classify_sendgrid,
    classify_twilio,
    with_retries,
)
from connectors.providers.email import MAX_PERSONALIZATIONS, EmailMessage, plan_requests
from connectors.providers.errors import CARRIER_FILTER_ATTEMPTS
from connectors.providers.sms import twilio_error


class FakeClock:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(coro):
    return asyncio.run(coro)


async def gather(coros):
    return await asyncio.gather(*coros)


@pytest.mark.parametrize("code", [21211, 21614, 21612, 30003, 30005, 30006, 21408, 21606])
def test_unfixable_twilio_codes_are_permanent(code):
    assert classify_twilio(400, code) == "permanent"
    assert classify_twilio(None, code) == "permanent"  # from a status callback


def test_21610_means_opted_out():
    assert classify_twilio(400, 21610) == "opted_out"


@pytest.mark.parametrize("status, code", [(429, 20429), (429, None), (500, 20500), (503, None), (None, None)])
def test_throttling_server_errors_and_silence_are_retried(status, code):
    assert classify_twilio(status, code) == "retry"


def test_other_client_errors_are_permanent():
    assert classify_twilio(401, 20003) == "permanent"
    assert classify_twilio(400, 21617) == "permanent"


@pytest.mark.parametrize("status, verdict", [(429, "retry"), (500, "retry"), (None, "retry"), (400, "permanent"), (401, "permanent"), (413, "permanent")])
def test_sendgrid_classification(status, verdict):
    assert classify_sendgrid(status) == verdict


def test_sendgrid_success_is_not_classified():
    with pytest.raises(ValueError):
        classify_sendgrid(202)


def test_bucket_spaces_requests_at_the_rate_after_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(10, burst=3, clock=clock, sleep=clock.sleep)

    async def take(n):
        stamps = []
        for _ in range(n):
            await bucket.acquire()
            stamps.append(clock.now)
        return stamps

    stamps = run(take(13))
    assert stamps[:3] == [0, 0, 0]
    assert stamps[-1] == pytest.approx(1.0)  # 10 more at 10/s after a burst of 3


def test_bucket_refills_while_idle_but_never_beyond_burst():
    clock = FakeClock()
    bucket = TokenBucket(5, burst=2, clock=clock, sleep=clock.sleep)
    run(bucket.acquire(2))
    clock.now += 100
    run(bucket.acquire(2))
    assert clock.sleeps == []
    run(bucket.acquire())
    assert clock.sleeps == [pytest.approx(0.2)]


def test_unlimited_bucket_never_waits():
    clock = FakeClock()
    bucket = TokenBucket(None, clock=clock, sleep=clock.sleep)
    run(gather(bucket.acquire() for _ in range(1000)))
    assert clock.sleeps == []


def test_concurrent_waiters_share_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(4, burst=1, clock=clock, sleep=clock.sleep)
    run(gather(bucket.acquire() for _ in range(9)))
    assert clock.now == pytest.approx(2.0)


class Flaky:
    def __init__(self, errors):
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def retry(fn, clock, **kw):
    options = {"attempts": 5, "base": 0.1, "cap": 2.0, "rng": random.Random(1), "sleep": clock.sleep, **kw}
    return run(with_retries(fn, **options))


def test_retries_transient_errors_with_jittered_exponential_backoff():
    clock = FakeClock()
    fn = Flaky([RetryLater(None, "20429")] * 4)
    assert retry(fn, clock) == "ok"
    assert fn.calls == 5
    assert all(0 <= s <= min(2.0, 0.1 * 2**i) for i, s in enumerate(clock.sleeps))


def test_never_retries_a_permanent_failure():
    clock = FakeClock()
    fn = Flaky([PermanentFailure("21610", "opted out", opted_out=True)])
    with pytest.raises(PermanentFailure) as caught:
        retry(fn, clock)
    assert fn.calls == 1 and caught.value.opted_out and clock.sleeps == []


def test_waits_at_least_what_the_provider_asked():
    clock = FakeClock()
    fn = Flaky([RetryLater(1.5, "429")])
    retry(fn, clock, base=0.01)
    assert len(clock.sleeps) == 1 and clock.sleeps[0] >= 1.5


def test_gives_up_when_the_provider_asks_for_longer_than_the_cap():
    clock = FakeClock()
    fn = Flaky([RetryLater(600, "429")])
    with pytest.raises(RetryLater) as caught:
        retry(fn, clock)
    assert caught.value.after == 600 and fn.calls == 1


def test_a_caller_may_wait_out_longer_than_the_cap():
    clock = FakeClock()
    fn = Flaky([RetryLater(600, "429")])
    assert retry(fn, clock, max_wait=math.inf) == "ok"
    assert fn.calls == 2 and clock.sleeps == [600]


def test_reraises_the_last_transient_error_after_the_last_attempt():
    clock = FakeClock()
    fn = Flaky([RetryLater(None, "500")] * 3)
    with pytest.raises(RetryLater):
        retry(fn, clock, attempts=3)
    assert fn.calls == 3 and len(clock.sleeps) == 2


def test_carrier_filtering_is_retried_fewer_times_than_other_transient_errors():
    """A 30007 rarely passes on a resend: it carries its own budget, below the caller's."""
    clock = FakeClock()
    filtered = twilio_error(TwilioRestException(400, "https://api.twilio.com/x", "filtered by the carrier", code=30007))
    fn = Flaky([filtered] * 5)
    with pytest.raises(RetryLater) as caught:
        retry(fn, clock, attempts=5)
    assert fn.calls == CARRIER_FILTER_ATTEMPTS and caught.value.code == "30007"


def test_ambiguous_failures_can_be_left_to_the_caller():
    clock = FakeClock()
    fn = Flaky([RetryLater(None, None, "read timeout", ambiguous=True)])
    with pytest.raises(RetryLater):
        retry(fn, clock, retry_ambiguous=False)
    assert fn.calls == 1


def test_an_email_message_needs_an_address():
    with pytest.raises(ValueError):
        EmailMessage(to="Jane Doe", subject="s", text="t", ask_id="a:p1:email", partner="union-a")


def test_fakes_record_and_fail_on_demand():
    sms = FakeSms(failures={"+15550001111": PermanentFailure("21211", "invalid")})
    sent = run(sms.send("+15550002222", "hi", status_callback="http://x/cb"))
    assert sent.sid.startswith("SM") and sms.sent[0]["to"] == "+15550002222"
    with pytest.raises(PermanentFailure):
        run(sms.send("+15550001111", "hi"))
    email = FakeEmail()
    msg = EmailMessage(to="a@example.org", subject="s", text="t", ask_id="act:pkey:email", partner="union-a")
    assert len(run(email.send([msg, msg]))) == 2


def _mail(i: int, html: bool = False, size: int = 10) -> EmailMessage:
    return EmailMessage(to=f"p{i}@example.org", subject="s", text="x" * size, html="<p>x</p>" if html else None,
                        ask_id=f"act:p{i}:email", partner="union-a")


def test_email_batches_are_planned_as_requests_of_at_most_1000():
    batch = [_mail(i) for i in range(2500)] + [_mail(2500 + i, html=True) for i in range(3)] + [_mail(9999, size=20_000)]
    plan = plan_requests(batch)
    assert sorted(i for request in plan for i in request) == list(range(len(batch)))
    assert max(len(r) for r in plan) == MAX_PERSONALIZATIONS
    assert [len(r) for r in plan].count(1) == 1  # the oversized message goes alone
    assert all(len({batch[i].html is None for i in r}) == 1 for r in plan)
    assert plan_requests(batch[:5], limit=2) == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("sender", [
    FakeEmail(max_per_request=2),
    SendGridEmail(SecretStr("SG.unit"), from_email="asks@coalition.example", base_url="http://127.0.0.1:9", max_per_request=2),
], ids=["fake", "sendgrid"])
def test_an_email_sender_refuses_what_is_not_one_request(sender):
    for request in ([], [_mail(i) for i in range(3)], [_mail(0), _mail(1, html=True)]):
        with pytest.raises(ValueError, match="not one request"):
            run(sender.send(request))
    sender.close()
