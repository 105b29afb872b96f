"""Dashboard freshness: a check-in accepted by the ingress → visible in the dashboard's SSE stream.

One run starts an embedded broker, one worker and one web app (unique app id and topics), opens
the dashboard's event stream as an organizer, and posts N signed check-ins (distinct people, one
per request) at --rate per second. For the i-th accepted check-in, its latency is the time from
its 202 to the first `view` event whose attended count reaches i. (The stream carries counts,
not people, so this reads check-ins in acceptance order; partitions may finish a few out of
order, which moves single figures by milliseconds, not the percentiles.)

Baseline, measured in the same run on the same check-ins: the time from the 202 to the
attendance fact appearing on its changelog topic, read by a bare aiokafka consumer. The
difference is what the tally reader, the view and the SSE pacing (at most 5 views/s) add.

Run from the repository root:  .venv/bin/python -m benchmarks.dashboard --checkins 1000
"""

from __future__ import annotations

import argparse, asyncio, json, statistics, sys, time  # noqa: E401
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.factories` also as a plain script

import httpx
from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table

from connectors.signing import headers
from benchmarks.stack import PARTNER, TOKEN, bench_stack
from streams.settings import Settings
from streams.topology import FACT_TABLES, changelog_topic
from tests.factories import action, checkin, phone, pledge

ACTION = "fresh-1"
console = Console()


async def stream_counts(url: str, seen: list[tuple[float, int]], ready: asyncio.Event) -> None:
    """Follow the dashboard's event stream; record (arrival time, attended) of every view."""
    async with httpx.AsyncClient(timeout=None) as http:
        async with http.stream("GET", f"{url}/dashboard/events", params={"action": ACTION}, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            r.raise_for_status()
            event = None
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "view":
                    view = json.loads(line[5:])
                    if view["action"] and view["action"]["action_id"] == ACTION:
                        seen.append((time.perf_counter(), view["action"]["totals"]["attended"]))
                        ready.set()


async def changelog_counts(s: Settings, seen: list[tuple[float, int]], ready: asyncio.Event) -> None:
    """The baseline: a bare consumer tailing the attendance changelog, counting people checked in."""
    topic = changelog_topic(s, FACT_TABLES["attendance"])
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=s.bootstrap.split(","), group_id=None, auto_offset_reset="latest", fetch_max_wait_ms=10)
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=200)  # assignment and position settled before the first post
        ready.set()
        attended: set[bytes] = set()
        while True:
            for messages in (await consumer.getmany(timeout_ms=100)).values():
                for m in messages:
                    fact = json.loads(m.value) if m.value else None
                    if fact and fact.get("action_id") == ACTION and fact.get("attended_at"):
                        attended.add(m.key)
                seen.append((time.perf_counter(), len(attended)))
    finally:
        await consumer.stop()


async def measure(s: Settings, url: str, secret: str, n: int, rate: float) -> dict[str, list[float]]:
    async def post(http: httpx.AsyncClient, events: list[dict]) -> float:
        body = json.dumps(events).encode()
        r = await http.post("/v1/events", content=body, headers=headers(PARTNER, secret, body, time.time()))
        if r.status_code != 202 or r.json()["rejected"]:
            raise RuntimeError(f"POST /v1/events answered {r.status_code}: {r.text[:300]}")
        return time.perf_counter()

    views: list[tuple[float, int]] = []
    facts: list[tuple[float, int]] = []
    stream_ready, log_ready = asyncio.Event(), asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await post(http, [action(ACTION, {PARTNER: n}), pledge("p-fresh", ACTION, n)])
        tasks = [asyncio.create_task(stream_counts(url, views, stream_ready)), asyncio.create_task(changelog_counts(s, facts, log_ready))]
        try:
            await asyncio.wait_for(asyncio.gather(stream_ready.wait(), log_ready.wait()), 120)
            accepted, start = [], time.perf_counter()
            for i in range(n):
                accepted.append(await post(http, [checkin(f"c{i}", ACTION, phone=phone(i))]))
                await asyncio.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))  # pacing the load, not a wait for a result
            deadline = time.monotonic() + 120
            while not (views and views[-1][1] >= n and facts and facts[-1][1] >= n):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"after 120 s: stream shows {views[-1][1] if views else 0}, changelog {facts[-1][1] if facts else 0} of {n}")
                await asyncio.sleep(0.05)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return {"SSE stream (dashboard)": latencies(accepted, views), "baseline: attendance changelog": latencies(accepted, facts)}


def latencies(accepted: list[float], seen: list[tuple[float, int]]) -> list[float]:
    """For the i-th accepted check-in, the first time the count reached i, minus its acceptance."""
    out, j = [], 0
    for i, at in enumerate(accepted, start=1):
        while seen[j][1] < i:
            j += 1
        out.append(max(0.0, seen[j][0] - at))
    return out


def report(results: dict[str, list[float]], n: int, rate: float) -> None:
    table = Table("check-in accepted → visible in", "n", "p50 ms", "p95 ms", "max ms", title=f"turnout dashboard freshness ({rate:g} check-ins/s, target p95 ≤ 1000 ms)")
    for name, values in results.items():
        q = statistics.quantiles(values, n=100)
        table.add_row(name, f"{len(values):,}", f"{q[49] * 1000:.0f}", f"{q[94] * 1000:.0f}", f"{max(values) * 1000:.0f}")
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkins", type=int, default=1000, help="N check-ins (default 1000)")
    ap.add_argument("--rate", type=float, default=50.0, help="check-ins posted per second (default 50)")
    args = ap.parse_args()
    with bench_stack("fresh", console) as stack:
        stack.start()
        report(asyncio.run(measure(stack.settings, stack.url, stack.secrets[PARTNER], args.checkins, args.rate)), args.checkins, args.rate)


if __name__ == "__main__":
    main()
