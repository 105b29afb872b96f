"""Pipeline throughput: how fast events become tallies, compared with just reading them from Kafka.

One run starts ONE embedded broker (Tansu, memory-only) with 8 partitions, the Faust workers
(`turnout worker`, once 1 and once 2 of them: ``--workers``) and one web app (`turnout web`), all
with a unique app id / topic prefix, waits until the workers share the partitions, and measures
these scenarios, each with N distinct people and an action of its own (posted first:
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
4. Baselines (the median of three runs each, measured right after step 2, before step 3 makes the
   embedded broker heavier), both over exactly step 2's N records: a bare, group-less aiokafka consumer
   assigned the events topic's partitions, from the first offset of step 2's records, reading and
   ``json.loads``-ing them; and the hand-written read-process-write loop of
   ``benchmarks.handloop`` (consume batch → parse → dict state per (action, person) → one fact
   per change, acks=all → commit), the same job as the worker's without Faust.

The whole run is done with 1 worker and again with 2 (``--workers 1,2``), each on a fresh stack.

How to read it: the bare consumer is the ceiling for one Python process touching each record
once, the hand-written loop what a minimal at-least-once job reaches; "÷ bare" and "÷ loop" are
events/s ÷ that baseline's events/s in the same run. "worker CPU" is the CPU time the worker process used
during a scenario, per event (Linux /proc): unlike events/s it hardly moves when other processes
load the machine much, so it is the figure to compare between two versions of the worker (summed over
the workers); "web CPU" is the web app's (ingress and tally reader). Direct end-to-end vs baseline is the cost of the worker
(Faust, pydantic, changelogs) and tally reader; HTTP end-to-end vs direct adds the ingress, which
competes for the same cores (printed: broker, worker, web app and this script share them).

Run from the repository root:  .venv/bin/python -m benchmarks.pipeline --events 20000
Faust settings can be tried without code changes: --worker-env STREAM_BUFFER_MAXSIZE=16384
"""

from __future__ import annotations

import argparse, asyncio, json, os, statistics, sys, time  # noqa: E401
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.factories` also as a plain script

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.table import Table

from connectors.signing import headers
from benchmarks import identity
from benchmarks.handloop import handloop
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


#: scenario, seconds, worker CPU seconds, web app CPU seconds (None: not measured)
Row = tuple[str, float, float | None] | tuple[str, float, float | None, float | None]
BARE, LOOP = "baseline (bare consumer)", "baseline (hand-written loop)"


def cpu_seconds(*pids: int) -> float | None:
    """User + system CPU seconds the processes ``pids`` have used so far (Linux /proc), else ``None``."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def measure(s: Settings, url: str, secret: str, n: int, clients: int, timeout: float, procs, workers: list[int],
                  web: int, with_identity: bool = True) -> list[Row]:
    rows: list[Row] = []
    cpu = lambda since, *pids: None if since is None or (now := cpu_seconds(*pids)) is None else now - since  # noqa: E731
    auth, limits = {"Authorization": f"Bearer {TOKEN}"}, httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=60, limits=limits) as http:
        # Warm-up: the actions, then one event through everything proves worker, web app and tally reader are ready.
        actions = [action(a) for a in ("bench-warmup", "bench-http", "bench-direct", identity.ACTION)]
        await post_all(http, secret, [json.dumps(actions).encode()], 1)
        await post_all(http, secret, [json.dumps([rsvp("warm-0", "bench-warmup", phone=phone(0))]).encode()], 1)
        await until_tallied(http, "bench-warmup", 1, time.monotonic() + 120, procs)

        events = [rsvp(f"h{i}", "bench-http", phone=phone(i)) for i in range(n)]
        bodies = [json.dumps(events[i : i + BATCH]).encode() for i in range(0, n, BATCH)]
        t0, c0, w0 = time.perf_counter(), cpu_seconds(*workers), cpu_seconds(web)
        assert await post_all(http, secret, bodies, clients) == n
        rows.append((f"HTTP accept ({clients} clients)", time.perf_counter() - t0, None))
        await until_tallied(http, "bench-http", n, time.monotonic() + timeout, procs)
        rows.append(("HTTP end-to-end", time.perf_counter() - t0, cpu(c0, *workers), cpu(w0, web)))

        items = [rsvp(f"d{i}", "bench-direct", phone=phone(n + i)) for i in range(n)]
        records, result = await sealed_envelopes(s, items, PARTNER)
        assert result.accepted == n, result
        producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap.split(","), acks="all", linger_ms=5, max_batch_size=256 * 1024)
        await producer.start()
        try:
            t0, c0, w0 = time.perf_counter(), cpu_seconds(*workers), cpu_seconds(web)
            pending = [await producer.send(events_topic(s), value=value, key=key) for key, value in records]
            metas = await asyncio.gather(*pending)
            rows.append(("direct produce (acks=all)", time.perf_counter() - t0, None))
            await until_tallied(http, "bench-direct", n, time.monotonic() + timeout, procs)
            rows.append(("direct end-to-end", time.perf_counter() - t0, cpu(c0, *workers), cpu(w0, web)))
        finally:
            await producer.stop()
        # The baselines right after the direct scenario they are compared with: the embedded broker's
        # fetches get slower as its topics grow, and the identity scenarios add 60,000 records.
        span: dict[TopicPartition, tuple[int, int]] = {}
        for m in metas:
            tp = TopicPartition(m.topic, m.partition)
            first, last = span.get(tp, (m.offset, m.offset))
            span[tp] = (min(first, m.offset), max(last, m.offset))
        # Each baseline's median of three: a fraction of a second each, so one run is at the mercy of the machine's other load.
        baselines = [(BARE, statistics.median([await baseline(s, span, n, time.monotonic() + timeout) for _ in range(3)]), None),
                     (LOOP, statistics.median([await handloop(s, span, n, time.monotonic() + timeout) for _ in range(3)]), None)]
        if with_identity:
            rows += await identity.measure(s, http, PARTNER, n, 2 * n, timeout, procs, until_tallied, lambda: cpu_seconds(*workers))
    return rows + baselines


def report(rows: list[Row], n: int, workers: int) -> None:
    seconds_of = {row[0]: row[1] for row in rows}
    bare, loop = n / seconds_of[BARE], n / seconds_of[LOOP]
    table = Table("scenario", "events", "seconds", "events/s", "÷ bare", "÷ loop", "worker CPU µs/event", "web CPU µs/event",
                  title=f"turnout pipeline throughput, {workers} worker{'s' if workers > 1 else ''}")
    per_event = lambda cpu: "" if cpu is None else f"{cpu / n * 1e6:,.0f}"  # noqa: E731
    for name, seconds, worker_cpu, web_cpu in ((*row, None)[:4] for row in rows):
        rate = n / seconds
        table.add_row(name, f"{n:,}", f"{seconds:.2f}", f"{rate:,.0f}", f"{rate / bare:.3f}", f"{rate / loop:.3f}",
                      per_event(worker_cpu), per_event(web_cpu))
    console.print(table)
    for name in ("direct end-to-end", "HTTP end-to-end"):
        rate = n / seconds_of[name]
        console.print(f"{workers} worker(s), {name}: {rate:,.0f} events/s = {rate / bare:.3f} of the bare consumer, {rate / loop:.3f} of the hand-written loop")


def until_group_settled(logs: list[Path], deadline: float) -> None:
    """Wait until every worker has taken its partitions in the same rebalance (its log says "Worker
    ready" as often as the others' do), so that no rebalance falls into a timed scenario."""
    while True:
        texts = [log.read_text(errors="replace") if log.exists() else "" for log in logs]
        ready = [t.count("Worker ready") for t in texts]
        assigned = [t.count("Executing _on_partitions_assigned") for t in texts]
        if min(ready) > 0 and len(set(assigned)) == 1 and ready == assigned:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers not settled: ready {ready}, assignments {assigned}")
        time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000, help="N events per scenario (default 20000)")
    ap.add_argument("--clients", type=int, default=2, help="concurrent HTTP clients (default 2; more did not help on 2 cores)")
    ap.add_argument("--timeout", type=float, default=600, help="deadline per wait, seconds (default 600)")
    ap.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE", help="extra worker environment (Faust settings)")
    ap.add_argument("--workers", default="1,2", help="worker counts to run, each on a fresh stack (default 1,2)")
    ap.add_argument("--no-identity", dest="identity", action="store_false", help="skip the identity resolution scenarios")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    console.print(f"cores: {os.cpu_count()} (usable by this process: {cores}); N = {args.events:,}; partitions = 8")

    for workers in (int(w) for w in args.workers.split(",")):
        with bench_stack("pipeline", console) as stack:
            stack.start(workers, worker_env=dict(kv.split("=", 1) for kv in args.worker_env))
            pids = [w.pid for w in stack.workers]
            until_group_settled(sorted(stack.tmp.glob("worker-*.log")), time.monotonic() + 120)
            console.print(f"broker {stack.settings.bootstrap} (pid {stack.broker.proc.pid}), worker pids {pids}, web pid {stack.web.pid}, logs {stack.tmp}")
            rows = asyncio.run(measure(stack.settings, stack.url, stack.secrets[PARTNER], args.events, args.clients, args.timeout, stack.procs,
                                       pids, stack.web.pid, args.identity))
            report(rows, args.events, workers)


if __name__ == "__main__":
    main()
