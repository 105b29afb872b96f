"""Outreach at real settings: asks handed over at API speed into the sandbox's Twilio queue
(``turnout sandbox --sms-mps``), which lets texts out at the sender's pace, expires those that
wait past their ValidityPeriod (30036) and calls back in queue order. Real workers, real SDKs."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from tests.factories import phone
from tests.polling import eventually
from tests.integration.test_outreach import person, rapid, rows, signups_seen, sms_to

pytestmark = pytest.mark.integration


def queue(stack) -> dict:
    r = stack.http.get(f"{stack.settings.sandbox_url}/_sandbox/queue")
    r.raise_for_status()
    return r.json()


def left(stack, title: str) -> Counter:
    """Texts that left the sandbox's queue (were "sent"), per recipient."""
    return Counter(m["to"] for m in stack.inbox("sms") if title in m["body"] and m["left"] is not None)


def state(stack, totals: dict) -> str:
    """What a failed fan-out left behind, in full (pytest would shorten a dict)."""
    callbacks = stack.http.get(f"{stack.settings.sandbox_url}/_sandbox/callbacks").json()
    statuses = Counter(m["status"] for m in stack.inbox("sms"))
    return (f"tallies {totals}; sandbox: texts by status {dict(statuses)}, queue {queue(stack)}, "
            f"callbacks pending {callbacks['pending']}, given up {callbacks['given_up']}")


@pytest.mark.timeout(900)  # the queue alone takes 100 s; a loaded machine needs more for the rest
def test_a_fan_out_at_the_senders_pace_texts_everyone_once_through_a_join_and_a_kill(make_stack):
    """2,000 people, texts leaving at 20/s (100 s): a second worker joins and then the first is
    SIGKILLed while asks are still being handed over. Hand-over is slowed (4 requests in flight,
    40 ms each) so that both land in the middle of it. The clock runs, as it does in production:
    an ask a worker cannot open yet (it has just joined) waits a minute."""
    n = 2000
    stack = make_stack(outreach=True, partners=("backbone", "union-a"), sms_rate=20, send_concurrency=4)
    stack.run_clock()
    stack.start_sandbox('{"latency_ms": 40}', sms_mps=20)
    stack.start_web()
    first = stack.start_worker()
    stack.post_all("union-a", [person(i) for i in range(n)])
    eventually(lambda: signups_seen(stack, n), timeout=180)

    assert stack.post("backbone", [rapid("surge", "Surge vigil", ["94607"])]).status_code == 202
    eventually(lambda: stack.inbox_count("sms") >= 200, timeout=120)
    stack.start_worker()
    eventually(lambda: stack.inbox_count("sms") >= 900, timeout=180)
    assert stack.inbox_count("sms") < n, "the hand-over finished before the kill: nothing was tested"
    stack.stop(first, signal.SIGKILL)

    def settled():  # the backbone's alert: credited to it, the sponsor whose consent covers them
        totals = stack.get("/v1/actions/surge/tallies").json()["totals"]
        assert totals["delivered"] == n, totals
        return totals

    try:
        row = eventually(settled, timeout=400, interval=2)
    except AssertionError:  # the sandbox's whole inbox is read once, when it failed, not at every poll
        raise AssertionError(state(stack, stack.get("/v1/actions/surge/tallies").json()["totals"])) from None
    texts = sms_to(stack, "Surge vigil")
    assert len(texts) == n and set(texts.values()) == {1}, Counter(texts.values())
    assert (row["sending"], row["in_doubt"], row["failed"]) == (0, 0, 0)


def test_quiet_hours_crossed_while_texts_queue_none_arrives_at_night_and_the_rest_go_in_the_morning(make_stack):
    """The worker hands 30 texts over at 20:59:50 with 10 s of validity; the queue lets out 2/s.
    TURNOUT_SMS_RATE is 0 here (no queue prediction, as when several workers share a sender and
    each sees part of the queue): ValidityPeriod alone must keep the night free."""
    n = 30
    stack = make_stack(outreach=True, partners=("union-a",), sms_rate=0)
    stack.set_clock("2026-11-25T04:59:50+00:00")  # 20:59:50 in Oakland
    stack.start_sandbox(sms_mps=2)
    stack.start_web()
    stack.start_worker()
    stack.post_all("union-a", [person(i) for i in range(n)])
    eventually(lambda: signups_seen(stack, n), timeout=60)

    assert stack.post("union-a", [rapid("night", "Night alert", ["94607"], starts_at="2026-11-25T20:00:00Z")]).status_code == 202
    eventually(lambda: queue(stack)["left"]["count"] + queue(stack)["expired"] == n, timeout=90)
    stack.set_clock("2026-11-25T05:01:00+00:00")  # 21:01 while the expiries come back
    expired = queue(stack)["expired"]
    assert 0 < expired < n
    for m in stack.inbox("sms"):
        if m["left"] is not None:
            assert m["left"] - m["created"] <= m["validity_period"]  # left before 21:00

    # The expired texts are deferred to the morning: neither failed nor counted as asked.
    eventually(lambda: rows(stack, "night")["union-a"]["asked_sms"] == n - expired and rows(stack, "night")["union-a"]["failed"] == 0, timeout=60)
    assert sum(left(stack, "Night alert").values()) == n - expired

    stack.set_clock("2026-11-25T17:00:30+00:00")  # 09:00:30: the window is open
    eventually(lambda: left(stack, "Night alert") == Counter({phone(i): 1 for i in range(n)}), timeout=90)
    eventually(lambda: rows(stack, "night")["union-a"]["delivered"] == n, timeout=60)


def test_a_worker_given_credentials_later_sends_no_backlog_and_nothing_is_sent_after_the_action(make_stack):
    now = datetime.now(timezone.utc)
    stack = make_stack(outreach=True, partners=("union-a", "backbone"), frequency_cap=10)
    stack.set_clock((now + timedelta(hours=3)).isoformat())
    stack.start_sandbox()
    stack.start_web()
    none = {"TURNOUT_" + name.upper(): "" for name in ("twilio_account_sid", "twilio_auth_token", "twilio_from",
                                                        "twilio_messaging_service_sid", "sendgrid_api_key", "sendgrid_public_key")}
    blind = stack.start_worker(**none)  # no provider credential at all (a partial set is refused)
    stack.post_all("union-a", [person(i) for i in range(5)])
    eventually(lambda: signups_seen(stack, 5), timeout=120)
    assert stack.post("union-a", [rapid("backlog", "Backlog rally", ["94607"], starts_at=(now + timedelta(days=1)).isoformat())]).status_code == 202
    eventually(lambda: rows(stack, "backlog")["union-a"]["cancelled"] == 5, timeout=60)
    stack.stop(blind)

    stack.start_worker()
    stack.post_all("union-a", [person(99, postal="10001")])  # processed: the new worker is in the group
    eventually(lambda: signups_seen(stack, 6), timeout=120)
    fresh = rapid("fresh", "Fresh alert", ["94607"], starts_at=(now + timedelta(days=1)).isoformat(), override_quiet_hours=True)
    assert stack.post("backbone", [fresh]).status_code == 202  # overriding quiet hours is the backbone's
    eventually(lambda: sms_to(stack, "Fresh alert") == Counter({phone(i): 1 for i in range(5)}), timeout=90)
    # Every partition has the action that started an hour ago before the one that follows it.
    started = rapid("stale", "Stale rally", ["94607"], starts_at=(now - timedelta(hours=1)).isoformat())
    after = rapid("after", "After alert", ["94607"], starts_at=(now + timedelta(days=1)).isoformat(), override_quiet_hours=True)
    assert stack.post("backbone", [started, after]).status_code == 202
    eventually(lambda: sms_to(stack, "After alert") == Counter({phone(i): 1 for i in range(5)}), timeout=90)
    eventually(lambda: stack.get("/v1/actions/stale/tallies").json()["totals"]["expired"] == 5, timeout=30)
    assert sms_to(stack, "Backlog rally") == Counter() and sms_to(stack, "Stale rally") == Counter()
    assert rows(stack, "backlog")["union-a"]["asked_sms"] == 0
