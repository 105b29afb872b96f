"""A provider storm: SMS and email to ``people`` people while the sandbox answers ``share_429``
of requests 429, ``share_5xx`` 5xx, and hangs ``share_timeout`` of them past the client's
timeout (``provider_timeout``). One person in ``special_every`` has an invalid number (21211),
one is opted out at the carrier (21610), one has a landline (accepted, then 30006 in the
callback) and one an email address that bounces.

Judged from the sandbox's attempt log (``verdicts``): no ask accepted twice, no permanent
failure sent again, every other ask accepted once, or in doubt because its request timed out
(never retried: the provider may have it), or failed after the outbox's last retry; and the
action's tallies must equal what those verdicts imply, figure for figure.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import httpx
from rich.console import Console

from tests.factories import phone

from .ingress import client
from .outcome import Outcome
from .outreach import person, post_action, rapid, sign_up, totals
from benchmarks.stack import BenchStack, bench_stack
from .verdicts import expected_tallies, storm_verdicts

ATTEMPTS = 8  # ProviderOutbox's default: sends of one ask before a transient failure is final
FIGURES = ("asked_sms", "asked_email", "delivered", "failed", "in_doubt")


def special(people: int, every: int) -> dict[str, list[int]]:
    """Which people fail how: four consecutive people in every ``every``."""
    return {kind: list(range(k, people, every)) for k, kind in enumerate(("invalid", "opted_out", "landline", "bounce"))}


def faults(people: int, every: int, share_429: float, share_5xx: float, share_timeout: float, provider_timeout: float) -> dict:
    odd = special(people, every)
    return {"share_429": share_429, "share_5xx": share_5xx, "share_timeout": share_timeout,
            "timeout_hang_ms": int((provider_timeout + 1.5) * 1000),  # past the client's patience
            "invalid_numbers": [phone(i) for i in odd["invalid"]], "opted_out_numbers": [phone(i) for i in odd["opted_out"]],
            "landline_numbers": [phone(i) for i in odd["landline"]], "bounce_emails": [f"p{i}@example.org" for i in odd["bounce"]]}


async def storm(console: Console, *, name: str = "storm", people: int = 5_000, share_429: float = 0.15, share_5xx: float = 0.15,
                share_timeout: float = 0.05, provider_timeout: float = 3.0, special_every: int = 50, send_concurrency: int = 16,
                workers: int = 1, timeout: float = 900, workdir: Path | None = None) -> Outcome:
    out = Outcome(name, f"{people:,} people × SMS + email; {share_429 + share_5xx:.0%} 429/5xx, {share_timeout:.0%} timeouts")
    deadline = time.monotonic() + timeout
    storm_faults = faults(people, special_every, share_429, share_5xx, share_timeout, provider_timeout)
    with bench_stack(name, console, workdir, outreach=True, send_concurrency=send_concurrency, provider_timeout=provider_timeout) as stack:
        try:
            stack.start(workers=workers, faults=json.dumps(storm_faults))
            async with client(stack) as http:
                await sign_up(http, stack, [person(i, email=True) for i in range(people)], deadline)
                t0 = time.monotonic()
                await post_action(http, stack, rapid("storm", "Storm rally", "94607"))
                asks = [("sms", phone(i)) for i in range(people)] + [("email", f"p{i}@example.org") for i in range(people)]
                odd = special(people, special_every)
                fail_after = {("sms", phone(i)) for i in odd["landline"]} | {("email", f"p{i}@example.org") for i in odd["bounce"]}
                refusable = {("sms", phone(i)) for i in odd["invalid"] + odd["opted_out"]}
                verdicts, row, log = await settle(http, stack, asks, fail_after, deadline)
                out.seconds = time.monotonic() - t0
                out.rate = f"{len(asks) / out.seconds:,.0f} asks/s"
                judge_storm(out, verdicts, row, log, fail_after, refusable)
        except Exception as exc:  # a scenario reports what broke instead of ending the run
            out.problems.append(f"{type(exc).__name__}: {exc}")
        stack.failed = not out.passed
    return out


async def settle(http: httpx.AsyncClient, stack: BenchStack, asks: list[tuple[str, str]], fail_after: set, deadline: float):
    """Poll until no ask is pending and the tallies equal the verdicts' figures on two reads in a row
    (or the deadline); return the verdicts, the tallies and the attempt log."""
    previous = None
    while True:
        log = (await http.get(f"{stack.sandbox_url}/_sandbox/attempts")).json()
        verdicts = storm_verdicts(log, asks, ATTEMPTS)
        row = await totals(http, "/v1/actions/storm/tallies") or {}
        want, got = expected_tallies(verdicts, fail_after), Counter({k: row.get(k, 0) for k in FIGURES})
        settled = "pending" not in verdicts.values() and +got == +want
        if settled and previous == got:
            return verdicts, row, log
        previous = got if settled else None
        if dead := stack.dead():
            raise RuntimeError(f"process(es) {dead} exited by themselves")
        if time.monotonic() > deadline:
            pending = Counter(verdicts.values())["pending"]
            return verdicts, row | {"unsettled": f"{pending} asks pending; tallies {dict(got)} vs verdicts {dict(want)}"}, log
        await asyncio.sleep(1.0)


def judge_storm(out: Outcome, verdicts: dict, row: dict, log: list[dict], fail_after: set, refusable: set) -> None:
    kinds = Counter(verdicts.values())
    out.double, out.in_doubt = kinds["double"], row.get("in_doubt")
    out.lost = kinds["pending"]
    refused = {ask for ask, v in verdicts.items() if v == "refused"}
    out.figures.update({
        "requests": f"{len(log):,} ({dict(Counter(a['outcome'] for a in log))})",
        "asks": dict(kinds), "tallies": {k: row.get(k) for k in FIGURES},
        "in doubt (sms, email)": (sum(v == "in_doubt" for (c, _), v in verdicts.items() if c == "sms"),
                                  sum(v == "in_doubt" for (c, _), v in verdicts.items() if c == "email")),
    })
    if "unsettled" in row:
        out.problems.append(f"deadline: {row['unsettled']}")
    if kinds["double"]:
        out.problems.append(f"{kinds['double']} asks accepted twice")
    if kinds["resent"]:
        out.problems.append(f"{kinds['resent']} asks sent again after a permanent failure or an acceptance")
    if refused - refusable:
        out.problems.append(f"{len(refused - refusable)} asks refused that had a valid, subscribed number")
    # An invalid or opted-out number whose request timed out before the refusal is in doubt.
    if unsettled := [ask for ask in refusable if verdicts[ask] not in ("refused", "in_doubt", "exhausted")]:
        out.problems.append(f"{len(unsettled)} invalid or opted-out numbers neither refused, in doubt nor given up on")
    if not any(a["outcome"] in ("429", "5xx") for a in log):
        out.problems.append("no storm: the sandbox answered no 429 or 5xx")
