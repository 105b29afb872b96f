"""Twilio's per-sender outgoing queue, emulated: accepted texts leave at the sender's MPS.

Twilio accepts a message at API speed and puts it in the queue of its sender (a From number,
or the Messaging Service when it picks one); each sender's queue drains at that sender's MPS,
message *segments* per second: a text of k segments holds its sender k / MPS seconds.
Three things can keep a text from leaving, and all three are decided the moment it is
submitted, because a FIFO drained at a fixed rate makes every message's leave time known then:

- its wait would be longer than 10 hours (``MAX_QUEUE_SECONDS``): a From-number request is
  refused with 21611, a Messaging Service message is accepted and then fails with 30001;
- its wait would be longer than its ``ValidityPeriod``: it fails with 30036 when the validity
  ends ("After this period elapses, the Message fails and we call your status callback",
  Twilio's API reference) and takes no slot, so the texts behind it move up.

The decisions are pure functions of when the sender is free (the previous text's slot + its
segments / mps) and ``now``. ``SenderQueues``
holds one FIFO and, while it is not empty, one drain task per sender; the drain sleeps until
each message's slot, computed up front as ``max(now, when the sender is free)``, so lateness of
one wake-up never accumulates into a slower rate. Holding 20,000 messages costs 20,000 deque
entries, one task per sender and, for those bound to expire, one timer handle each.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Literal

#: Twilio queues up to 10 hours' worth of a sender's MPS.
MAX_QUEUE_SECONDS = 36_000.0
QUEUE_OVERFLOW_FROM = 21611  # the create request is refused (From number)
QUEUE_OVERFLOW_SERVICE = 30001  # accepted, then failed by callback (Messaging Service)
VALIDITY_EXPIRED = 30036

Verdict = Literal["leave", "expire", "overflow"]


def next_slot(free_at: float | None, now: float) -> float:
    """When a message submitted ``now`` leaves: right away, or once the sender is free (the
    text before it sent: its slot + its segments / mps)."""
    return now if free_at is None else max(now, free_at)


def too_deep(slot: float, now: float) -> bool:
    """A message that would wait more than 10 hours overflows the sender's queue."""
    return slot - now > MAX_QUEUE_SECONDS


def expires(slot: float, submitted: float, validity: float | None) -> bool:
    """Whether the wait from submission until ``slot`` outlasts the validity period."""
    return validity is not None and slot - submitted > validity


@dataclass(frozen=True)
class Admission:
    """What happens to a submitted message, and when (leave time, or time of failure)."""

    verdict: Verdict
    at: float


def admit(free_at: float | None, now: float, validity: float | None) -> Admission:
    """The fate of a message submitted ``now`` behind a sender free from ``free_at``.
    Overflow is checked first: Twilio refuses a From-number request before queueing it."""
    slot = next_slot(free_at, now)
    if too_deep(slot, now):
        return Admission("overflow", now)
    if expires(slot, now, validity):
        return Admission("expire", now + validity)  # type: ignore[operator]
    return Admission("leave", slot)


class SenderQueues:
    """One FIFO and one drain task per sender. ``leave(record)`` runs at each message's slot,
    ``expire(record)`` when a message bound to expire reaches the end of its validity."""

    def __init__(self, mps: float, *, leave: Callable[[dict], None], expire: Callable[[dict], None],
                 clock: Callable[[], float] = time.time) -> None:
        # Wall-clock slots, so that they compare with the inbox's ``created`` and ``left`` stamps.
        self.mps = mps
        self._leave, self._expire, self._clock = leave, expire, clock
        self._free_at: dict[str, float] = {}
        self._fifos: dict[str, deque[tuple[float, dict]]] = {}
        self._drains: dict[str, asyncio.Task] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}

    @property
    def enabled(self) -> bool:
        return self.mps > 0

    @property
    def waiting(self) -> int:
        """Messages accepted that have neither left nor failed yet."""
        return sum(len(f) for f in self._fifos.values()) + len(self._timers)

    def admit(self, sender: str, validity: float | None) -> Admission:
        """Decide a message's fate without queueing it (``hold`` it to commit)."""
        return admit(self._free_at.get(sender), self._clock(), validity)

    def hold(self, sender: str, record: dict, admission: Admission, segments: int = 1) -> None:
        """Queue ``record`` as ``admission`` decided: to leave at its slot (holding the sender
        for ``segments`` / mps), or to expire. Call it right after ``admit`` (no await between),
        so no other message takes the slot meanwhile."""
        if admission.verdict == "leave":
            self._free_at[sender] = admission.at + segments / self.mps
            self._fifos.setdefault(sender, deque()).append((admission.at, record))
            if sender not in self._drains:
                self._drains[sender] = asyncio.get_running_loop().create_task(self._drain(sender))
        elif admission.verdict == "expire":
            key = id(record)
            delay = max(0.0, admission.at - self._clock())
            self._timers[key] = asyncio.get_running_loop().call_later(delay, self._expired, key, record)

    def _expired(self, key: int, record: dict) -> None:
        del self._timers[key]
        self._expire(record)

    async def _drain(self, sender: str) -> None:
        fifo = self._fifos[sender]
        try:
            while fifo:
                slot, record = fifo[0]
                # asyncio's timers may wake a hair early by the wall clock: sleep again until due.
                while (delay := slot - self._clock()) > 0:
                    await asyncio.sleep(delay)
                fifo.popleft()
                self._leave(record)
        finally:
            # No await between the empty check and here: a new message either made it into
            # the FIFO above, or finds no drain and starts one.
            del self._drains[sender]
            if not fifo:
                del self._fifos[sender]

    async def stop(self) -> None:
        """Drop what still waits: cancel the drains and the expiry timers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        drains = list(self._drains.values())
        for task in drains:
            task.cancel()
        await asyncio.gather(*drains, return_exceptions=True)
        self._fifos.clear()
