"""The console's dry runs through the workers: an audience preview and a test send.

The web app holds no people table and may not run the planning rules, so it asks the workers,
as erasure does (``connectors.web.people``): a ``PreviewAudience`` goes to every partition of
the targeting topic, and each partition's worker answers on the previews topic with its counts;
a ``SendTest`` goes to one partition and its worker answers whether it sent. ``Audience`` is
the port, ``KafkaAudience`` the adapter, ``FakeAudience`` the fake for unit tests. ``total``
adds the partitions' answers up; ``TestLimit`` bounds test sends per organizer. Both are pure.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from aiokafka import TopicPartition
from pydantic import TypeAdapter

from contracts.preview import PREVIEW_PREFIX, TEST_SEND_PREFIX, AudienceCount, PreviewAudience, SendTest, TestSent
from streams.keys import keys_for_every_partition
from streams.settings import Settings
from streams.topology import previews_topic, targeting_topic
from streams.transport import stop_consumer

from ..publisher import Publisher
from ..replay import replay_consumer

_answer = TypeAdapter(AudienceCount | TestSent)


class Audience(Protocol):
    async def preview(self, req: PreviewAudience, timeout: float) -> tuple[list[AudienceCount], int]:
        """The partitions' answers that arrived within ``timeout``, and how many partitions were asked."""

    async def test(self, cmd: SendTest, timeout: float) -> TestSent | None:
        """The worker's answer within ``timeout``, or ``None``."""


class KafkaAudience:
    def __init__(self, s: Settings, publisher: Publisher) -> None:
        self.settings, self.publisher = s, publisher

    async def preview(self, req: PreviewAudience, timeout: float) -> tuple[list[AudienceCount], int]:
        value = req.model_dump_json().encode()
        keys = keys_for_every_partition(PREVIEW_PREFIX + req.request_id, self.settings.partitions)
        await self.publisher.publish([(k.encode(), value) for k in keys], topic=targeting_topic(self.settings))
        found = await self._answers(req.request_id, self.settings.partitions, timeout)
        return [a for a in found if isinstance(a, AudienceCount)], self.settings.partitions

    async def test(self, cmd: SendTest, timeout: float) -> TestSent | None:
        await self.publisher.publish([((TEST_SEND_PREFIX + cmd.request_id).encode(), cmd.model_dump_json().encode())],
                                     topic=targeting_topic(self.settings))
        found = [a for a in await self._answers(cmd.request_id, 1, timeout) if isinstance(a, TestSent)]
        return found[0] if found else None

    async def _answers(self, request_id: str, wanted: int, timeout: float) -> list[AudienceCount | TestSent]:
        """Read the previews topic (one partition, a day's retention) for this request's answers,
        one per partition at most (a worker that planned a partition twice answers twice)."""
        consumer = replay_consumer(self.settings)
        await consumer.start()
        found: dict[int, AudienceCount | TestSent] = {}
        try:
            tp = TopicPartition(previews_topic(self.settings), 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            deadline = time.monotonic() + timeout
            while len(found) < wanted and time.monotonic() < deadline:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    for m in messages:
                        if m.key == request_id.encode() and m.value is not None:
                            a = _answer.validate_json(m.value)
                            found[a.partition if isinstance(a, AudienceCount) else 0] = a
        finally:
            await stop_consumer(consumer)
        return list(found.values())


@dataclass
class FakeAudience:
    """Answers from a list the test sets; records what was asked."""

    counts: list[AudienceCount] = field(default_factory=list)
    partitions: int = 1
    sent: TestSent | None = None
    asked: list[PreviewAudience | SendTest] = field(default_factory=list)

    async def preview(self, req: PreviewAudience, timeout: float) -> tuple[list[AudienceCount], int]:
        self.asked.append(req)
        return [c.model_copy(update={"request_id": req.request_id}) for c in self.counts], self.partitions

    async def test(self, cmd: SendTest, timeout: float) -> TestSent | None:
        self.asked.append(cmd)
        return self.sent.model_copy(update={"request_id": cmd.request_id}) if self.sent else None


#: Exclusion reasons as the console words them, in the order it lists them.
REASONS = {
    "out of area": "out of the target area", "opted out": "opted out", "no consent": "no consent on this channel",
    "consent covers no sponsor": "consent covers no sponsor", "no phone": "no address (phone)", "no email": "no address (email)",
    "undeliverable": "undeliverable address (a landline, or a number or mailbox that does not exist)",
    "frequency cap": "frequency cap", "already asked": "already asked for this action",
    "no allowed hour left before the action": "quiet hours last until too late (the action's start, or an alert's grace after it was posted)", "the action has started": "the action has started",
}


@dataclass(frozen=True)
class Totals:
    """The preview, summed over the partitions that answered."""

    partitions: int
    answered: int
    people: int = 0
    reached: int = 0
    asked: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, dict[str, int]] = field(default_factory=dict)
    deferred: int = 0
    deferred_by_queue: int = 0
    deferred_first: datetime | None = None
    deferred_last: datetime | None = None
    queue_drains: datetime | None = None

    @property
    def complete(self) -> bool:
        return self.answered == self.partitions

    def rows(self) -> list[tuple[str, int, int]]:
        """(reason as worded, texts, emails) for every reason that excluded someone."""
        seen = {r for by in self.excluded.values() for r in by}
        order = [r for r in REASONS if r in seen] + sorted(seen - REASONS.keys())
        return [(REASONS.get(r, r), self.excluded.get("sms", {}).get(r, 0), self.excluded.get("email", {}).get(r, 0)) for r in order]


def total(counts: list[AudienceCount], partitions: int) -> Totals:
    """Add up the partitions' answers (one per partition: a repeated answer counts once)."""
    unique = list({c.partition: c for c in counts}.values())
    asked: dict[str, int] = {}
    excluded: dict[str, dict[str, int]] = {}
    for c in unique:
        for channel, n in c.asked.items():
            asked[channel] = asked.get(channel, 0) + n
        for channel, reasons in c.excluded.items():
            for reason, n in reasons.items():
                excluded.setdefault(channel, {})[reason] = excluded.get(channel, {}).get(reason, 0) + n
    firsts = [c.deferred_first for c in unique if c.deferred_first]
    lasts = [c.deferred_last for c in unique if c.deferred_last]
    drains = [c.queue_drains for c in unique if c.queue_drains]
    return Totals(partitions=partitions, answered=len(unique), people=sum(c.people for c in unique), reached=sum(c.reached for c in unique),
                  asked=asked, excluded=excluded, deferred=sum(c.deferred for c in unique), deferred_by_queue=sum(c.deferred_by_queue for c in unique),
                  deferred_first=min(firsts, default=None), deferred_last=max(lasts, default=None), queue_drains=max(drains, default=None))


class TestLimit:
    """At most ``limit`` test sends per organizer per ``window`` seconds (in this web app)."""

    def __init__(self, limit: int = 5, window: float = 600.0) -> None:
        self.limit, self.window = limit, window
        self.sent: dict[str, deque[float]] = {}

    def allow(self, who: str, now: float) -> float | None:
        """``None`` and the send is counted, or the seconds until ``who`` may send again."""
        times = self.sent.setdefault(who, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.limit:
            return self.window - (now - times[0])
        times.append(now)
        return None


def launch_question(t: Totals, channels: list[str]) -> str:
    """What the launch button is the answer to: "Send to 1,234 people by text and 987 by email?"."""
    words = {"sms": "by text", "email": "by email"}
    parts = [f"{n:,} {('person' if n == 1 else 'people') + ' ' if i == 0 else ''}{words[c]}"
             for i, c in enumerate(channels) for n in [t.asked.get(c, 0)]]
    question = f"Send to {' and '.join(parts)}" if parts else "Send to nobody (no template)"
    missing = t.partitions - t.answered
    return question + ("?" if not missing else f", and to whoever is in the {missing} uncounted part{'s' if missing > 1 else ''} of the people table?")
