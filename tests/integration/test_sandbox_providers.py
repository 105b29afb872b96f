"""The official Twilio and SendGrid SDKs, through our adapters, against the sandbox providers;
callbacks checked with the providers' own validators. No broker needed."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import datetime, timezone

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

from connectors.providers import (
    EmailMessage,
    FakeSms,
    PermanentFailure,
    RetryLater,
    SendGridEmail,
    TwilioSms,
    classify_twilio,
    with_retries,
)
from connectors.providers.outbox import ProviderOutbox
from connectors.sandbox import Faults, SandboxConfig, create_sandbox
from connectors.sandbox.signing import SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP
from contracts.asks import AskCommand
from streams.broker import free_port
from tests.polling import eventually

pytestmark = pytest.mark.integration

TOKEN = "integration-auth-token"
SID = "AC" + "1" * 32
SG_KEY = "SG.integration"


@pytest.fixture
def start_sandbox(receiver, serve):
    def start(**faults) -> tuple[str, FastAPI]:
        app = create_sandbox(SandboxConfig(
            account_sid=SID, auth_token=SecretStr(TOKEN), sendgrid_api_key=SecretStr(SG_KEY),
            inbound_url=f"{receiver.url}/inbound", event_webhook_url=f"{receiver.url}/events",
            seed=7, faults=Faults(callback_delay_ms=5, **faults),
        ))
        return serve(app), app

    return start


def sms(base_url: str, **kw) -> TwilioSms:
    return TwilioSms(SID, SecretStr(TOKEN), from_number="+15005550006", base_url=base_url, **kw)


def texting(base_url: str, use, **kw):
    """Run ``await use(sender)`` with a fresh ``TwilioSms`` in one event loop (its HTTP session
    belongs to that loop), closing the sender afterwards."""

    async def run():
        sender = sms(base_url, **kw)
        try:
            return await use(sender)
        finally:
            await sender.aclose()

    return asyncio.run(run())


def outcome(send):
    """What ``send`` returned or the provider error it raised (to await several in one loop)."""

    async def run():
        try:
            return await send
        except (PermanentFailure, RetryLater) as exc:
            return exc

    return run()


def inbox(base_url: str, channel: str) -> list[dict]:
    return httpx.get(f"{base_url}/_sandbox/inbox", params={"channel": channel}).json()


def test_sms_is_accepted_and_lands_in_the_inbox(start_sandbox):
    url, _ = start_sandbox()
    sent = texting(url, lambda sender: sender.send("+15551230001", "Rally at 6pm. Reply YES to RSVP", validity_period=3600))
    assert sent.sid.startswith("SM") and len(sent.sid) == 34 and sent.segments == 1
    [message] = inbox(url, "sms")
    assert message["id"] == sent.sid and message["to"] == "+15551230001"
    assert message["body"].startswith("Rally") and message["validity_period"] == 3600
    count = httpx.get(f"{url}/_sandbox/inbox/count", params={"channel": "sms"}).json()
    assert count == {"count": 1, "first": message["created"], "last": message["created"], "in_flight": 0}
    assert httpx.get(f"{url}/_sandbox/inbox/count", params={"channel": "email"}).json()["count"] == 0


def test_status_callbacks_are_signed_and_tampering_is_detected(start_sandbox, receiver):
    url, _ = start_sandbox(landline_numbers={"+15551230009"})
    callback = f"{receiver.url}/status?ask=rally%3Ap1%3Asms"  # quoted, as the worker's are

    async def both(sender):
        return [await sender.send(to, "hi", status_callback=callback) for to in ("+15551230002", "+15551230009")]

    ok, landline = texting(url, both)

    def statuses():
        got = {}
        for r in receiver.at("status"):
            form = receiver.form(r)
            got.setdefault(form["MessageSid"], []).append((form["MessageStatus"], form.get("ErrorCode")))
        assert len(got.get(ok.sid, [])) == 2 and len(got.get(landline.sid, [])) == 2
        return got

    got = eventually(statuses)
    assert got[ok.sid] == [("sent", None), ("delivered", None)]
    assert got[landline.sid] == [("sent", None), ("undelivered", "30006")]
    assert classify_twilio(None, 30006) == "permanent"
    validator = RequestValidator(TOKEN)
    for r in receiver.at("status"):
        assert r["query"] == "ask=rally%3Ap1%3Asms", "the callback URL arrives as it was signed"
        form = receiver.form(r)
        assert validator.validate(callback, form, r["headers"]["x-twilio-signature"])
        assert not validator.validate(callback, {**form, "MessageStatus": "failed"}, r["headers"]["x-twilio-signature"])
        assert form["AccountSid"] == SID and form["To"] in {"+15551230002", "+15551230009"}


def test_callbacks_are_retried_when_the_receiver_fails(start_sandbox, receiver):
    url, _ = start_sandbox()
    receiver.flaky_failures = 0
    sent = texting(url, lambda sender: sender.send("+15551230003", "hi", status_callback=f"{receiver.url}/flaky"))

    def both_statuses_arrived():
        statuses = [receiver.form(r)["MessageStatus"] for r in receiver.at("flaky")]
        assert statuses == ["sent", "delivered"], statuses
        return True

    eventually(both_statuses_arrived)
    assert receiver.flaky_failures == 2
    assert all(receiver.form(r)["MessageSid"] == sent.sid for r in receiver.at("flaky"))


def test_invalid_and_opted_out_numbers_fail_permanently_with_the_code(start_sandbox):
    url, _ = start_sandbox(invalid_numbers={"+15551239999"}, opted_out_numbers={"+15551238888"})

    async def both(sender):
        return [await outcome(sender.send(to, "hi")) for to in ("+15551239999", "+15551238888")]

    invalid, opted_out = texting(url, both)
    assert isinstance(invalid, PermanentFailure) and isinstance(opted_out, PermanentFailure)
    assert (invalid.code, invalid.opted_out) == ("21211", False)
    assert (opted_out.code, opted_out.opted_out) == ("21610", True)
    assert inbox(url, "sms") == []
    attempts = httpx.get(f"{url}/_sandbox/attempts").json()
    assert [(a["to"], a["outcome"]) for a in attempts] == [(["+15551239999"], "21211"), (["+15551238888"], "21610")]


def test_a_stop_reply_is_signed_and_blocks_later_sends(start_sandbox, receiver):
    url, _ = start_sandbox()
    answer = httpx.post(f"{url}/_sandbox/reply", json={"from": "+15551230004", "body": "STOP"}).json()
    assert answer["receiver_status"] == 200
    [inbound] = receiver.at("inbound")
    form = receiver.form(inbound)
    assert form["Body"] == "STOP" and form["From"] == "+15551230004" and form["NumMedia"] == "0"
    assert RequestValidator(TOKEN).validate(f"{receiver.url}/inbound", form, inbound["headers"]["x-twilio-signature"])
    caught = texting(url, lambda sender: outcome(sender.send("+15551230004", "hi")))
    assert isinstance(caught, PermanentFailure) and caught.opted_out


def test_a_429_and_5xx_storm_still_delivers_every_message_exactly_once(start_sandbox):
    url, _ = start_sandbox(share_429=0.15, share_5xx=0.15)
    rng = random.Random(3)
    calls = Counter()
    numbers = [f"+1555124{n:04d}" for n in range(60)]

    async def send_all(sender):
        async def send_one(to):
            async def attempt():
                calls[to] += 1
                return await sender.send(to, "storm")
            return await with_retries(attempt, attempts=10, base=0.02, cap=0.5, rng=rng)

        return await asyncio.gather(*(send_one(to) for to in numbers))

    sent = texting(url, send_all, concurrency=8)
    messages = inbox(url, "sms")
    assert len(messages) == len(numbers) == len({s.sid for s in sent})
    assert Counter(m["to"] for m in messages) == Counter(numbers)
    assert sum(calls.values()) > len(numbers)  # the storm really happened
    # The attempt log holds every request, in order, with what it was answered.
    attempts = httpx.get(f"{url}/_sandbox/attempts", params={"channel": "sms"}).json()
    assert Counter(a["to"][0] for a in attempts) == calls
    for to in numbers:
        outcomes = [a["outcome"] for a in attempts if a["to"] == [to]]
        assert outcomes[-1] == "ok" and set(outcomes[:-1]) <= {"429", "5xx"}, outcomes


def test_a_client_timeout_is_retry_later_and_marked_ambiguous(start_sandbox):
    url, _ = start_sandbox(share_timeout=1.0, timeout_hang_ms=1500)
    caught = texting(url, lambda sender: outcome(sender.send("+15551230005", "hi")), timeout=0.3)
    assert isinstance(caught, RetryLater) and caught.ambiguous


def test_an_email_request_that_outlives_the_client_timeout_is_ambiguous_and_logged(start_sandbox):
    url, _ = start_sandbox(share_timeout=1.0, timeout_hang_ms=1500)
    sender = SendGridEmail(SecretStr(SG_KEY), from_email="asks@coalition.example", base_url=url, timeout=0.3)
    with pytest.raises(RetryLater) as caught:
        asyncio.run(sender.send(emails(2)))
    sender.close()
    assert caught.value.ambiguous
    assert httpx.get(f"{url}/_sandbox/attempts").json()[0] | {"at": 0} == {
        "channel": "email", "to": ["person0@example.org", "person1@example.org"], "outcome": "timeout", "at": 0}
    assert inbox(url, "email") == []


def test_a_refused_connection_is_retry_later_and_not_ambiguous():
    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens: the request never left
    caught = texting(nobody, lambda sender: outcome(sender.send("+15551230006", "hi")))
    assert isinstance(caught, RetryLater) and not caught.ambiguous


def emails(n: int) -> list[EmailMessage]:
    return [
        EmailMessage(to=f"person{i}@example.org", subject=f"Hearing Tuesday, {i}", text=f"Hi {i}, come testify.",
                     html=f"<p>Hi {i}</p>", ask_id=f"hearing-7:p{i:05d}:email", partner="faith-b")
        for i in range(n)
    ]


def test_a_big_email_batch_is_split_and_its_events_come_back_signed(start_sandbox, receiver):
    url, app = start_sandbox(bounce_emails={"person5@example.org"})
    public_key = httpx.get(f"{url}/_sandbox/sendgrid-public-key").json()["public_key"]
    assert public_key == app.state.sandbox.sendgrid_public_key
    sender = SendGridEmail(SecretStr(SG_KEY), from_email="asks@coalition.example", base_url=url,
                           unsubscribe_mailto="unsubscribe@coalition.example",
                           unsubscribe_url="https://coalition.example/u/{ask_id}")
    batch = emails(1203)

    async def send_all():
        return [await sender.send([batch[i] for i in request]) for request in sender.plan(batch)]

    requests = asyncio.run(send_all())
    sender.close()
    assert [len(r) for r in requests] == [1000, 203]
    assert all(len(set(r)) == 1 for r in requests)  # one X-Message-Id per request
    ids = [i for r in requests for i in r]

    messages = inbox(url, "email")
    assert len(messages) == len(batch)
    first = next(m for m in messages if m["to"] == "person0@example.org")
    assert first["subject"] == "Hearing Tuesday, 0" and first["text"] == "Hi 0, come testify."
    assert first["html"] == "<p>Hi 0</p>"
    assert "mailto:unsubscribe@coalition.example" in first["headers"]["List-Unsubscribe"]
    assert all(set(m["custom_args"]) == {"ask_id", "partner"} for m in messages)

    def events():
        found = [e for r in receiver.at("events") for e in json.loads(r["body"])]
        kinds = Counter(e["event"] for e in found)
        assert kinds == {"processed": 1203, "delivered": 1202, "bounce": 1}, kinds
        return found

    found = eventually(events)
    assert {e["ask_id"] for e in found} == {m.ask_id for m in batch}
    assert all(e["partner"] == "faith-b" and e["sg_message_id"].split(".")[0] in ids for e in found)
    verifier = EventWebhook(public_key)
    for r in receiver.at("events"):
        body, sig, ts = r["body"].decode(), r["headers"][SENDGRID_SIGNATURE.lower()], r["headers"][SENDGRID_TIMESTAMP.lower()]
        assert verifier.verify_signature(body, sig, ts)
        assert not verifier.verify_signature(body.replace("faith-b", "union-a", 1), sig, ts)


def test_sendgrid_refusals_map_to_retry_later_and_permanent_failure(start_sandbox):
    url, _ = start_sandbox()
    sender = SendGridEmail(SecretStr(SG_KEY), from_email="asks@coalition.example", base_url=url)
    # The SDK's helper quietly reads an address without "@" as a display name; this one has an
    # "@" but no domain dot, so it reaches the API, which refuses it.
    bad = EmailMessage(to="nobody@localhost", subject="s", text="t", ask_id="a:p1:email", partner="union-a")
    with pytest.raises(PermanentFailure) as malformed:
        asyncio.run(sender.send([bad]))
    assert malformed.value.code == "400" and "valid address" in malformed.value.reason
    httpx.post(f"{url}/_sandbox/faults", json={"share_429": 1.0, "rate_limit_reset_s": 2}).raise_for_status()
    with pytest.raises(RetryLater) as throttled:
        asyncio.run(sender.send(emails(1)))
    sender.close()
    assert throttled.value.code == "429" and 0 < throttled.value.after <= 2
    assert inbox(url, "email") == []


def email_ask(i: int) -> AskCommand:
    return AskCommand(ask_id=f"hearing-7:p{i:05d}:email", action_id="hearing-7", person_key=f"p{i:05d}", channel="email",
                      partner="faith-b", referral="r", to=f"person{i}@example.org", subject="Hearing Tuesday",
                      body="Come testify.", planned_at=datetime(2026, 11, 24, 20, 0, tzinfo=timezone.utc))


def test_a_timed_out_request_of_an_email_batch_leaves_only_its_recipients_in_doubt(start_sandbox):
    # 2,500 asks are three requests at SendGrid's own 1000 per request: [0, 1000) [1000, 2000)
    # [2000, 2500). Only the middle one holds person1500, whose requests the sandbox hangs. The
    # client timeout is short so the test waits 2 s for it rather than the default 15 s.
    url, _ = start_sandbox(timeout_emails={"person1500@example.org"}, timeout_hang_ms=4000)
    sender = SendGridEmail(SecretStr(SG_KEY), from_email="asks@coalition.example", base_url=url, timeout=2.0)
    asks = [email_ask(i) for i in range(2500)]
    results = asyncio.run(ProviderOutbox(FakeSms(), sender, "http://turnout.example").send(asks, {}))
    sender.close()
    middle = {f"person{i}@example.org" for i in range(1000, 2000)}
    assert [r.in_doubt for r in results] == [ask.to in middle for ask in asks]
    assert all(r.ok for ask, r in zip(asks, results) if ask.to not in middle)
    assert Counter(m["to"] for m in inbox(url, "email")) == Counter(a.to for a in asks if a.to not in middle)
    attempts = httpx.get(f"{url}/_sandbox/attempts", params={"channel": "email"}).json()
    assert sorted((len(a["to"]), a["outcome"]) for a in attempts) == [(500, "ok"), (1000, "ok"), (1000, "timeout")]
    assert {to for a in attempts if a["outcome"] == "timeout" for to in a["to"]} == middle  # tried once, never resent
