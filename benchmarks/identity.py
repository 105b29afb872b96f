"""Identity resolution at work, for ``benchmarks.pipeline``: the same worker and broker, N people.

Set-up (not timed): partner A signs up N people by email only. Then, timed, end to end:

1. **Links with a fold each**: partner B signs each of them up with a new phone and the same
   email. The event lands on the phone's partition and creates a person there; a ``Link`` goes to
   the email's partition, which is older and sends its age back; the phone's person merges into
   the email's and its record and membership travel in a ``Fold``. Four agent passes per event:
   the most resolution can cost. Done when every person counts as known to two partners
   (``identity.overlap == N`` in ``GET /v1/tallies``), so every fold has reached the tallies.
2. **Forwarded RSVPs**: each of them RSVPs by that phone. The event lands on the phone's
   partition, whose entry points to the email's person: it is forwarded there (one ``Deliver``).
   Done when the action's tallies show N RSVPs.

The common case, an event whose identifier is its person's key, costs one dictionary look-up;
it is ``benchmarks.pipeline``'s "direct" scenario.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

import httpx
from aiokafka import AIOKafkaProducer

from benchmarks.stack import sealed_envelopes
from streams.settings import Settings
from streams.topology import events_topic
from tests.factories import phone, rsvp, signup

ACTION = "bench-identity"
OTHER = "faith-b"

Wait = Callable[[httpx.AsyncClient, str, int, float, list], Awaitable[None]]


async def produce(producer: AIOKafkaProducer, s: Settings, partner: str, items: list[dict]) -> None:
    records, result = await sealed_envelopes(s, items, partner)
    assert result.accepted == len(items), result
    pending = [await producer.send(events_topic(s), value=value, key=key) for key, value in records]
    for fut in pending:
        await fut


async def until(http: httpx.AsyncClient, check: Callable[[dict], bool], what: str, deadline: float, procs) -> None:
    while True:
        r = await http.get("/v1/tallies")
        if r.status_code == 200 and check(r.json()):
            return
        if dead := [p.pid for p in procs if p.poll() is not None]:
            raise RuntimeError(f"process(es) {dead} exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in time (last answer {r.status_code} {r.text[:300]})")
        await asyncio.sleep(0.05)  # the polling interval, not synchronisation


def used(worker_cpu: Callable[[], float | None], since: float | None) -> float | None:
    now = worker_cpu()
    return None if now is None or since is None else now - since


def signups(body: dict, partner: str) -> int:
    return next((p["signups"] for p in body["partners"] if p["partner"] == partner), 0)


async def measure(s: Settings, http: httpx.AsyncClient, partner: str, n: int, first_phone: int, timeout: float, procs,
                  until_tallied: Wait, worker_cpu: Callable[[], float | None]) -> list[tuple[str, float, float | None]]:
    """The two scenarios' rows: (name, seconds, worker CPU seconds or ``None``)."""
    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap.split(","), acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    rows = []
    try:
        email = [f"known{i}@example.org" for i in range(n)]
        await produce(producer, s, partner, [signup(f"ie{i}", email=email[i]) for i in range(n)])
        await until(http, lambda b: signups(b, partner) == n, f"{n} sign-ups by email", time.monotonic() + timeout, procs)

        t0, c0 = time.perf_counter(), worker_cpu()
        await produce(producer, s, OTHER, [signup(f"il{i}", phone=phone(first_phone + i), email=email[i]) for i in range(n)])
        await until(http, lambda b: b["identity"]["overlap"] == n, f"{n} people known to two partners", time.monotonic() + timeout, procs)
        rows.append(("identity: new phone joins a known email (link+fold)", time.perf_counter() - t0, used(worker_cpu, c0)))

        t0, c0 = time.perf_counter(), worker_cpu()
        await produce(producer, s, OTHER, [rsvp(f"ir{i}", ACTION, phone=phone(first_phone + i)) for i in range(n)])
        await until_tallied(http, ACTION, n, time.monotonic() + timeout, procs)
        rows.append(("identity: RSVP by a linked phone (one hop)", time.perf_counter() - t0, used(worker_cpu, c0)))
    finally:
        await producer.stop()
    return rows
