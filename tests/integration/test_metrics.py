"""The workers: their Prometheus metrics after a fan-out through a faulty provider, and two workers sharing one."""

import json
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.broker import free_port, wait_for_port
from tests.factories import phone
from tests.polling import eventually
from tests.integration.test_outreach import person, rapid, rows, signups_seen, sms_to

pytestmark = pytest.mark.integration


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value (labels sorted), for every sample of a Prometheus text
    exposition, as prometheus_client's own parser reads it: an exposition it cannot read fails."""
    def labelled(s) -> str:  # noqa: ANN001
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        return f"{s.name}{{{labels}}}" if labels else s.name

    return {labelled(s): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_worker_counts_asks_provider_errors_latency_and_lag(make_stack):
    port = free_port()
    stack = make_stack(outreach=True, partners=("union-a",), metrics_port=port)
    stack.start_sandbox(json.dumps({"share_429": 0.2, "invalid_numbers": [phone(0)]}))
    stack.start_web()
    worker = stack.start_worker()
    wait_for_port(port, 60, worker)
    n = 30
    stack.post_all("union-a", [person(i) for i in range(n)])
    eventually(lambda: signups_seen(stack, n))
    assert stack.post("union-a", [rapid("metered", "Metered rally", ["94607"])]).status_code == 202
    eventually(lambda: rows(stack, "metered")["union-a"]["delivered"] == n - 1, timeout=90)

    def scraped():
        text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        got = samples(text)
        assert got['turnout_asks_total{channel="sms",status="delivered"}'] == n - 1
        return text, got

    text, got = eventually(scraped, timeout=30)
    assert got['turnout_asks_total{channel="sms",status="sending"}'] == n
    assert got['turnout_asks_total{channel="sms",status="failed"}'] == 1
    assert got['turnout_provider_errors_total{code="21211",provider="twilio"}'] == 1
    assert got['turnout_provider_errors_total{code="20429",provider="twilio"}'] >= 1
    # Every request timed: the n sends plus their retries.
    assert got['turnout_provider_request_seconds_count{provider="twilio"}'] >= n + got['turnout_provider_errors_total{code="20429",provider="twilio"}']
    lag = eventually(lambda: {k: v for k, v in samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text).items() if k.startswith("turnout_consumer_lag{")}, timeout=30)
    assert f'turnout_consumer_lag{{topic="{stack.settings.topic_prefix}events"}}' in lag
    assert not [i for i in range(n) if phone(i) in text or phone(i)[2:] in text]
    assert not [name for name in ("turnout_events_", "turnout_tally_") if name in text]  # the web app's families, not the worker's


def test_two_workers_share_a_fan_out_and_nobody_is_texted_twice(make_stack):
    """Horizontal scale: both workers plan and send part of one action (each counts its own
    asks), and together they text every person exactly once."""
    stack = make_stack(outreach=True, partners=("union-a",))
    stack.start_sandbox()
    stack.start_web()
    ports = [free_port(), free_port()]
    for port in ports:
        wait_for_port(port, 60, stack.start_worker(TURNOUT_METRICS_PORT=str(port)))
    n = 200
    stack.post_all("union-a", [person(i) for i in range(n)])
    eventually(lambda: signups_seen(stack, n), timeout=90)
    # Both in the group before the action: each reports the lag of partitions it owns (a loaded
    # machine once had the second join after the fan-out, which the first had sent alone).
    owns = f'turnout_consumer_lag{{topic="{stack.settings.topic_prefix}events"}}'
    eventually(lambda: all(owns in httpx.get(f"http://127.0.0.1:{port}/metrics").text for port in ports), timeout=90)
    assert stack.post("union-a", [rapid("shared", "Shared rally", ["94607"])]).status_code == 202
    eventually(lambda: rows(stack, "shared")["union-a"]["delivered"] == n, timeout=120)
    assert sms_to(stack, "Shared rally") == Counter({phone(i): 1 for i in range(n)})
    sent = [samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text).get('turnout_asks_total{channel="sms",status="sending"}', 0) for port in ports]
    assert all(sent) and sum(sent) >= n, sent
