"""A worker SIGKILLed in the middle of a batch of the events topic (``streams.batching``): the
worker that takes over finds every fact exactly once, in the tallies and in the changelog.

Events are produced straight to the events topic (as ``make bench`` does), so the worker takes
them in full fetches; it is killed, by its pid, while the tallies show some of the round's
events and not all: a batch is then being handled, written or waiting for its writes to be
acknowledged, and its offsets are not committed. A round the worker finished before the test
saw it half done is counted too, and another round follows."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from benchmarks.stack import sealed_envelopes
from streams.keys import fact_key
from streams.topology import ATTENDANCE, changelog_topic, events_topic
from tests.factories import phone, rsvp
from tests.polling import eventually

pytestmark = pytest.mark.integration

N = 4000
ROUNDS = 5


def produce(stack, action: str, first: int) -> list[str]:  # noqa: ANN001
    """N RSVPs for ``action`` straight to the events topic; returns their fact keys."""
    s = stack.settings
    items = [rsvp(f"{action}-{i}", action, phone=phone(first + i)) for i in range(N)]
    records, result = asyncio.run(sealed_envelopes(s, items, "union-a"))  # as the ingress writes them: sealed, keys first
    assert result.accepted == N, result
    producer = KafkaProducer(bootstrap_servers=s.bootstrap, acks="all", linger_ms=5)
    for key, value in records:
        producer.send(events_topic(s), key=key, value=value)
    producer.flush()
    producer.close()
    return [fact_key(action, key.decode()) for key, _ in records]


def rsvps(stack, action: str) -> int:  # noqa: ANN001
    return stack.action_rows(action).get("union-a", {}).get("rsvp_yes", 0)


def changelog_writes(stack, keys: set[str]) -> Counter:  # noqa: ANN001
    """How many times each of ``keys`` was written to the attendance changelog, read to its end."""
    topic = changelog_topic(stack.settings, ATTENDANCE)
    consumer = KafkaConsumer(bootstrap_servers=stack.settings.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        counts: Counter = Counter()
        seen = 0
        while True:
            polled = consumer.poll(timeout_ms=1000)
            for messages in polled.values():
                for m in messages:
                    key = m.key.decode().strip('"')
                    if key in keys:
                        counts[key] += 1
            if not polled and seen == sum(counts.values()):
                return counts
            seen = sum(counts.values())
    finally:
        consumer.close()


def test_a_worker_killed_in_the_middle_of_a_batch_leaves_every_fact_exactly_once(make_stack):
    stack = make_stack()
    worker = stack.start_worker()
    stack.start_web()
    actions = [f"rally-k{r}" for r in range(ROUNDS)]
    stack.announce(*actions)
    keys: dict[str, list[str]] = {}
    killed_at = None
    for r, action in enumerate(actions):
        keys[action] = produce(stack, action, r * N)
        done = eventually(lambda: (n := rsvps(stack, action)) > 0 and n, timeout=120, interval=0.02)
        if done < N:
            stack.stop(worker, signal.SIGKILL)  # proc.kill(): this worker's pid only
            killed_at = (action, done)
            break
        # The worker finished this round before it was seen half done: the next round tries again.
    assert killed_at is not None, f"the worker finished each of {ROUNDS} rounds of {N} events before it was seen half done"

    stack.start_worker()
    for action in keys:
        eventually(lambda: rsvps(stack, action) == N, timeout=180)
    for action in keys:
        totals = stack.get(f"/v1/actions/{action}/tallies").json()["totals"]
        assert (totals["rsvp_yes"], totals["unique_rsvp_yes"]) == (N, N)
    expected = {k for ks in keys.values() for k in ks}
    writes = changelog_writes(stack, expected)
    assert set(writes) == expected  # every fact is there …
    assert {k for k, n in writes.items() if n > 1} == set()  # … written once: a replayed event found its fact in the recovered table
