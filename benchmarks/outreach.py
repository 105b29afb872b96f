"""Outreach throughput: how fast one rapid-response action reaches N people, and how closely the
SMS rate limit is kept.

Each phase runs against a stack of its own (``benchmarks.stack``: an embedded broker, Tansu,
memory-only, 8 partitions; the sandbox providers, reached through the real Twilio SDK; one
worker and one web app). The workers' clock is a file clock at 11:00 in Oakland: no quiet hours.

1. Fan-out: N people with SMS consent only, postal code 94607, signed up by one partner, produced
   straight to the events topic as the ingress's own ``envelopes()`` (not timed) until
   GET /v1/tallies shows them all. A warm-up action to one other person proves the send path is up.
   Then one rapid-response action for 94607 is posted through the signed ingress and the clock
   starts. "all attempted": the action's tallies show asked_sms == N (every ask marked "sending" or
   later). "last handed over": the sandbox's ``created`` stamp of its newest text once it holds
   N (``/_sandbox/inbox/count``; both polled every 0.25 s, the stamp makes it exact). "all delivered": the status callbacks have brought delivered to N. Worker: sms_rate 0
   (unlimited), send_concurrency from --concurrency; several values restart the worker with each
   and post a new action to the same people.
2. Rate limit: a second stack with sms_rate=200 texts M people (postal 94612); the measured rate is
   texts/s between the 10th and 90th percentile of the inbox ``created`` stamps (the steady window:
   the first and last tenth hold the start-up and the drain). Also shown: the overall rate, the
   most texts in any one second (the bucket allows a burst of 0.1 s worth) and the longest pause
   inside the window.

Run from the repository root:  .venv/bin/python -m benchmarks.outreach --people 100000
"""

from __future__ import annotations

import argparse, asyncio, bisect, json, os, sys, time  # noqa: E401
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.factories` also as a plain script

import httpx
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from connectors.providers.outbox import outbox_from
from connectors.signing import headers
from connectors.web.ingress import envelopes
from benchmarks.stack import PARTNER, TOKEN, BenchStack, bench_stack
from streams.topology import events_topic
from tests.factories import phone, signup

SMS = {"en": "{given_name}: {action_title} at {place}, {local_time}. RSVP {rsvp_link}"}
console = Console()


def rapid(action_id: str, postal: str) -> dict:
    return {"type": "action", "event_id": f"a-{action_id}", "occurred_at": "2026-11-24T18:00:00Z", "action_id": action_id,
            "title": f"Rally {action_id}", "kind": "rally", "starts_at": "2026-11-25T02:00:00Z", "time_zone": "America/Los_Angeles",
            "location": {"venue": "City Hall", "locality": "Oakland"}, "target": {"postal_codes": [postal]},
            "templates": {"sms": SMS, "email": {}}, "rapid_response": True}


async def poll(what: str, check, deadline: float, stack: BenchStack, interval: float = 0.25):
    """Await ``check()`` until it returns something truthy; fail on a dead process or the deadline."""
    while not (got := await check()):
        if dead := stack.dead():
            raise RuntimeError(f"process(es) {dead} exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in time")
        await asyncio.sleep(interval)
    return got


async def sign_up(http: httpx.AsyncClient, stack: BenchStack, people: list[dict], timeout: float) -> None:
    s = stack.settings
    records, result = envelopes(people, PARTNER, datetime.now(timezone.utc), s.person_key_bytes(), s.default_region)
    assert result.accepted == len(people), result
    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap.split(","), acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(events_topic(s), value=value, key=key) for key, value in records])
    finally:
        await producer.stop()

    async def seen():
        r = await http.get("/v1/tallies")
        return r.status_code == 200 and r.json()["totals"]["signups"] == len(people)

    await poll("signups", seen, time.monotonic() + timeout, stack, 1.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux): cost per ask, whatever else runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def row(http: httpx.AsyncClient, action_id: str) -> dict:
    r = await http.get(f"/v1/actions/{action_id}/tallies")
    return next((p for p in r.json()["partners"] if p["partner"] == PARTNER), {}) if r.status_code == 200 else {}


async def fan_out(http: httpx.AsyncClient, stack: BenchStack, action_id: str, postal: str, n: int, timeout: float, delivered: bool = True) -> dict:
    """Post a rapid-response action for ``postal``; time it until n texts are in the sandbox inbox."""
    inbox_url, count_url = f"{stack.sandbox_url}/_sandbox/inbox", f"{stack.sandbox_url}/_sandbox/inbox/count"
    (await http.delete(inbox_url)).raise_for_status()
    deadline, body = time.monotonic() + timeout, json.dumps([rapid(action_id, postal)]).encode()
    t0, procs = time.time(), {"worker": stack.workers[-1].pid, "web": stack.web.pid, "sandbox": stack.sandbox.pid}
    cpu0 = {name: cpu_seconds(pid) for name, pid in procs.items()}
    r = await http.post("/v1/events", content=body, headers=headers(PARTNER, stack.secrets[PARTNER], body, time.time()))
    assert r.status_code == 202 and not r.json()["rejected"], r.text
    out: dict = {"n": n}

    async def sent():  # the tallies may show the last "sending" marks after the sandbox has the texts
        if "attempted" not in out and (await row(http, action_id)).get("asked_sms", 0) >= n:
            out["attempted"] = time.time() - t0
        if "count" not in out and (count := (await http.get(count_url, params={"channel": "sms"})).json())["count"] >= n:
            out["count"] = count
        return "attempted" in out and "count" in out

    try:
        await poll(f"{action_id}: {n} texts", sent, deadline, stack)
    except TimeoutError:  # report how far it got instead of nothing
        count = (await http.get(count_url, params={"channel": "sms"})).json()
        last = await row(http, action_id)
        console.print(f"[red]{action_id}: deadline: {count['count']:,} of {n:,} texts, tallies {last}[/]")
        return {**out, "texts": count["count"], "last": (count["last"] or t0) - t0, "in_doubt": last.get("in_doubt"),
                "failed": last.get("failed"), "attempted": out.get("attempted", float("nan")), "delivered": float("nan")}
    count = out.pop("count")
    out.update(texts=count["count"], first=count["first"] - t0, last=count["last"] - t0)
    if delivered:
        try:
            final = await poll(f"{action_id}: delivered", lambda: _settled(http, action_id, n), deadline, stack)
            out.update(delivered=time.time() - t0, in_doubt=final["in_doubt"], failed=final["failed"],
                       cpu={name: 1000 * (cpu_seconds(pid) - cpu0[name]) / n for name, pid in procs.items()})
        except TimeoutError:
            final = await row(http, action_id)
            out.update(delivered=float("nan"), in_doubt=final.get("in_doubt"), failed=final.get("failed"))
    return out


async def _settled(http: httpx.AsyncClient, action_id: str, n: int) -> dict | None:
    got = await row(http, action_id)
    return got if got.get("delivered", 0) + got.get("failed", 0) + got.get("in_doubt", 0) >= n else None


async def provider_path_alone(stack: BenchStack, n: int, concurrency: int) -> dict:
    """The baseline: n texts straight from this process through the same adapter (the Twilio SDK,
    ``send_concurrency`` in flight) to the same sandbox, with no Kafka, no tables, no callbacks:
    the most the send path could hand over on this machine."""
    sms = outbox_from(stack.settings.model_copy(update={"send_concurrency": concurrency})).sms
    try:
        await sms.send(phone(900_001), "warm-up")
        t = time.perf_counter()
        await asyncio.gather(*[sms.send(phone(800_000 + i), f"baseline {i}") for i in range(n)])
        return {"n": n, "seconds": time.perf_counter() - t}
    finally:
        await sms.aclose()


async def run(args) -> tuple[list[dict], dict]:
    auth, results = {"Authorization": f"Bearer {TOKEN}"}, []
    with bench_stack("outreach-fanout", console, outreach=True, send_concurrency=args.concurrency[0]) as one:
        one.start(faults=args.faults)
        console.print(f"fan-out stack: sandbox pid {one.sandbox.pid}, web pid {one.web.pid}, worker pid {one.workers[0].pid}, logs {one.tmp}")
        async with httpx.AsyncClient(base_url=one.url, headers=auth, timeout=120) as http:
            people = [signup(f"s-{i}", phone=phone(i), at="2026-11-20T10:00:00Z", given_name=f"P{i}", postal_code="94607") for i in range(args.people)]
            t = time.perf_counter()
            await sign_up(http, one, people + [signup("warm", phone=phone(900_000), given_name="W", postal_code="94609")], args.timeout)
            console.print(f"{args.people + 1:,} people signed up and tallied in {time.perf_counter() - t:.1f} s")
            for i, c in enumerate(args.concurrency):
                base = await provider_path_alone(one, min(args.people, 20_000), c)
                console.print(f"baseline, send_concurrency={c}: {base['n']:,} texts straight to the sandbox in {base['seconds']:.1f} s")
                if i:
                    worker = one.restart_worker({"TURNOUT_SEND_CONCURRENCY": str(c)})
                    console.print(f"worker restarted with send_concurrency={c}, pid {worker.pid}")
                await fan_out(http, one, f"warm-{c}", "94609", 1, args.timeout, delivered=False)  # the send path is up
                console.print(f"send_concurrency={c}: fan-out to {args.people:,} …")
                results.append({"concurrency": c, "baseline": base["n"] / base["seconds"],
                                **await fan_out(http, one, f"rally-{c}", "94607", args.people, args.timeout)})
    with bench_stack("outreach-rate", console, outreach=True, sms_rate=args.rate, send_concurrency=args.concurrency[0]) as two:
        two.start(faults=args.faults)
        async with httpx.AsyncClient(base_url=two.url, headers=auth, timeout=120) as http:
            people = [signup(f"r-{i}", phone=phone(i), at="2026-11-20T10:00:00Z", given_name=f"R{i}", postal_code="94612") for i in range(args.rate_people)]
            await sign_up(http, two, people + [signup("warm", phone=phone(900_000), given_name="W", postal_code="94609")], args.timeout)
            await fan_out(http, two, "warm-rate", "94609", 1, args.timeout, delivered=False)
            limited = await fan_out(http, two, "limited", "94612", args.rate_people, args.timeout, delivered=False)
            inbox = (await http.get(f"{two.sandbox_url}/_sandbox/inbox", params={"channel": "sms"})).json()
            limited["stamps"] = sorted(m["created"] for m in inbox)
    return results, limited


def report(results: list[dict], limited: dict, rate: float) -> None:
    table = Table("send_concurrency", "people", "texts", "all attempted s", "last handed over s", "asks/s", "baseline texts/s", "all delivered s",
                  "in doubt", "failed", "CPU ms/ask: worker / web / sandbox",
                  title="rapid-response fan-out (sms_rate 0); baseline: the SDK straight to the sandbox, no pipeline")
    for r in results:
        cpu = " / ".join(f"{r['cpu'][k]:.2f}" for k in ("worker", "web", "sandbox")) if "cpu" in r else "-"
        table.add_row(str(r["concurrency"]), f"{r['n']:,}", f"{r['texts']:,}", f"{r['attempted']:.1f}", f"{r['last']:.1f}", f"{r['texts'] / r['last']:,.0f}",
                      f"{r['baseline']:,.0f}", f"{r['delivered']:.1f}", str(r["in_doubt"]), str(r["failed"]), cpu)
    console.print(table)
    stamps, n = limited["stamps"], len(limited["stamps"])
    lo, hi = int(0.1 * (n - 1)), int(0.9 * (n - 1))
    measured = (hi - lo) / (stamps[hi] - stamps[lo])
    busiest = max(bisect.bisect_left(stamps, t + 1.0) - i for i, t in enumerate(stamps))  # texts in any 1 s window
    pause = max(b - a for a, b in zip(stamps[lo:hi], stamps[lo + 1 : hi + 1]))
    table = Table("people", "configured msg/s", "measured msg/s (p10–p90)", "error", "overall msg/s", "busiest 1 s", "longest pause ms",
                  title="SMS rate limit")
    table.add_row(f"{n:,}", f"{rate:g}", f"{measured:.1f}", f"{100 * (measured - rate) / rate:+.2f} %", f"{n / (stamps[-1] - stamps[0]):.1f}",
                  str(busiest), f"{1000 * pause:.0f}")
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100_000, help="N people in the fan-out (default 100000)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[32], help="send_concurrency value(s) to try (default 32)")
    ap.add_argument("--rate", type=float, default=200, help="sms_rate of the rate-limit phase (default 200)")
    ap.add_argument("--rate-people", type=int, default=3000, help="M people in the rate-limit phase (default 3000)")
    ap.add_argument("--timeout", type=float, default=1200, help="deadline per wait, seconds (default 1200)")
    ap.add_argument("--callback-delay-ms", type=int, default=20, help="sandbox delay before each status callback (default 20, "
                    "as the tests; 60000 keeps the callback storm out of the first minute of sending)")
    args = ap.parse_args()
    args.faults = json.dumps({"callback_delay_ms": args.callback_delay_ms})
    console.print(f"cores: {os.cpu_count()}; N = {args.people:,}; partitions = 8")
    report(*asyncio.run(run(args)), args.rate)


if __name__ == "__main__":
    main()
