"""The outbox: retries, email batches sent request by request and what a final refusal means."""

import asyncio
import random
from collections import Counter
from datetime import datetime, timezone

import pytest
from twilio.base.exceptions import TwilioRestException

from connectors.providers.email import FakeEmail
from connectors.providers.errors import CARRIER_FILTER_ATTEMPTS, PermanentFailure, RetryLater
from connectors.providers.outbox import ProviderOutbox, failure
from connectors.providers.sms import FakeSms, twilio_error
from contracts.asks import AskCommand

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=timezone.utc)


def email(i: int) -> AskCommand:
    return AskCommand(ask_id=f"a:p{i:032x}:email", action_id="a", person_key=f"p{i:032x}", channel="email", partner="u",
                      referral="r", to=f"p{i}@example.org", subject="s", body="b", planned_at=NOW)


def send_emails(sender: FakeEmail, n: int, **retry) -> list:
    """Results of ``n`` email asks (p0…p{n-1}@example.org) sent through an outbox with ``sender``."""
    outbox = ProviderOutbox(FakeSms(), sender, "http://x", base=0.0, rng=random.Random(1), **retry)
    return asyncio.run(outbox.send([email(i) for i in range(n)], lambda ask: None))


def tries(sender: FakeEmail) -> Counter:
    """How many requests each recipient was in."""
    return Counter(to for request in sender.attempts for to in request)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_a_timed_out_email_request_leaves_only_its_asks_in_doubt_and_the_others_are_sent_once(k):
    # Requests of two: [p0 p1] [p2 p3] [p4 p5] [p6]; request k times out after it left. If it
    # were resent, the fake would accept it and the asks would come back sent.
    no_answer = RetryLater(None, None, "no answer from SendGrid", ambiguous=True)
    sender = FakeEmail(max_per_request=2, failures={f"p{2 * k}@example.org": [no_answer]})
    results = send_emails(sender, 7)
    doubted = {i for i in (2 * k, 2 * k + 1) if i < 7}
    assert [i for i, r in enumerate(results) if r.in_doubt] == sorted(doubted)
    assert all(r.ok for i, r in enumerate(results) if i not in doubted)
    assert tries(sender) == Counter(f"p{i}@example.org" for i in range(7))
    assert sorted(m.to for m in sender.sent) == sorted(f"p{i}@example.org" for i in range(7) if i not in doubted)


def test_a_refused_email_request_fails_only_its_asks_and_later_requests_are_still_sent_and_retried():
    sender = FakeEmail(max_per_request=2, failures={
        "p2@example.org": [PermanentFailure("400", "Does not contain a valid address.")],
        "p4@example.org": [RetryLater(None, "503", "internal error")],
    })
    results = send_emails(sender, 7)
    assert [(r.ok, r.error_code, r.in_doubt) for r in results[2:4]] == [(False, "400", False)] * 2
    assert all(r.ok for i, r in enumerate(results) if i not in (2, 3))
    assert tries(sender) == Counter(f"p{i}@example.org" for i in range(7)) + Counter(["p4@example.org", "p5@example.org"])


def test_a_rate_limited_email_request_waits_out_its_reset_beyond_the_cap_and_only_it_is_retried():
    sender = FakeEmail(max_per_request=2, failures={"p2@example.org": [RetryLater(0.05, "429", "too many requests")]})
    results = send_emails(sender, 7, cap=0.01)
    assert all(r.ok for r in results)
    assert tries(sender) == Counter(f"p{i}@example.org" for i in range(7)) + Counter(["p2@example.org", "p3@example.org"])


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
    ok, refused = asyncio.run(outbox.send([ask, bad], lambda a: 600 if a.ask_id == "a:p1:sms" else None))
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
    [result] = asyncio.run(outbox.send([ask], lambda a: None))
    assert sms.sends == CARRIER_FILTER_ATTEMPTS
    assert (result.ok, result.error_code, result.in_doubt) == (False, "30007", False)


class NoMessageId(FakeEmail):
    """SendGrid accepting a request (202) without an X-Message-Id header."""

    async def send(self, request):
        await super().send(request)
        return [""] * len(request)


def test_an_email_accepted_without_a_message_id_counts_as_sent_and_is_not_sent_again():
    sender = NoMessageId()
    results = send_emails(sender, 2)
    assert len(sender.attempts) == 1 and all(r.ok for r in results)
