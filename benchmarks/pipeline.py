"""Pipeline throughput: how fast events become tallies, compared with just reading them from Kafka.

One run starts ONE embedded broker (Tansu, memory-only) with 8 partitions, one Faust worker
(`turnout worker`) and one web app (`turnout web`), all with a unique app id / topic prefix, and
measures these scenarios, each with N distinct people and an action of its own (posted first:
events for an action nobody posted are not counted until it is):

1. HTTP: N events in signed batches of 500 posted by --clients concurrent httpx clients to
   POST /v1/events. "accept" is until the last 202 (what partners see); "end-to-end" is from
   the first post until GET /v1/actions/{id}/tallies shows rsvp_yes == N (polled every 50 ms).
2. Direct: the same kind of N events, turned into Envelope records by the ingress's own
   ``envelopes()`` (before the clock starts) and produced straight to the events topic with
   aiokafka; "produce" is until every record is acknowledged, "end-to-end" until tallies show N.
3. Identity resolution at work (``benchmarks.identity``): N sign-ups that link a new phone to a
   person known by email (a link and a fold each, the most resolution costs), then N RSVPs by
   those phones (each forwarded to the email's person). Step 2 has resolution on too: its
   events' identifiers are their people's keys, so resolving each is one look-up.
4. Baseline: a bare, group-less aiokafka consumer assigned the events topic's partitions, from
   the first offset of step 2's records, reading and ``json.loads``-ing exactly those N records.

How to read it: the baseline is the ceiling for one Python process touching each record once;
"ratio" is events/s ÷ baseline events/s. "worker CPU" is the CPU time the worker process used
during a scenario, per event (Linux /proc): unlike events/s it hardly moves when other processes
load the machine, so it is the figure to compare between two versions of the worker. Direct end-to-end vs baseline is the cost of the worker
(Faust, pydantic, changelogs) and tally reader; HTTP end-to-end vs direct adds the ingress, which
competes for the same cores (printed: broker, worker, web app and this script share them).

Run from the repository root:  .venv/bin/python -m benchmarks.pipeline --events 20000
Faust settings can be tried without code changes: --worker-env STREAM_BUFFER_MAXSIZE=16384
"""

from __future__ import annotations

import argparse, asyncio, json, os, sys, time  # noqa: E401
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.factories` also as a plain script

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.table import Table

from connectors.signing import headers
from benchmarks import identity
from benchmarks.stack import PARTNER, TOKEN, bench_stack, sealed_envelopes
from streams.settings import Settings
from streams.topology import events_topic
from tests.factories import action, phone, rsvp

BATCH = 500
console = Console(width=130)  # a wide table, also when piped


async def until_tallied(http: httpx.AsyncClient, action: str, n: int, deadline: float, procs) -> None:
    """Poll the tally API until ``rsvp_yes == n`` for ``action``; fail on a dead process or the deadline."""
    while True:
        r = await http.get(f"/v1/actions/{action}/tallies")
        got = r.json()["totals"]["rsvp_yes"] if r.status_code == 200 else None
        if got == n:
            return
        if (got or 0) > n or r.status_code not in (200, 404):
            raise RuntimeError(f"tally API: {r.status_code} {r.text[:300]} (want rsvp_yes == {n})")
        if dead := [p.pid for p in procs if p.poll() is not None]:
            raise RuntimeError(f"process(es) {dead} exited while waiting for {action}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{action}: tallies did not reach {n} in time (last answer {r.status_code} {r.text[:200]})")
        await asyncio.sleep(0.05)


async def post_all(http: httpx.AsyncClient, secret: str, bodies: list[bytes], clients: int) -> int:
    """Post every body with ``clients`` concurrent senders; return the events accepted."""
    queue, accepted = iter(bodies), 0

    async def sender() -> None:
        nonlocal accepted
        for body in queue:  # a shared iterator: each body is taken by exactly one sender
            r = await http.post("/v1/events", content=body, headers=headers(PARTNER, secret, body, time.time()))
            if r.status_code != 202 or r.json()["rejected"]:
                raise RuntimeError(f"POST /v1/events answered {r.status_code}: {r.text[:300]}")
            accepted += r.json()["accepted"]

    await asyncio.gather(*(sender() for _ in range(clients)))
    return accepted


async def baseline(s: Settings, span: dict[TopicPartition, tuple[int, int]], n: int, deadline: float) -> float:
    """Seconds for a bare consumer to read and json.loads the records in ``span`` (first, last offset per partition)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap.split(","), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(span))
        for tp, (first, _) in span.items():
            consumer.seek(tp, first)
        count, t0 = 0, time.perf_counter()
        while count < n:
            for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                last = span[tp][1]
                for m in messages:
                    if m.offset <= last:
                        json.loads(m.value)
                        count += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"baseline read {count} of {n}")
        return time.perf_counter() - t0
    finally:
        await consumer.stop()


Row = tuple[str, float, float | None]  # scenario, seconds, worker CPU seconds (None: not measured)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process ``pid`` has used so far (Linux /proc), else ``None``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(s: Settings, url: str, secret: str, n: int, clients: int, timeout: float, procs, worker: int,
                  with_identity: bool = True) -> list[Row]:
    rows: list[Row] = []
    cpu = lambda since: None if since is None or (now := cpu_seconds(worker)) is None else now - since  # noqa: E731
    auth, limits = {"Authorization": f"Bearer {TOKEN}"}, httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=60, limits=limits) as http:
        # Warm-up: the actions, then one event through everything proves worker, web app and tally reader are ready.
        actions = [action(a) for a in ("bench-warmup", "bench-http", "bench-direct", identity.ACTION)]
        await post_all(http, secret, [json.dumps(actions).encode()], 1)
        await post_all(http, secret, [json.dumps([rsvp("warm-0", "bench-warmup", phone=phone(0))]).encode()], 1)
        await until_tallied(http, "bench-warmup", 1, time.monotonic() + 120, procs)

        events = [rsvp(f"h{i}", "bench-http", phone=phone(i)) for i in range(n)]
        bodies = [json.dumps(events[i : i + BATCH]).encode() for i in range(0, n, BATCH)]
        t0, c0 = time.perf_counter(), cpu_seconds(worker)
        assert await post_all(http, secret, bodies, clients) == n
        rows.append((f"HTTP accept ({clients} clients)", time.perf_counter() - t0, None))
        await until_tallied(http, "bench-http", n, time.monotonic() + timeout, procs)
        rows.append(("HTTP end-to-end", time.perf_counter() - t0, cpu(c0)))

        items = [rsvp(f"d{i}", "bench-direct", phone=phone(n + i)) for i in range(n)]
        records, result = await sealed_envelopes(s, items, PARTNER)
        assert result.accepted == n, result
        producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap.split(","), acks="all", linger_ms=5, max_batch_size=256 * 1024)
        await producer.start()
        try:
            t0, c0 = time.perf_counter(), cpu_seconds(worker)
            pending = [await producer.send(events_topic(s), value=value, key=key) for key, value in records]
            metas = await asyncio.gather(*pending)
            rows.append(("direct produce (acks=all)", time.perf_counter() - t0, None))
            await until_tallied(http, "bench-direct", n, time.monotonic() + timeout, procs)
            rows.append(("direct end-to-end", time.perf_counter() - t0, cpu(c0)))
        finally:
            await producer.stop()
        if with_identity:
            rows += await identity.measure(s, http, PARTNER, n, 2 * n, timeout, procs, until_tallied, lambda: cpu_seconds(worker))

    span: dict[TopicPartition, tuple[int, int]] = {}
    for m in metas:
        tp = TopicPartition(m.topic, m.partition)
        first, last = span.get(tp, (m.offset, m.offset))
        span[tp] = (min(first, m.offset), max(last, m.offset))
    rows.append(("baseline (bare consumer)", await baseline(s, span, n, time.monotonic() + timeout), None))
    return rows


def report(rows: list[Row], n: int) -> None:
    base_rate = n / rows[-1][1]
    table = Table("scenario", "events", "seconds", "events/s", "ratio to baseline", "worker CPU µs/event", title="turnout pipeline throughput")
    for name, seconds, worker_cpu in rows:
        table.add_row(name, f"{n:,}", f"{seconds:.2f}", f"{n / seconds:,.0f}", f"{n / seconds / base_rate:.3f}",
                      "" if worker_cpu is None else f"{worker_cpu / n * 1e6:,.0f}")
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000, help="N events per scenario (default 20000)")
    ap.add_argument("--clients", type=int, default=2, help="concurrent HTTP clients (default 2; more did not help on 2 cores)")
    ap.add_argument("--timeout", type=float, default=600, help="deadline per wait, seconds (default 600)")
    ap.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE", help="extra worker environment (Faust settings)")
    ap.add_argument("--no-identity", dest="identity", action="store_false", help="skip the identity resolution scenarios")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    console.print(f"cores: {os.cpu_count()} (usable by this process: {cores}); N = {args.events:,}; partitions = 8")

    with bench_stack("pipeline", console) as stack:
        stack.start(worker_env=dict(kv.split("=", 1) for kv in args.worker_env))
        console.print(f"broker {stack.settings.bootstrap} (pid {stack.broker.proc.pid}), worker pid {stack.workers[0].pid}, web pid {stack.web.pid}, logs {stack.tmp}")
        rows = asyncio.run(measure(stack.settings, stack.url, stack.secrets[PARTNER], args.events, args.clients, args.timeout, stack.procs,
                                   stack.workers[0].pid, args.identity))
        report(rows, args.events)


if __name__ == "__main__":
    main()
