"""The soak scenarios (benchmarks/soak, `make soak`) in seconds instead of minutes: the same
code, the same checks, small sizes. Each scenario starts its own broker, workers, web app and
sandbox and stops them all, pass or fail; a failing one prints its processes' last log lines."""

import asyncio
import json

import pytest
from rich.console import Console

from benchmarks.soak.ingress import broker_pause, load
from benchmarks.soak.outreach import fan_out
from benchmarks.soak.storm import storm
from tests.factories import phone

pytestmark = pytest.mark.integration

console = Console(width=150)


def test_load_with_two_worker_kills_loses_and_doubles_nothing():
    out = asyncio.run(load(console, name="kill-load", events=3000, clients=2, workers=2, kills=2, rate=300, timeout=240))
    assert out.problems == []
    assert (out.lost, out.double) == (0, 0)


def test_a_fan_out_through_the_queue_with_two_worker_kills_texts_everyone_exactly_once():
    out = asyncio.run(fan_out(console, people=1000, kills=2, send_concurrency=8, sms_mps=100, timeout=240))
    assert out.problems == []
    assert (out.lost, out.double, out.in_doubt) == (0, 0, 0)
    assert out.figures["tallies"]["sending"] == 0


def test_a_frozen_broker_gets_503s_with_retry_after_never_2xx_and_everything_is_counted_after():
    out = asyncio.run(broker_pause(console, events=6000, rate=600, pause=3, ack_timeout=1, timeout=240))
    assert out.problems == []
    assert (out.lost, out.double) == (0, 0)
    assert out.got_503 > 0 and out.figures["2xx while frozen"] == 0


def test_a_provider_storm_with_timeouts_sends_nothing_twice_and_never_retries_a_permanent_failure(tmp_path):
    people = 300
    # A client timeout of 3 s (the storm's default): at 1.5 s a loaded machine's sandbox once answered
    # a 429 later than that, an ask our side rightly holds in doubt and the attempt log calls pending.
    out = asyncio.run(storm(console, people=people, provider_timeout=3.0, timeout=240, workdir=tmp_path))
    assert out.problems == []
    assert (out.lost, out.double) == (0, 0)
    asks = out.figures["asks"]
    assert 0 < asks["refused"] <= 2 * len(range(0, people, 50))  # invalid or opted-out numbers, once each
    assert asks.get("in_doubt", 0) == out.in_doubt  # exactly the asks whose request timed out
    # Invariant 7: no raw phone number or email in our logs (the sandbox plays the provider),
    # written as one JSON object per line.
    ours = "".join(log.read_text(errors="replace") for log in tmp_path.rglob("*.log") if "sandbox" not in log.name)
    assert not [x for i in range(people) for x in (phone(i), phone(i)[2:], f"p{i}@example.org") if x in ours]
    records = [json.loads(line) for line in ours.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
