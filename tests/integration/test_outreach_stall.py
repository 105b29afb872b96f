"""A fan-out through a worker that stalls or dies while its texts are with a slow provider: each
person is texted once. From an outside probe: a worker frozen past its session timeout (SIGSTOP)
sent, once resumed, the texts its partitions' new owner had sent already (71 of 300 people twice);
and a new owner asked Twilio for a killed worker's texts before a slow provider had answered
their requests, and sent them again (16 of 200). Real broker, real workers, the real SDK."""

from __future__ import annotations

import os
import signal

import pytest

from tests.integration.test_outreach import person, rapid, rows, signups_seen, sms_to
from tests.polling import eventually

pytestmark = pytest.mark.integration

LOOKED_UP = "a stopped worker left sending"  # the new owner's line once it has looked its orphans up


def settled(stack, action_id: str, n: int) -> dict:
    """The action's row once every ask settled and no request is left with the sandbox."""
    row = rows(stack, action_id)["union-a"]
    assert row["delivered"] + row["in_doubt"] + row["failed"] == n and row["sending"] == 0, row
    assert stack.http.get(f"{stack.settings.sandbox_url}/_sandbox/inbox/count").json()["in_flight"] == 0
    return row


def log_of(stack, proc) -> str:
    return stack.logs[stack.procs.index(proc)].read_text()


@pytest.mark.timeout(600)
def test_a_worker_frozen_past_its_session_mid_fan_out_sends_nothing_once_it_resumes(make_stack):
    n = 120
    stack = make_stack(outreach=True, partners=("union-a",), send_concurrency=4)
    stack.start_sandbox('{"latency_ms": 1500}')
    stack.start_web()
    frozen, other = stack.start_worker(), stack.start_worker()
    stack.post_all("union-a", [person(i) for i in range(n)])
    eventually(lambda: signups_seen(stack, n), timeout=120)
    assert stack.post("union-a", [rapid("frozen", "Frozen rally", ["94607"])]).status_code == 202
    eventually(lambda: stack.inbox_count("sms") >= 10, timeout=120)
    os.kill(frozen.pid, signal.SIGSTOP)
    try:  # until the other worker has taken its partitions over and looked up what it left sending
        eventually(lambda: LOOKED_UP in log_of(stack, other), timeout=120, interval=0.5)
        revoked = log_of(stack, frozen).count("Revoking previously assigned partitions")
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    # Resumed, it learns that it lost its partitions (what it had queued to send is then left alone).
    eventually(lambda: log_of(stack, frozen).count("Revoking previously assigned partitions") > revoked, timeout=120, interval=0.5)
    row = eventually(lambda: settled(stack, "frozen", n), timeout=240, interval=1)
    texts = sms_to(stack, "Frozen rally")
    assert len(texts) == n and set(texts.values()) == {1}, {k: v for k, v in texts.items() if v > 1}
    # The sandbox had every text, and said each was delivered: so does the tally. Resumed, the
    # frozen worker wrote its own late answers to its stale facts (the requests it had in flight:
    # "sent", or "in doubt" once their timeout fired) over the new owner's "delivered".
    assert row["delivered"] == n, row


@pytest.mark.timeout(600)
def test_a_killed_workers_texts_a_slow_provider_takes_late_are_found_not_sent_again(make_stack):
    n = 32
    stack = make_stack(outreach=True, partners=("union-a",), provider_timeout=30)
    stack.start_sandbox('{"latency_ms": 20000}')  # each request answered after 20 s, under the 30 s timeout
    stack.start_web()
    first = stack.start_worker()
    stack.post_all("union-a", [person(i) for i in range(n)])
    eventually(lambda: signups_seen(stack, n), timeout=120)
    assert stack.post("union-a", [rapid("late", "Late rally", ["94607"])]).status_code == 202
    eventually(lambda: stack.inbox_count("sms") >= 1, timeout=120)  # the first requests answered, the next in flight
    stack.stop(first, signal.SIGKILL)
    # The requests in flight keep their 20 s; a text sent again now would land at once, before them.
    stack.http.post(f"{stack.settings.sandbox_url}/_sandbox/faults", json={"latency_ms": 0}).raise_for_status()
    second = stack.start_worker()
    eventually(lambda: LOOKED_UP in log_of(stack, second), timeout=120, interval=0.5)
    eventually(lambda: settled(stack, "late", n), timeout=240, interval=1)
    texts = sms_to(stack, "Late rally")
    assert len(texts) == n and set(texts.values()) == {1}, {k: v for k, v in texts.items() if v > 1}
