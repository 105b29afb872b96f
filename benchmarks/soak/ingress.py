"""Scenarios on the event path: signed load through the ingress, with workers SIGKILLed or the
broker frozen (SIGSTOP) meanwhile, then the tallies compared with what was acknowledged.

- ``load``: ``events`` events as fast as the ingress takes them (``rate=None``) or paced; with
  ``kills`` the longest-running worker is SIGKILLed (and a new one started) each time another
  1/(kills+1) of the expected counts has reached the tallies, so the kills spread over the run.
- ``broker_pause``: paced load; once a quarter of it is acknowledged the broker is frozen for
  ``pause`` seconds. While frozen the ingress must answer 503 with Retry-After and never 2xx
  (an answer to a request sent after the freeze and received before the thaw cannot carry a
  broker acknowledgement); after it everything posted must be acknowledged and counted.

Both end when the tallies equal the counts of the acknowledged events, or stop moving for
``stall`` seconds, or at the deadline. lost = acknowledged facts missing from the tallies;
double = counts beyond every event posted (acknowledged or not).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
from rich.console import Console

from connectors.signing import headers
from tests.factories import action, phone, rsvp

from .load import Loader, LoadReport, actions_of, attendance, counts, lost_and_double, read_counts
from .outcome import Outcome
from benchmarks.stack import PARTNERS, TOKEN, BenchStack, bench_stack


def client(stack: BenchStack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30,
                             limits=httpx.Limits(max_connections=64))


async def warm_up(http: httpx.AsyncClient, stack: BenchStack, deadline: float, actions: list[str] = ()) -> None:
    """Post ``actions`` (RSVPs count only for posted actions), then one RSVP through ingress,
    worker and tally reader: the stack is ready."""
    events = [action(a) for a in ("warm-up", *actions)] + [rsvp("warm-0", "warm-up", phone=phone(7_999_999))]
    body = json.dumps(events).encode()
    partner = PARTNERS[0]
    r = await http.post("/v1/events", content=body, headers=headers(partner, stack.secrets[partner], body, time.time()))
    r.raise_for_status()
    while (r := await http.get("/v1/actions/warm-up/tallies")).status_code != 200 or r.json()["totals"]["rsvp_yes"] != 1:
        if dead := stack.dead():
            raise RuntimeError(f"process(es) {dead} exited during the warm-up")
        if time.monotonic() > deadline:
            raise TimeoutError("the warm-up RSVP was not counted in time")
        await asyncio.sleep(0.25)


async def follow(stack: BenchStack, http: httpx.AsyncClient, loader: Loader, out: Outcome, *, kills: int, stall: float,
                 deadline: float, on_tick=None) -> LoadReport:
    """Run the loader; poll the tallies until they equal the acknowledged counts (or stop moving,
    or the deadline); SIGKILL a worker at each 1/(kills+1) of the way. Fills ``out``."""
    task = asyncio.ensure_future(loader.run())
    report, actions = loader.report, actions_of(loader.report.batches)
    total = sum(report.everything().values())
    last, moved, killed, counted = None, time.monotonic(), [], None
    try:
        while True:
            try:
                actual = await read_counts(http, actions)
            except httpx.TransportError:
                # A pooled connection the web app closed as idle (its keep-alive) just as it was
                # reused, while the loaders waited out a 503: read again, as a dashboard would.
                await asyncio.sleep(0.5)
                continue
            now = time.monotonic()
            if actual != last:
                last, moved = actual, now
            progress = sum(actual.values()) / total
            if len(killed) < kills and progress >= (len(killed) + 1) / (kills + 1):
                pid = stack.kill_worker()
                killed.append(f"{pid}@{progress:.0%}")
            if on_tick is not None:
                await on_tick(report)
            if task.done():
                if actual == report.expected():
                    counted = now
                    break
                if now - moved > stall:
                    out.problems.append(f"the tallies stopped moving for {stall:.0f} s short of the acknowledged counts")
                    break
            if now > deadline:
                out.problems.append("deadline: the tallies did not reach the acknowledged counts in time")
                break
            if dead := stack.dead():
                out.problems.append(f"process(es) {dead} exited by themselves")
                break
            await asyncio.sleep(0.5)
    finally:
        if not task.done():
            task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    judge_load(out, report, last or actual, killed, kills, counted)
    return report


def judge_load(out: Outcome, report: LoadReport, actual, killed: list[str], kills: int, counted: float | None) -> None:
    """The figures of a load run: lost and double against what was acknowledged and posted, rates, kills."""
    out.problems += report.problems
    out.lost, out.double = lost_and_double(actual, report.expected(), report.expected(only_acked=False))
    out.got_503 = report.statuses()[503]
    if kills:
        out.figures["workers SIGKILLed (pid@progress)"] = ", ".join(killed)
        if len(killed) < kills:
            out.problems.append(f"only {len(killed)} of {kills} kills happened")
    out.seconds = (counted or time.monotonic()) - report.started
    out.rate = f"{report.events_acked / report.seconds:,.0f} ev/s accepted"
    if counted:
        out.rate += f", {sum(report.everything().values()) / (counted - report.started):,.0f} ev/s counted"


async def load(console: Console, *, name: str = "load", events: int = 200_000, clients: int = 4, workers: int = 1,
               kills: int = 0, rate: float | None = None, stall: float = 120, timeout: float = 900,
               workdir: Path | None = None) -> Outcome:
    batches = attendance(events, name)
    n = sum(counts(batches).values())
    out = Outcome(name, f"{n:,} events" + (f", {kills} SIGKILLs" if kills else ""))
    deadline = time.monotonic() + timeout
    with bench_stack(name, console, workdir) as stack:
        try:
            stack.start(workers=workers)
            async with client(stack) as http:
                await warm_up(http, stack, deadline, actions_of(batches))
                loader = Loader(http, stack.secrets, batches, clients=clients, rate=rate, deadline=deadline)
                await follow(stack, http, loader, out, kills=kills, stall=stall, deadline=deadline)
        except Exception as exc:  # a scenario reports what broke instead of ending the run
            out.problems.append(f"{type(exc).__name__}: {exc}")
        stack.failed = not out.passed
    return out


async def broker_pause(console: Console, *, name: str = "broker-pause", events: int = 60_000, rate: float = 1000,
                       pause: float = 20.0, clients: int = 4, workers: int = 1, ack_timeout: float = 5.0,
                       stall: float = 120, timeout: float = 600, workdir: Path | None = None) -> Outcome:
    batches = attendance(events, name, batch=100)
    n = sum(counts(batches).values())
    out = Outcome(name, f"{n:,} events at {rate:,.0f}/s, SIGSTOP {pause:g} s")
    deadline = time.monotonic() + timeout
    window: dict[str, float] = {}
    with bench_stack(name, console, workdir, ack_timeout=ack_timeout) as stack:
        try:
            stack.start(workers=workers)
            loop = asyncio.get_running_loop()

            def thaw() -> None:
                stack.resume_broker()
                window["resumed"] = time.monotonic()

            async def freeze_a_quarter_in(report: LoadReport) -> None:
                if "paused" not in window and report.events_acked >= n / 4:
                    stack.pause_broker()
                    window["paused"] = time.monotonic()
                    loop.call_later(pause, thaw)

            async with client(stack) as http:
                await warm_up(http, stack, deadline, actions_of(batches))
                loader = Loader(http, stack.secrets, batches, clients=clients, rate=rate, deadline=deadline)
                report = await follow(stack, http, loader, out, kills=0, stall=stall, deadline=deadline, on_tick=freeze_a_quarter_in)
            judge_pause(report, window, out)
        except Exception as exc:  # a scenario reports what broke instead of ending the run
            out.problems.append(f"{type(exc).__name__}: {exc}")
        finally:
            stack.resume_broker()  # never leave it frozen for the clean-up
        stack.failed = not out.passed
    return out


def judge_pause(report: LoadReport, window: dict[str, float], out: Outcome) -> None:
    """The ingress's answers around the freeze: 503 with Retry-After, never 2xx while frozen."""
    if "resumed" not in window:
        out.problems.append("the broker was never frozen and thawed (the load ended first)")
        return
    paused, resumed = window["paused"], window["resumed"]
    # Sent after the freeze and answered before the thaw: nothing can have acknowledged it.
    lies = [a for a in report.answers if a.status == 202 and a.sent > paused + 0.01 and a.answered < resumed]
    refusals = [a for a in report.answers if a.status == 503]
    bare = [a for a in refusals if not (a.retry_after or "").isdigit() or int(a.retry_after) < 1]
    if lies:
        out.problems.append(f"{len(lies)} requests answered 202 while the broker was frozen")
    if not refusals:
        out.problems.append("no 503 while the broker was frozen")
    if bare:
        out.problems.append(f"{len(bare)} answers 503 without a Retry-After of at least 1 s")
    after = [a.answered - resumed for a in report.answers if a.status == 202 and a.sent >= resumed]
    out.figures["503s (during the freeze)"] = f"{len(refusals)} ({sum(paused <= a.answered <= resumed + 1 for a in refusals)})"
    out.figures["2xx while frozen"] = len(lies)
    out.figures["first 202 after SIGCONT"] = f"{min(after):.1f} s" if after else "never"
    out.figures["requests (answers)"] = dict(sorted(report.statuses().items(), key=lambda kv: str(kv[0])))
