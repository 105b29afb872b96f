"""Load: signed batches posted through the real ingress, and what the tallies must then say.

``attendance(n)`` builds a workload: ⌈n/3⌉ people, each with a sign-up, an RSVP "yes" and a
check-in posted by one of four partners, shuffled across batches so that a person's three
events arrive in different requests; every ``repeat_every``-th batch is posted a second time
later on (a partner re-sending), which must change nothing. Each event adds exactly one to one
count, its ``Key`` — (metric, action or None, partner) — so the expected tallies are the keys of
the events the ingress acknowledged.

``Loader`` posts the batches from ``clients`` concurrent senders, as fast as the ingress takes
them or paced to ``rate`` events/s. A 503 is honoured as a partner would: wait Retry-After,
post the same batch again (event ids make that idempotent); so is a request with no answer.
Every answer is kept with when it was sent and received, for the broker-pause checks.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import httpx

from connectors.signing import headers
from tests.factories import checkin, phone, rsvp, signup

from benchmarks.stack import PARTNERS

Key = tuple[str, str | None, str]  # (metric, action or None for sign-ups, partner)


@dataclass(frozen=True)
class Batch:
    partner: str
    body: bytes
    keys: tuple[Key, ...]


@dataclass(frozen=True)
class Answer:
    batch: int
    sent: float  # time.monotonic()
    answered: float
    status: int | None  # None: no answer (connection error, client timeout)
    retry_after: str | None


@dataclass
class LoadReport:
    batches: list[Batch]
    answers: list[Answer] = field(default_factory=list)
    acked: set[int] = field(default_factory=set)
    started: float = 0.0
    finished: float = 0.0
    problems: list[str] = field(default_factory=list)

    def expected(self, only_acked: bool = True) -> Counter[Key]:
        """The counts the tallies must show: of the acknowledged batches, or of every batch posted."""
        chosen = self.acked if only_acked else {a.batch for a in self.answers}
        return counts(self.batches[i] for i in chosen)

    def everything(self) -> Counter[Key]:
        """The counts once every batch is acknowledged."""
        return counts(self.batches)

    @property
    def events_acked(self) -> int:
        return sum(len(self.batches[i].keys) for i in self.acked)

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)

    def statuses(self) -> Counter[int | None]:
        return Counter(a.status for a in self.answers)


def counts(batches: Iterable[Batch]) -> Counter[Key]:
    """What the batches add to the tallies; a batch posted twice (the same object) counts once."""
    unique = {id(b): b for b in batches}.values()
    return Counter(k for b in unique for k in b.keys)


def attendance(n_events: int, prefix: str, *, actions: int = 8, batch: int = 500, repeat_every: int = 25,
               first_phone: int = 0, seed: int = 1) -> list[Batch]:
    """At least ``n_events`` events (rounded up to a multiple of 3: three per person); see the module docstring."""
    rng = random.Random(seed)
    per_partner: dict[str, list[tuple[dict, Key]]] = {p: [] for p in PARTNERS}
    for i in range(-(-n_events // 3)):
        partner, action, number = PARTNERS[i % len(PARTNERS)], f"{prefix}-{i % actions}", phone(first_phone + i)
        per_partner[partner] += [
            (signup(f"{prefix}-s{i}", phone=number), ("signups", None, partner)),
            (rsvp(f"{prefix}-r{i}", action, phone=number), ("rsvp_yes", action, partner)),
            (checkin(f"{prefix}-c{i}", action, phone=number), ("attended", action, partner)),
        ]
    chunks: list[list[Batch]] = []
    for partner, items in per_partner.items():
        rng.shuffle(items)
        chunks.append([Batch(partner, json.dumps([e for e, _ in part]).encode(), tuple(k for _, k in part))
                       for part in (items[j : j + batch] for j in range(0, len(items), batch))])
    interleaved = [b for row in zip(*chunks, strict=False) for b in row] + [b for c in chunks for b in c[min(map(len, chunks)):]]
    out: list[Batch] = []
    for j, b in enumerate(interleaved):
        out.append(b)
        if repeat_every and j % repeat_every == repeat_every - 1:
            out.append(interleaved[j - 2])  # the same batch again, a few requests later
    return out


def actions_of(batches: list[Batch]) -> list[str]:
    return sorted({k[1] for b in batches for k in b.keys if k[1] is not None})


class Loader:
    """``await run()`` posts ``batches``; ``report`` fills in meanwhile (scenarios watch it to time their faults)."""

    def __init__(self, http: httpx.AsyncClient, secrets: dict[str, str], batches: list[Batch], *, clients: int,
                 rate: float | None = None, deadline: float) -> None:
        self.http, self.secrets, self.clients, self.rate, self.deadline = http, secrets, clients, rate, deadline
        self.report = LoadReport(batches)

    async def run(self) -> LoadReport:
        report, batches = self.report, self.report.batches
        starts, offset = [], 0  # when each batch may first be posted (pacing), relative to t0
        for b in batches:
            starts.append(offset / self.rate if self.rate else 0.0)
            offset += len(b.keys)
        queue = iter(range(len(batches)))
        report.started = t0 = time.monotonic()

        async def sender() -> None:
            for i in queue:  # a shared iterator: each batch is taken by exactly one sender
                if (wait := t0 + starts[i] - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                await self._deliver(i, batches[i], report)

        await asyncio.gather(*(sender() for _ in range(self.clients)))
        report.finished = max((a.answered for a in report.answers if a.batch in report.acked and a.status == 202), default=t0)
        return report

    async def _deliver(self, i: int, batch: Batch, report: LoadReport) -> None:
        """Post until acknowledged, honouring Retry-After, or until the deadline."""
        while time.monotonic() < self.deadline:
            sent = time.monotonic()
            try:
                r = await self.http.post("/v1/events", content=batch.body,
                                         headers=headers(batch.partner, self.secrets[batch.partner], batch.body, time.time()))
            except httpx.HTTPError:
                report.answers.append(Answer(i, sent, time.monotonic(), None, None))
                await asyncio.sleep(1.0)  # no answer: a partner tries again a moment later
                continue
            report.answers.append(Answer(i, sent, time.monotonic(), r.status_code, r.headers.get("retry-after")))
            if r.status_code == 202:
                if r.json()["rejected"]:
                    report.problems.append(f"batch {i}: events rejected: {r.text[:200]}")
                report.acked.add(i)
                return
            if r.status_code != 503:
                report.problems.append(f"batch {i}: POST /v1/events answered {r.status_code}: {r.text[:200]}")
                return
            after = r.headers.get("retry-after", "")
            await asyncio.sleep(int(after) if after.isdigit() else 1.0)
        report.problems.append(f"batch {i}: not acknowledged before the deadline")


async def read_counts(http: httpx.AsyncClient, actions: list[str]) -> Counter[Key]:
    """The tallies, as counts per ``Key`` (sign-ups per partner, RSVP yes and attended per action and partner)."""
    counts: Counter[Key] = Counter()
    r = await http.get("/v1/tallies")
    r.raise_for_status()
    for row in r.json()["partners"]:
        counts[("signups", None, row["partner"])] = row["signups"]
    for action in actions:
        r = await http.get(f"/v1/actions/{action}/tallies")
        if r.status_code == 404:
            continue
        r.raise_for_status()
        for row in r.json()["partners"]:
            for metric in ("rsvp_yes", "attended"):
                counts[(metric, action, row["partner"])] = row[metric]
    return +counts


def lost_and_double(actual: Counter[Key], at_least: Counter[Key], at_most: Counter[Key]) -> tuple[int, int]:
    """Facts missing from the tallies (below what was acknowledged) and counted beyond what was posted."""
    keys = set(actual) | set(at_least) | set(at_most)
    lost = sum(max(0, at_least[k] - actual[k]) for k in keys)
    double = sum(max(0, actual[k] - at_most[k]) for k in keys)
    return lost, double
