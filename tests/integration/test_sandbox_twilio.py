"""The sandbox behaving like a Twilio account, seen through the official SDK and our adapter:
the account's concurrency limit, the per-sender queue, and the Messages list. No broker needed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from pydantic import SecretStr

from connectors.providers import PermanentFailure, RetryLater, TwilioSms
from connectors.sandbox import Faults, SandboxConfig, create_sandbox

from tests.polling import eventually

from .sandboxes import Receiver

pytestmark = pytest.mark.integration

TOKEN = "queue-auth-token"
SID = "AC" + "2" * 32
FROM = "+15005550006"


@pytest.fixture
def sandbox(receiver, serve):
    """``start(sms_mps=…, **faults)`` → the URL of a fresh sandbox whose callbacks reach ``receiver``."""
    def start(sms_mps: float = 0.0, **faults) -> str:
        return serve(create_sandbox(SandboxConfig(
            account_sid=SID, auth_token=SecretStr(TOKEN), status_callback_url=f"{receiver.url}/status",
            seed=11, sms_mps=sms_mps, faults=Faults(callback_delay_ms=5, **faults),
        )))

    return start


def texting(url: str, use, **kw):
    """``await use(sender)`` with a fresh ``TwilioSms`` (From ``FROM`` unless given) in one loop."""

    async def run():
        sender = TwilioSms(SID, SecretStr(TOKEN), base_url=url, **({} if "messaging_service_sid" in kw else {"from_number": FROM}), **kw)
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


def queue(url: str) -> dict:
    return httpx.get(f"{url}/_sandbox/queue").json()


def callbacks(receiver: Receiver) -> list[dict[str, str]]:
    return [receiver.form(r) for r in receiver.at("status")]


def send_all(url: str, texts: list[tuple[str, str, int | None]], **kw) -> list:
    """Hand ``(to, body, validity)`` texts over at API speed, 8 in flight; each result or error."""

    async def use(sender):
        return await asyncio.gather(*(outcome(sender.send(to, body, validity_period=v)) for to, body, v in texts))

    return texting(url, use, concurrency=8, **kw)


def test_texts_are_accepted_at_api_speed_and_leave_at_the_senders_mps(sandbox, receiver):
    url = sandbox(sms_mps=20)
    sent = send_all(url, [(number(n), f"text {n}", None) for n in range(40)])
    assert all(s.sid.startswith("SM") for s in sent)
    eventually(lambda: assert_left(url, 40))
    messages = inbox(url)
    left = sorted(m["left"] for m in messages)
    assert (len(left) - 1) / (left[-1] - left[0]) == pytest.approx(20, rel=0.05)
    # Handed over at API speed: every text was accepted before half of them had left.
    assert max(m["created"] for m in messages) < left[len(left) // 2]
    assert all(m["history"][0]["status"] == "queued" and m["left"] >= m["created"] for m in messages)
    summary = queue(url)
    assert summary["left"] == {"count": 40, "first": left[0], "last": left[-1]}
    assert (summary["sms_mps"], summary["waiting"], summary["expired"]) == (20, 0, 0)

    def all_delivered():
        assert sum(c["MessageStatus"] == "delivered" for c in callbacks(receiver)) == 40
        return True

    eventually(all_delivered)
    # "sent" callbacks follow the queue. Two texts a late wake-up let out together are posted
    # concurrently and may arrive either way round, as Twilio's own callbacks may.
    left_at = {m["id"]: m["left"] for m in messages}
    arrived = [c["MessageSid"] for c in callbacks(receiver) if c["MessageStatus"] == "sent"]
    swapped = [(a, b) for a, b in zip(arrived, arrived[1:]) if left_at[a] > left_at[b]]
    assert all(left_at[a] - left_at[b] < 0.025 for a, b in swapped), [left_at[a] - left_at[b] for a, b in swapped]
    assert sorted(arrived) == sorted(left_at)


def assert_left(url: str, n: int) -> bool:
    assert queue(url)["left"]["count"] == n
    return True


def test_a_text_that_would_wait_beyond_its_validity_fails_with_30036_and_never_leaves(sandbox, receiver):
    url = sandbox(sms_mps=2)  # a slot every 0.5 s
    ahead = send_all(url, [(number(n), "ahead", None) for n in range(4)])  # slots 0, .5, 1, 1.5
    [doomed] = send_all(url, [(number(4), "doomed", 1)])  # would wait ~2 s, may wait 1
    [behind] = send_all(url, [(number(5), "behind", None)])

    def expired():
        assert queue(url)["expired"] == 1 and queue(url)["left"]["count"] == 5
        return True

    eventually(expired)
    messages = {m["id"]: m for m in inbox(url)}
    gone = messages[doomed.sid]
    assert gone["left"] is None and gone["validity_period"] == 1
    assert [(h["status"], h["error_code"]) for h in gone["history"]] == [("queued", None), ("failed", 30036)]
    assert 1.0 <= gone["history"][-1]["at"] - gone["created"] < 1.5  # when its validity ended
    # It took no slot: the text behind it left one slot after the last text ahead.
    assert messages[behind.sid]["left"] - messages[ahead[-1].sid]["left"] == pytest.approx(0.5, abs=0.1)

    def reported():
        assert [(c["MessageStatus"], c.get("ErrorCode")) for c in callbacks(receiver) if c["MessageSid"] == doomed.sid] \
            == [("failed", "30036")]
        return True

    eventually(reported)


def test_a_from_number_refuses_texts_beyond_ten_hours_of_queue_with_21611(sandbox):
    url = sandbox(sms_mps=0.001)  # 10 hours = 36 texts: one leaves at once, 36 wait
    results = send_all(url, [(number(n), "deep", None) for n in range(40)])
    refused = [r for r in results if isinstance(r, (PermanentFailure, RetryLater))]
    assert [r.code for r in refused] == ["21611"] * 3
    assert len(inbox(url)) == 37
    assert queue(url)["waiting"] == 36
    assert sorted(a["outcome"] for a in httpx.get(f"{url}/_sandbox/attempts").json()) == ["21611"] * 3 + ["ok"] * 37


def test_a_messaging_service_accepts_beyond_ten_hours_then_fails_them_with_30001(sandbox, receiver):
    url = sandbox(sms_mps=0.001)
    results = send_all(url, [(number(n), "deep", None) for n in range(40)], messaging_service_sid="MG" + "3" * 32)
    assert all(r.sid.startswith("SM") for r in results)

    def reported():
        got = callbacks(receiver)
        failed = [c for c in got if c["MessageStatus"] == "failed"]
        assert [c["ErrorCode"] for c in failed] == ["30001"] * 3
        # The others joined their sender's queue ("queued"); the first has left already.
        assert sum(c["MessageStatus"] == "queued" for c in got) == 37
        assert sum(c["MessageStatus"] == "delivered" for c in got) == 1
        return {c["MessageSid"] for c in failed}

    overflowed = eventually(reported)
    summary = queue(url)
    assert (summary["overflowed"], summary["waiting"], summary["left"]["count"]) == (3, 36, 1)
    statuses = {m["id"]: [h["status"] for h in m["history"]] for m in inbox(url)}
    assert {sid: statuses[sid] for sid in overflowed} == {sid: ["accepted", "failed"] for sid in overflowed}


def test_find_reads_the_messages_list_to_tell_whether_a_text_was_accepted(sandbox):
    url = sandbox(sms_mps=50)  # queued texts are listed too, before they leave
    since = datetime.now(timezone.utc)
    to, other = number(1), number(2)
    # 60 texts to one number: the oldest is on the list's second page (50 a page).
    bodies = [f"Rally {k}" for k in range(60)]
    sent = send_all(url, [(to, body, None) for body in bodies[:1]])
    sent += send_all(url, [(to, body, None) for body in bodies[1:]] + [(other, "Rally 0", None)])

    async def look(sender):
        return [
            await sender.find(to, "Rally 0", since),   # the oldest: past the first page
            await sender.find(to, "Rally 59", since),  # on the first page
            await sender.find(to, "Rally 60", since),  # never sent
            await sender.find(number(3), "Rally 0", since),  # nothing sent to that number
            await sender.find(to, "Rally 0", since + timedelta(seconds=2)),  # sent before that
        ]

    assert texting(url, look) == [sent[0].sid, sent[59].sid, None, None, None]


def test_the_messages_list_has_twilios_shape_newest_first(sandbox):
    url = sandbox()
    send_all(url, [(number(1), f"text {k}", None) for k in range(3)] + [(number(2), "else", None)])
    newest_first = [m["id"] for m in reversed(inbox(url)) if m["to"] == number(1)]  # the inbox is in arrival order
    auth = (SID, TOKEN)
    listing = f"{url}/2010-04-01/Accounts/{SID}/Messages.json"
    page = httpx.get(listing, params={"To": number(1), "PageSize": 2}, auth=auth).json()
    assert set(page) == {"messages", "page", "page_size", "start", "end", "uri", "first_page_uri",
                         "previous_page_uri", "next_page_uri"}
    assert [m["sid"] for m in page["messages"]] == newest_first[:2]
    assert page["messages"][0]["to"] == number(1) and page["messages"][0]["date_created"]
    rest = httpx.get(url + page["next_page_uri"], auth=auth).json()
    assert [m["sid"] for m in rest["messages"]] == newest_first[2:] and rest["next_page_uri"] is None
    assert httpx.get(listing, params={"To": number(1)}, auth=(SID, "wrong")).status_code == 401
