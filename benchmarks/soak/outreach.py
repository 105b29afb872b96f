"""Rapid-response outreach under worker SIGKILLs, judged by what the sandbox received.

- ``fan_out``: ``people`` people signed up through the ingress, then one rapid-response action
  texts them all while the longest-running of two workers is SIGKILLed (and replaced) each
  time another 1/(kills+1) of the texts has reached the sandbox. No number may be texted
  twice; every person is texted once or counted in doubt (a worker died between marking the
  ask "sending" and the provider's answer: never resent), at most two chunks of
  ``send_concurrency`` per kill; the tallies must say exactly that (asked = people,
  delivered = texts, in doubt = the rest).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import httpx
from rich.console import Console

from connectors.signing import headers
from tests.factories import phone, signup

from .ingress import client
from .load import Batch, Loader
from .outcome import Outcome
from benchmarks.stack import PARTNERS, BenchStack, bench_stack

SMS = {"en": "{given_name}: {action_title} at {place}, {local_time}. RSVP {rsvp_link}"}
EMAIL = {"en": {"subject": "{action_title}", "body": "Hi {given_name}, join us: {rsvp_link}"}}


def rapid(action_id: str, title: str, postal: str) -> dict:
    return {"type": "action", "event_id": f"a-{action_id}", "occurred_at": "2026-11-24T18:00:00Z", "action_id": action_id,
            "title": title, "kind": "rally", "starts_at": "2026-11-25T02:00:00Z", "time_zone": "America/Los_Angeles",
            "location": {"venue": "City Hall", "locality": "Oakland"}, "target": {"postal_codes": [postal]},
            "templates": {"sms": SMS, "email": EMAIL}, "rapid_response": True}


def person(i: int, postal: str = "94607", email: bool = False) -> dict:
    return signup(f"p-{i}", phone=phone(i), email=f"p{i}@example.org" if email else None, at="2026-11-20T10:00:00Z",
                  given_name=f"P{i}", postal_code=postal)


async def sign_up(http: httpx.AsyncClient, stack: BenchStack, people: list[dict], deadline: float) -> None:
    """Post the sign-ups through the ingress, spread over the partners; wait until all are counted."""
    batches = [Batch(PARTNERS[j % len(PARTNERS)], json.dumps(people[i : i + 500]).encode(), ())
               for j, i in enumerate(range(0, len(people), 500))]
    report = await Loader(http, stack.secrets, batches, clients=2, deadline=deadline).run()
    if report.problems:
        raise RuntimeError(f"sign-ups: {report.problems[:3]}")
    await until(stack, lambda: totals(http, "/v1/tallies", lambda t: t["signups"] == len(people)), deadline, "sign-ups counted")


async def post_action(http: httpx.AsyncClient, stack: BenchStack, action: dict) -> None:
    body, partner = json.dumps([action]).encode(), PARTNERS[0]
    r = await http.post("/v1/events", content=body, headers=headers(partner, stack.secrets[partner], body, time.time()))
    if r.status_code != 202 or r.json()["rejected"]:
        raise RuntimeError(f"posting {action['action_id']}: {r.status_code} {r.text[:200]}")


async def totals(http: httpx.AsyncClient, path: str, check=None):
    r = await http.get(path)
    if r.status_code != 200:
        return None
    t = r.json()["totals"]
    return t if check is None or check(t) else None


async def until(stack: BenchStack, check, deadline: float, what: str, interval: float = 0.5):
    while not (got := await check()):
        if dead := stack.dead():
            raise RuntimeError(f"process(es) {dead} exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in time")
        await asyncio.sleep(interval)
    return got


async def sms_count(http: httpx.AsyncClient, stack: BenchStack) -> dict:
    return (await http.get(f"{stack.sandbox_url}/_sandbox/inbox/count", params={"channel": "sms"})).json()


async def fan_out(console: Console, *, name: str = "fan-out-kill", people: int = 20_000, kills: int = 5, workers: int = 2,
                  send_concurrency: int = 16, sms_rate: float = 0, timeout: float = 900, workdir: Path | None = None) -> Outcome:
    out = Outcome(name, f"{people:,} people, {kills} SIGKILLs")
    deadline = time.monotonic() + timeout
    with bench_stack(name, console, workdir, outreach=True, send_concurrency=send_concurrency, sms_rate=sms_rate) as stack:
        try:
            stack.start(workers=workers)
            async with client(stack) as http:
                await sign_up(http, stack, [person(i) for i in range(people)] + [person(7_999_999, postal="94609")], deadline)
                await post_action(http, stack, rapid("warm-up", "Warm-up", "94609"))  # the send path is up
                await until(stack, lambda: texted(http, stack), deadline, "the warm-up text")
                (await http.delete(f"{stack.sandbox_url}/_sandbox/inbox")).raise_for_status()
                t0 = time.monotonic()
                await post_action(http, stack, rapid("rally", "Soak rally", "94607"))
                row, killed = await _kill_while_texting(http, stack, people, kills, deadline)
                out.seconds = time.monotonic() - t0
                texts = Counter(m["to"] for m in (await http.get(f"{stack.sandbox_url}/_sandbox/inbox", params={"channel": "sms"})).json())
                judge_fan_out(out, row, texts, people, kills, send_concurrency, killed)
                stamps = await sms_count(http, stack)
                if stamps["count"] > 1:
                    out.rate = f"{stamps['count'] / (stamps['last'] - stamps['first']):,.0f} texts/s"
        except Exception as exc:  # a scenario reports what broke instead of ending the run
            out.problems.append(f"{type(exc).__name__}: {exc}")
        stack.failed = not out.passed
    return out


async def texted(http: httpx.AsyncClient, stack: BenchStack) -> bool:
    return (await sms_count(http, stack))["count"] > 0


async def _kill_while_texting(http: httpx.AsyncClient, stack: BenchStack, people: int, kills: int, deadline: float):
    """Kill at each 1/(kills+1) of the texts; return the action's totals once they have settled
    (asked = people, delivered = texts, texts + in doubt = people, the same on two reads), or
    what they were at the deadline (marked ``unsettled``)."""
    killed: list[str] = []
    previous = None
    while True:
        count = (await sms_count(http, stack))["count"]
        if len(killed) < kills and count >= (len(killed) + 1) * people / (kills + 1):
            killed.append(f"{stack.kill_worker()}@{count / people:.0%}")
        row = await totals(http, "/v1/actions/rally/tallies")
        settled = row and row["asked_sms"] == people and row["delivered"] == count and count + row["in_doubt"] == people
        if settled and (row, count) == previous:
            return row, killed
        previous = (row, count) if settled else None
        if dead := stack.dead():
            raise RuntimeError(f"process(es) {dead} exited by themselves")
        if time.monotonic() > deadline:  # judged all the same: a second text would show why
            return (row or {}) | {"unsettled": f"{count:,} texts, tallies {row}"}, killed
        await asyncio.sleep(0.5)


def judge_fan_out(out: Outcome, row: dict, texts: Counter[str], people: int, kills: int, concurrency: int, killed: list[str]) -> None:
    row = {"asked_sms": 0, "delivered": 0, "failed": 0, "in_doubt": 0} | row
    out.double = sum(n - 1 for n in texts.values() if n > 1)
    out.in_doubt = row["in_doubt"]
    out.lost = people - len(texts) - row["in_doubt"]
    if "unsettled" in row:
        out.problems.append(f"deadline: the fan-out did not settle ({row['unsettled']})")
    out.figures.update({"workers SIGKILLed (pid@texts)": ", ".join(killed), "texts": f"{len(texts):,}",
                        "tallies": {k: row[k] for k in ("asked_sms", "delivered", "failed", "in_doubt")}})
    if out.double:
        out.problems.append(f"{out.double} second texts to the same number")
    if out.lost:
        out.problems.append(f"{out.lost} people neither texted nor in doubt")
    if row["in_doubt"] > kills * 2 * concurrency:
        out.problems.append(f"{row['in_doubt']} in doubt: more than 2 chunks of {concurrency} per kill")
    if row["failed"]:
        out.problems.append(f"{row['failed']} asks failed (the sandbox had no faults)")
    if len(killed) < kills:
        out.problems.append(f"only {len(killed)} of {kills} kills happened")
