"""The outreach agents: fan an action out, send asks, apply provider callbacks, release deferred asks.

Every table write happens on the person's partition: the targeting topic carries one copy of
an action per partition and each copy plans for the people of that partition only, the asks
and provider topics are keyed by person key. So the fan-out scales with workers and each
worker touches only the people it owns.

No double asks: an ask is marked "sending" in its table and the broker acknowledges that mark
*before* the provider is called. A replayed command that finds "sending" (or later) is not
sent again. An ask whose worker died between the mark and the provider's answer stays
"sending" (at most once: never resent blindly) and is reported by the tallies as attempted;
asks are marked a chunk ahead of the one being sent, so that is at most two chunks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Mapping, Protocol, Sequence

from contracts.asks import NEVER_RESEND, AskCommand, SendResult, TargetAction, ask_id
from contracts.events import ActionEvent
from streams.app import Pipeline
from streams.clock import Clock, from_setting
from streams.keys import partition_of
from streams.settings import Settings

from .planning import OutreachPolicy, plan, remember
from .quiet_hours import QuietHours
from .receipts import on_send_result, opt_out
from .sending import Cancel, Defer, Send, Skip, gate

log = logging.getLogger(__name__)
SEND_BATCH = 500


class Outbox(Protocol):
    """The providers, as the send agent needs them (wired in ``connectors.providers``)."""

    async def send(self, asks: Sequence[AskCommand], validity: dict[str, int | None]) -> list[SendResult]:
        """Hand every ask to its provider (with retries); one result per ask."""

    def reply(self, to: str, body: str) -> None:
        """Queue a plain text reply (HELP) and return at once: a slow provider must not hold
        up the callbacks behind it."""

    async def aclose(self) -> None:
        """Finish the queued replies, then release the providers' connections (the worker is stopping)."""


@dataclass(frozen=True)
class Outreach:
    outbox: Outbox
    policy: OutreachPolicy
    clock: Clock
    partitions: int
    chunk: int = 16


def outreach_from(s: Settings, outbox: Outbox) -> Outreach:
    policy = OutreachPolicy(
        cap=s.frequency_cap, window=timedelta(days=s.frequency_window_days), quiet=quiet_hours(s),
        footer=s.sms_footer, rsvp_base_url=s.rsvp_base_url, referral_secret=s.person_key_bytes(),
    )
    return Outreach(outbox=outbox, policy=policy, clock=from_setting(s.clock), partitions=s.partitions, chunk=s.send_concurrency)


def quiet_hours(s: Settings) -> QuietHours:
    return QuietHours(time.fromisoformat(s.quiet_start), time.fromisoformat(s.quiet_end))


def fan_out(p: Pipeline, action: ActionEvent, partner: str) -> None:
    """Copy an action to every targeting partition (called by intake for rapid-response actions)."""
    value = TargetAction(partner=partner, action=action).model_dump_json().encode()
    for partition in range(p.targeting.partitions or 1):
        p.send_soon(p.targeting, action.action_id, value, partition)


def register(p: Pipeline, o: Outreach) -> None:
    @p.app.agent(p.targeting, name="plan_asks")
    async def plan_asks(stream):  # noqa: ANN001
        async for event in stream.events():
            target = TargetAction.model_validate_json(event.value)
            planned = await plan_partition(p, o, target.action, event.message.partition)
            await p.settle()
            log.info("planned %d asks for %s on partition %d", planned, target.action.action_id, event.message.partition)

    @p.app.agent(p.asks_topic, name="send_asks")
    async def send_asks(stream):  # noqa: ANN001
        async def flush(events) -> None:  # noqa: ANN001
            await send_batch(p, o, [(e.message.partition, AskCommand.model_validate_json(e.value)) for e in events])

        async for _ in p.batches(stream, SEND_BATCH, every=0.05, flush=flush):
            pass  # the work happens per batch, in flush

    @p.app.on_before_shutdown.connect
    async def close_outbox(app, **kwargs) -> None:  # noqa: ANN001
        await o.outbox.aclose()

    released: set[tuple[str, datetime]] = set()

    @p.app.timer(1.0, name="release_deferred")
    async def release_deferred() -> None:
        await release(p, o, released)


async def plan_partition(p: Pipeline, o: Outreach, action: ActionEvent, partition: int) -> int:
    now, count = o.clock(), 0
    for i, key in enumerate(list(p.people.table.keys())):
        if i % 256 == 0:
            await asyncio.sleep(0)  # let the producer drain while a big partition is planned
        if partition_of(key, o.partitions) != partition:
            continue
        person = p.people.get(key)
        recent = p.recent_asks.get(key)
        # Planned-but-unsent asks are planned again: a replay must not strand them.
        ids = (ask_id(action.action_id, key, "sms"), ask_id(action.action_id, key, "email"))
        done = {aid for aid in ids if (f := p.asks.get(aid)) is not None and f.status in NEVER_RESEND}
        for ask in plan(person, action, recent, done, now, o.policy):
            p.asks.put(partition, ask.ask_id, None, ask.fact("planned", now))
            old, recent = recent, remember(recent, ask.ask_id, now, o.policy.window)
            p.recent_asks.put(partition, key, old, recent)
            p.send_soon(p.asks_topic, key, ask.model_dump_json().encode(), partition)
            count += 1
    return count


async def send_batch(p: Pipeline, o: Outreach, batch: list[tuple[int, AskCommand]]) -> None:
    now = o.clock()
    to_send, validity, partition_of_ask = [], {}, {}
    for partition, ask in batch:
        if ask.ask_id in partition_of_ask:
            continue  # the same ask twice in one batch (an action posted twice): once is enough
        decision = gate(ask, p.asks.get(ask.ask_id), p.people.get(ask.person_key), now, o.policy.quiet)
        if isinstance(decision, Skip):
            continue
        if isinstance(decision, Cancel):
            p.asks.put(partition, ask.ask_id, None, ask.fact("cancelled", now, error=decision.reason))
        elif isinstance(decision, Defer):
            p.asks.put(partition, ask.ask_id, None, ask.fact("deferred", now, deferred_until=decision.until))
            p.deferred.put(partition, ask.ask_id, None, ask.model_copy(update={"send_after": decision.until}))
        elif isinstance(decision, Send):
            to_send.append(ask)
            validity[ask.ask_id] = decision.validity_period
            partition_of_ask[ask.ask_id] = partition
    if not to_send:
        return
    # Mark, confirm, send, record, chunk by chunk, two chunks at a time: chunk k+1 is marked
    # (and its marks confirmed) while chunk k is with the provider, so the provider never
    # waits for the broker. A worker killed mid-send leaves at most two chunks "sending" (in
    # doubt), never a whole batch.
    in_flight: list[asyncio.Task] = []
    try:
        for chunk in chunks(to_send, o.chunk):
            marks = [p.asks.put(partition_of_ask[a.ask_id], a.ask_id, None, a.fact("sending", now)) for a in chunk]
            in_flight.append(asyncio.ensure_future(send_chunk(p, o, chunk, marks, validity, partition_of_ask)))
            if len(in_flight) == 2:
                await in_flight.pop(0)
        while in_flight:
            await in_flight.pop(0)
    finally:
        for task in in_flight:  # only after a failure: those asks stay "sending", in doubt
            task.cancel()


async def send_chunk(p: Pipeline, o: Outreach, chunk: list[AskCommand], marks: list, validity: dict[str, int | None],
                     partition_of_ask: dict[str, int]) -> None:
    await asyncio.gather(*marks)  # durable before any provider is called
    results = {r.ask_id: r for r in await o.outbox.send(chunk, validity)}
    done = o.clock()
    for ask in chunk:
        record_result(p, partition_of_ask[ask.ask_id], ask, results[ask.ask_id], done)


def chunks(asks: list[AskCommand], size: int) -> list[list[AskCommand]]:
    """SMS in chunks of ``size``; emails together (they go out in one request of up to 1000)."""
    texts = [a for a in asks if a.channel == "sms"]
    emails = [a for a in asks if a.channel == "email"]
    return [texts[i : i + size] for i in range(0, len(texts), size)] + ([emails] if emails else [])


def record_result(p: Pipeline, partition: int, ask: AskCommand, r: SendResult, now: datetime) -> None:
    current = p.asks.get(ask.ask_id) or ask.fact("sending", now)
    p.asks.put(partition, ask.ask_id, current, on_send_result(current, r, now))
    p.deferred.delete(partition, ask.ask_id)
    if r.ok:
        return
    if r.in_doubt:
        log.warning("ask in doubt (the provider may have it); not resending")
        return
    p.dead_letter(ask.ask_id, "permanent provider failure", code=r.error_code, error=r.error)
    person = p.people.get(ask.person_key) if r.opted_out else None
    if person is not None:
        p.people.put(partition, ask.person_key, person, opt_out(person, ask.channel, now))


async def release(p: Pipeline, o: Outreach, released: set[tuple[str, datetime]]) -> None:
    """Re-queue deferred asks that are due. Only reads tables (a timer has no event to write
    under); the send agent decides again and clears them. Re-queuing twice is harmless."""
    now = o.clock()
    active = {tp.partition for tp in p.app.assignor.assigned_actives() if tp.topic == p.asks_topic.get_topic_name()}
    for key, raw in list(p.deferred.table.items()):
        due = due_at(raw, now)
        if due is None or (key, due) in released:
            continue
        if partition_of(raw["person_key"], o.partitions) in active:
            released.add((key, due))
            ask = AskCommand.model_validate(raw)
            await p.asks_topic.send(key=ask.person_key, value=ask.model_dump_json().encode())
    released.difference_update({r for r in released if r[0] not in p.deferred.table})  # sent or cancelled since


def due_at(stored: Mapping[str, Any] | None, now: datetime) -> datetime | None:
    """When a deferred ask, as its table stores it (``model_dump(mode="json")``), became due,
    if it is due by ``now``; else ``None``. Reads one field instead of validating the whole
    command: the release timer asks this every second of every deferred ask, and a night's
    worth of deferred texts is most of a fan-out."""
    after = stored.get("send_after") if stored is not None else None
    if after is None:
        return None
    when = datetime.fromisoformat(after)
    return when if when <= now else None
