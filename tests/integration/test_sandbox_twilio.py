"""The sandbox behaving like a Twilio account, seen through the official SDK and our adapter:
the account's concurrency limit, the per-sender queue, and the Messages list. No broker needed."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from connectors.providers import PermanentFailure, RetryLater, TwilioSms
from connectors.sandbox import Faults, SandboxConfig, create_sandbox

from .sandboxes import Receiver, Served, eventually

pytestmark = pytest.mark.integration

TOKEN = "queue-auth-token"
SID = "AC" + "2" * 32
FROM = "+15005550006"


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.served.stop()


@pytest.fixture
def sandbox(receiver):
    """``start(sms_mps=…, **faults)`` → the URL of a fresh sandbox whose callbacks reach ``receiver``."""
    started: list[Served] = []

    def start(sms_mps: float = 0.0, **faults) -> str:
        config = SandboxConfig(
            account_sid=SID, auth_token=SecretStr(TOKEN), status_callback_url=f"{receiver.url}/status",
            seed=11, faults=Faults(callback_delay_ms=5, **faults),
        )
        started.append(Served(create_sandbox(config)))
        return started[-1].url

    receiver.requests.clear()
    yield start
    for served in started:
        served.stop()


def texting(url: str, use, **kw):
    """``await use(sender)`` with a fresh ``TwilioSms`` (From ``FROM`` unless given) in one loop."""

    async def run():
        sender = TwilioSms(SID, SecretStr(TOKEN), base_url=url, **({"from_number": FROM} | kw))
        try:
            return await use(sender)
        finally:
            await sender.aclose()

    return asyncio.run(run())


async def outcome(send):
    try:
        return await send
    except (PermanentFailure, RetryLater) as exc:
        return exc


def inbox(url: str) -> list[dict]:
    return httpx.get(f"{url}/_sandbox/inbox", params={"channel": "sms"}).json()


def number(n: int) -> str:
    return f"+1555127{n:04d}"


def test_requests_beyond_the_concurrency_limit_are_answered_429_with_20429(sandbox):
    url = sandbox(max_concurrent_requests=2, latency_ms=400)

    async def six_at_once(sender):
        return await asyncio.gather(*(outcome(sender.send(number(n), "hi")) for n in range(6)))

    results = texting(url, six_at_once, concurrency=6)
    throttled = [r for r in results if isinstance(r, RetryLater)]
    assert [r.code for r in throttled] == ["20429"] * 4
    assert len(inbox(url)) == 2 == len(results) - len(throttled)
    attempts = httpx.get(f"{url}/_sandbox/attempts").json()
    assert sorted(a["outcome"] for a in attempts) == ["429"] * 4 + ["ok"] * 2
    # The limit counts requests in flight, not requests made: once they are answered, more pass.
    again = texting(url, lambda sender: sender.send(number(7), "hi"))
    assert again.sid.startswith("SM")
