"""Outreach throughput: how fast one rapid-response action is handed to the provider, next to the
Twilio SDK alone in the same run; and, behind a Twilio-like queue, that turnout hands over at
API speed while the provider paces.

Each phase runs against a stack of its own (``benchmarks.stack``: an embedded broker, Tansu,
memory-only, 8 partitions; the sandbox providers, reached through the real Twilio SDK; one
worker and one web app). The workers' clock is a file clock at 11:00 in Oakland: no quiet
hours. N people with SMS consent only (postal code 94607 or 94612) are produced straight to the
events topic as the ingress's own ``envelopes()`` (not timed) until GET /v1/tallies shows them
all; a warm-up action to one other person proves the send path is up. Then one rapid-response
action is posted through the signed ingress and the clock starts (t0).

1. Hand-over (sandbox without a queue, ``TURNOUT_SMS_RATE=0``): "handed over s" is t0 until the
   sandbox's ``created`` stamp of the N-th text (``/_sandbox/inbox/count``, polled every 0.25 s;
   the stamp makes it exact), so "asks/s" = N / that; "ratio" = asks/s / baseline texts/s.
   Baseline, measured just before and again just after each row (the mean of the two: the
   machine's speed drifts between runs): the same N texts from this process straight through
   the same adapter (the Twilio SDK, ``send_concurrency`` in flight) to the same sandbox: no
   Kafka, no tables, no status callbacks, the most this machine hands over; "baseline CPU
   ms/text" is this process's CPU per text meanwhile, the SDK's own cost (and the sandbox's
   beside it). "CPU ms/ask" is a process's user + system CPU from t0, divided by N: until the
   N-th text was seen ("handed over": the worker, the web app, the sandbox and the broker) and
   until every ask settled ("settled": delivered, failed or in doubt, so the status callbacks
   included). One row per ``--callback-delay-ms``: 20 ms (as the tests) puts the
   callback storm (two per text, through the web app to the worker) on the same two cores as
   the hand-over, which a real Twilio queue spreads at the sender's rate; 60,000 ms holds it
   until after the hand-over, so that row shows the send path itself (its "settled" CPU then
   includes a minute of idle worker).
2. Queue (the sandbox's Twilio queue at ``--mps``, ``TURNOUT_SANDBOX_SMS_MPS``; the worker's
   ``TURNOUT_SMS_RATE`` set to the same, so it predicts the queue): "handed over s" as above,
   shown beside the texts' segments / mps (what pacing inside turnout would take: MPS counts
   segments, as Twilio's does, and a text naming its sponsor, its link and the footer is two)
   and the baseline's time for N texts. "leave rate" is texts, and segments, per second by the
   ``left`` stamps of the inbox between the 10th and the 90th percentile (the steady window: the
   first and last tenth hold the start-up and the drain); the segments' rate beside the
   configured mps (target: within 5 %); and texts overall, by ``GET /_sandbox/queue`` (count -
   1) / (last - first). Also: texts that expired (30036) or overflowed in the queue, which must
   be none.

The machine's load average is printed before and after: the figures are only comparable between
runs on an otherwise idle machine, and the ratio only with the baseline of the same run.

Run from the repository root:  .venv/bin/python -m benchmarks.outreach --people 20000
"""

from __future__ import annotations

import argparse, asyncio, json, os, resource, sys, time  # noqa: E401
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests.factories` also as a plain script

import httpx
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from connectors.providers.outbox import outbox_from
from connectors.signing import headers
from benchmarks.stack import PARTNER, TOKEN, BenchStack, bench_stack, sealed_envelopes, until
from streams.settings import Settings
from streams.topology import events_topic
from tests.factories import phone, signup

SMS = {"en": "{given_name}: {action_title} at {place}, {local_time}. RSVP {rsvp_link}"}
console = Console(width=max(Console().width, 160))


def rapid(action_id: str, postal: str) -> dict:
    return {"type": "action", "event_id": f"a-{action_id}", "occurred_at": "2026-11-24T18:00:00Z", "action_id": action_id,
            "title": f"Rally {action_id}", "kind": "rally", "starts_at": "2026-11-25T02:00:00Z", "time_zone": "America/Los_Angeles",
            "location": {"venue": "City Hall", "locality": "Oakland"}, "target": {"postal_codes": [postal]},
            "templates": {"sms": SMS, "email": {}}, "rapid_response": True}


async def sign_up(http: httpx.AsyncClient, stack: BenchStack, people: list[dict], timeout: float) -> None:
    s = stack.settings
    records, result = await sealed_envelopes(s, people, PARTNER)
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

    await until(stack, seen, time.monotonic() + timeout, "signups", 1.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux): cost per ask, whatever else runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def row(http: httpx.AsyncClient, action_id: str) -> dict:
    r = await http.get(f"/v1/actions/{action_id}/tallies")
    return next((p for p in r.json()["partners"] if p["partner"] == PARTNER), {}) if r.status_code == 200 else {}


async def fan_out(http: httpx.AsyncClient, stack: BenchStack, action_id: str, postal: str, n: int, timeout: float, settle: bool = True) -> dict:
    """Post a rapid-response action for ``postal``; time it until the sandbox has n texts, then
    (``settle``) until every ask is delivered, failed or in doubt."""
    count_url = f"{stack.sandbox_url}/_sandbox/inbox/count"
    (await http.delete(f"{stack.sandbox_url}/_sandbox/inbox")).raise_for_status()
    deadline, body = time.monotonic() + timeout, json.dumps([rapid(action_id, postal)]).encode()
    t0, procs = time.time(), {"worker": stack.workers[-1].pid, "web": stack.web.pid, "sandbox": stack.sandbox.pid,
                                "broker": stack.broker.proc.pid}
    cpu0 = {name: cpu_seconds(pid) for name, pid in procs.items()}
    r = await http.post("/v1/events", content=body, headers=headers(PARTNER, stack.secrets[PARTNER], body, time.time()))
    assert r.status_code == 202 and not r.json()["rejected"], r.text

    async def handed_over():
        count = (await http.get(count_url, params={"channel": "sms"})).json()
        return count if count["count"] >= n else None

    try:
        count = await until(stack, handed_over, deadline, f"{action_id}: {n} texts", 0.25)
    except TimeoutError:  # report how far it got instead of nothing
        count = (await http.get(count_url, params={"channel": "sms"})).json()
        raise RuntimeError(f"{action_id}: deadline: {count['count']:,} of {n:,} texts, tallies {await row(http, action_id)}") from None
    cpu = {name: 1000 * (cpu_seconds(pid) - cpu0[name]) / n for name, pid in procs.items()}
    out = {"n": n, "texts": count["count"], "handed_over": count["last"] - t0, "cpu_handed_over": cpu}
    if settle:
        final = await until(stack, lambda: _settled(http, action_id, n), deadline, f"{action_id}: settled", 0.25)
        out.update(delivered=time.time() - t0, in_doubt=final["in_doubt"], failed=final["failed"],
                   cpu={name: 1000 * (cpu_seconds(pid) - cpu0[name]) / n for name, pid in procs.items()})
    return out


async def _settled(http: httpx.AsyncClient, action_id: str, n: int) -> dict | None:
    got = await row(http, action_id)
    return got if got.get("delivered", 0) + got.get("failed", 0) + got.get("in_doubt", 0) >= n else None


async def provider_path_alone(stack: BenchStack, n: int, concurrency: int) -> dict:
    """The baseline: n texts straight from this process through the same adapter (the Twilio SDK,
    ``send_concurrency`` in flight) to the same sandbox, with no Kafka, no tables, no callbacks."""
    sms = outbox_from(stack.settings.model_copy(update={"send_concurrency": concurrency})).sms
    try:
        await sms.send(phone(900_001), "warm-up")
        t, cpu, sandbox = time.perf_counter(), own_cpu_seconds(), cpu_seconds(stack.sandbox.pid)
        await asyncio.gather(*[sms.send(phone(800_000 + i), f"baseline {i}") for i in range(n)])
        seconds = time.perf_counter() - t
        return {"n": n, "seconds": seconds, "rate": n / seconds, "cpu": 1000 * (own_cpu_seconds() - cpu) / n,
                "sandbox": 1000 * (cpu_seconds(stack.sandbox.pid) - sandbox) / n}
    finally:
        await sms.aclose()


def both(before: dict, after: dict) -> dict:
    """The baseline of a row: the mean of the runs just before and just after it (this machine's
    speed drifts by a fifth or more from one minute to the next)."""
    return {**{k: (before[k] + after[k]) / 2 for k in ("rate", "cpu", "sandbox")}, "rates": (before["rate"], after["rate"])}


def people(n: int, prefix: str, postal: str) -> list[dict]:
    return [signup(f"{prefix}-{i}", phone=phone(i), at="2026-11-20T10:00:00Z", given_name=f"P{i}", postal_code=postal) for i in range(n)] + \
        [signup("warm", phone=phone(900_000), given_name="W", postal_code="94609")]


async def hand_over(args) -> list[dict]:
    """Phase 1: no queue; a fan-out per --concurrency value, each with its baseline."""
    auth, results = {"Authorization": f"Bearer {TOKEN}"}, []
    with bench_stack("outreach-fanout", console, outreach=True, send_concurrency=args.concurrency[0]) as one:
        one.start()
        console.print(f"hand-over stack: sandbox pid {one.sandbox.pid}, web pid {one.web.pid}, worker pid {one.workers[0].pid}")
        async with httpx.AsyncClient(base_url=one.url, headers=auth, timeout=120) as http:
            t = time.perf_counter()
            await sign_up(http, one, people(args.people, "s", "94607"), args.timeout)
            console.print(f"{args.people + 1:,} people signed up and tallied in {time.perf_counter() - t:.1f} s")
            for i, c in enumerate(args.concurrency):
                if i:
                    worker = one.restart_worker({"TURNOUT_SEND_CONCURRENCY": str(c)})
                    console.print(f"worker restarted with send_concurrency={c}, pid {worker.pid}")
                for delay in args.callback_delay_ms:
                    (await http.post(f"{one.sandbox_url}/_sandbox/faults", json={"callback_delay_ms": delay})).raise_for_status()
                    await fan_out(http, one, f"warm-{c}-{delay}", "94609", 1, args.timeout, settle=False)  # the send path is up
                    before = await provider_path_alone(one, args.people, c)
                    console.print(f"baseline, send_concurrency={c}: {before['n']:,} texts straight to the sandbox in {before['seconds']:.1f} s")
                    console.print(f"send_concurrency={c}, callbacks after {delay:,} ms: fan-out to {args.people:,} …")
                    out = await fan_out(http, one, f"rally-{c}-{delay}", "94607", args.people, args.timeout)
                    after = await provider_path_alone(one, args.people, c)
                    console.print(f"baseline again: {after['n']:,} texts in {after['seconds']:.1f} s")
                    results.append({"concurrency": c, "delay": delay, "baseline": both(before, after), **out})
    return results


async def queue(args) -> dict:
    """Phase 2: the sandbox queues at --mps and the worker predicts it (TURNOUT_SMS_RATE)."""
    auth, c = {"Authorization": f"Bearer {TOKEN}"}, args.concurrency[0]
    with bench_stack("outreach-queue", console, outreach=True, sms_rate=args.mps, sandbox_sms_mps=args.mps, send_concurrency=c) as two:
        two.start(faults=json.dumps({"callback_delay_ms": args.callback_delay_ms[0]}))
        async with httpx.AsyncClient(base_url=two.url, headers=auth, timeout=120) as http:
            await sign_up(http, two, people(args.queue_people, "q", "94612"), args.timeout)
            await fan_out(http, two, "warm-queue", "94609", 1, args.timeout, settle=False)
            await until(two, lambda: _queue_state(http, two, lambda q: q["waiting"] == 0), time.monotonic() + 60, "the warm-up text left", 0.25)
            base = await provider_path_alone(two, min(args.queue_people, 2_000), c)  # the sandbox's queue takes them all at once
            await until(two, lambda: _queue_state(http, two, lambda q: q["waiting"] == 0), time.monotonic() + args.timeout,
                        "the baseline's texts left", 1.0)
            (await http.delete(f"{two.sandbox_url}/_sandbox/inbox")).raise_for_status()
            console.print(f"queue at {args.mps:g}/s: fan-out to {args.queue_people:,} …")
            out = await fan_out(http, two, "queued", "94612", args.queue_people, args.timeout, settle=False)
            state = await until(two, lambda: _queue_state(http, two, lambda q: q["waiting"] == 0),
                                time.monotonic() + args.timeout + args.queue_people / args.mps, "every text left the queue", 1.0)
            inbox = (await http.get(f"{two.sandbox_url}/_sandbox/inbox", params={"channel": "sms"})).json()
            out.update(baseline=base, queue=state, left=sorted((m["left"], m["segments"]) for m in inbox if m["left"] is not None))
            return out


async def _queue_state(http: httpx.AsyncClient, stack: BenchStack, check) -> dict | None:
    state = (await http.get(f"{stack.sandbox_url}/_sandbox/queue")).json()
    return state if check(state) else None


def report_hand_over(results: list[dict]) -> None:
    table = Table("send conc.", "callbacks after ms", "N", "handed over s", "asks/s", "baseline texts/s", "ratio", "settled s",
                  "in doubt", "failed", "worker CPU ms/ask handed over / settled", "web / sandbox / broker CPU ms/ask handed over",
                  "web / sandbox CPU ms/ask settled", "baseline CPU ms/text: SDK / sandbox",
                  title="1. hand-over, sandbox without a queue; baseline: the Twilio SDK straight to the sandbox, mean of the runs just before and after "
                        "(each in brackets)")
    for r in results:
        rate, base, cpu = r["n"] / r["handed_over"], r["baseline"], r["cpu"]
        table.add_row(str(r["concurrency"]), f"{r['delay']:,}", f"{r['n']:,}", f"{r['handed_over']:.1f}", f"{rate:,.0f}", f"{base['rate']:,.0f} ({base['rates'][0]:,.0f}, {base['rates'][1]:,.0f})",
                      f"{rate / base['rate']:.2f}", f"{r['delivered']:.1f}", str(r["in_doubt"]), str(r["failed"]),
                      f"{r['cpu_handed_over']['worker']:.2f} / {cpu['worker']:.2f}",
                      " / ".join(f"{r['cpu_handed_over'][name]:.2f}" for name in ("web", "sandbox", "broker")), f"{cpu['web']:.2f} / {cpu['sandbox']:.2f}",
                      f"{base['cpu']:.2f} / {base['sandbox']:.2f}")
    console.print(table)


def report_queue(q: dict, mps: float) -> None:
    stamps, segments = [t for t, _ in q["left"]], [k for _, k in q["left"]]
    n, state, base = q["n"], q["queue"], q["baseline"]
    lo, hi = int(0.1 * (len(stamps) - 1)), int(0.9 * (len(stamps) - 1))
    texts = (hi - lo) / (stamps[hi] - stamps[lo])  # those that left after the p10 one, until the p90 one
    steady = sum(segments[lo + 1 : hi + 1]) / (stamps[hi] - stamps[lo])
    left = state["left"]
    overall = (left["count"] - 1) / (left["last"] - left["first"])
    table = Table("N", "segments / text", "handed over s", "N segments / mps s", "baseline s for N", "leave rate texts/s p10–p90",
                  "segments/s p10–p90", "configured mps", "error", "overall texts/s", "left", "expired", "overflowed",
                  title=f"2. hand-over behind the sandbox's Twilio queue (--sms-mps {mps:g}, TURNOUT_SMS_RATE {mps:g}; MPS counts segments)")
    table.add_row(f"{n:,}", f"{sum(segments) / len(segments):.2f}", f"{q['handed_over']:.1f}", f"{sum(segments) / mps:,.0f}",
                  f"{n / base['rate']:.1f}", f"{texts:.1f}", f"{steady:.1f}", f"{mps:g}", f"{100 * (steady - mps) / mps:+.2f} %",
                  f"{overall:.1f}", f"{left['count']:,}", str(state["expired"]), str(state["overflowed"]))
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=20_000, help="N people in the hand-over fan-out (default 20000)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[Settings.model_fields["send_concurrency"].default],
                    help="send_concurrency value(s) to try (default: the product's, 16); the queue phase uses the first")
    ap.add_argument("--mps", type=float, default=200, help="the sandbox queue's texts per second, and TURNOUT_SMS_RATE (default 200)")
    ap.add_argument("--queue-people", type=int, default=None, help="people in the queue phase (default: --people)")
    ap.add_argument("--only", choices=("hand-over", "queue"), default=None, help="run one phase only")
    ap.add_argument("--timeout", type=float, default=1200, help="deadline per wait, seconds (default 1200)")
    ap.add_argument("--callback-delay-ms", type=int, nargs="+", default=[20, 60_000],
                    help="the sandbox's delay before each status callback, one hand-over row per value (default 20, as the tests, "
                    "and 60000: the callback storm after the hand-over instead of on the same cores); the queue phase uses the first")
    args = ap.parse_args()
    args.queue_people = args.queue_people or args.people
    console.print(f"cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; N = {args.people:,}; partitions = 8")
    if args.only != "queue":
        report_hand_over(asyncio.run(hand_over(args)))
    if args.only != "hand-over":
        report_queue(asyncio.run(queue(args)), args.mps)
    console.print(f"load average {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min) at the end")


if __name__ == "__main__":
    main()
