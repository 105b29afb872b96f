"""The outreach agents: fan an action out, send asks, apply provider callbacks, release deferred asks.

Every table write happens on the person's partition: the targeting topic carries one copy of
an action per partition and each copy plans for the people of that partition only, the asks
and provider topics are keyed by person key. So the fan-out scales with workers and each
worker touches only the people it owns.

Planning hands its asks over as it plans them, chunk by chunk (``plan_partition``): an ask is
first written when it is decided, at the moment it is sent. A worker that dies mid-partition
leaves the targeting command unacknowledged, and one that loses the partition mid-plan hands the
command on (to the back of the partition): either way the partition's next owner plans it again,
skipping what was sent and looking up what was left "sending". The asks topic carries the asks
that wait (deferred to a later hour, sealed) when they fall due.

Asks are handed to the providers as fast as they take them (bounded concurrency, their 429s);
the providers queue and pace texts themselves. Nothing here sleeps for a rate, and every chunk
checks that this worker still owns its partition, so a rebalance never waits long.

No double asks: an ask is marked "sending" in its table and the broker acknowledges that mark
*before* the provider is called, and only while this worker still owns the ask's partition
(checked again once the marks are durable; a revoked partition's marks are handed back before
the rebalance completes). A replayed command that finds "sent" (or later) is not sent again.
One that finds "sending" was marked by a worker that died before the provider answered: the
provider is asked whether it has that text (``Outbox.recover``) before anything is resent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, AsyncIterator, Awaitable, Callable, Collection, Coroutine, Mapping, NamedTuple, Protocol, Sequence

from contracts.asks import ASKED_ALREADY, REPLANNED, AskCommand, AskFact, SendResult, TargetAction, ask_id, parse_ask_id
from contracts.events import ActionEvent, grace_start
from contracts.preview import PREVIEW_PREFIX, TEST_SEND_PREFIX, PreviewAudience, SendTest
from contracts.providers import TWILIO_QUEUE_FULL
from streams.app import Pipeline
from streams.batching import Apart
from streams.coalition import CoalitionFile, SponsorNames
from streams.clock import Clock, from_setting, system_clock
from streams.crypto import DataKey
from streams.data_keys import DataKeys, KafkaDataKeys, MemoryDataKeys
from streams.keys import partition_of
from streams.sealing import open_ask, open_person, seal_ask, sealing_key
from streams.settings import Settings

from ..identity import MERGED, pass_on, target_of
from .dry_run import answer, preview_partition, start_test
from .eligibility import load_zip_data, may_be_asked, sponsor_order
from .planning import LINK_SETTLE, OutreachPolicy, asked_as_another, plan, remember, send_until, unreceived_of, wait_for_link
from .quiet_hours import QuietHours
from .receipts import advance, after_refusal, on_send_result
from .sending import Cancel, Defer, Expire, Orphaned, Send, SenderQueue, after_queue_full, gate, rezoned, unreadable, validity_seconds, window_closed, window_end, withdrawn

log = logging.getLogger(__name__)
SEND_BATCH = 500
#: Asks decided and marked ``sending`` together, per request in flight (``send_concurrency``).
#: Each chunk waits once for the broker to acknowledge its marks; a chunk no bigger than the
#: requests in flight left the provider waiting for the broker (make bench, 20,000 texts, 16 in
#: flight: chunks of 16 → 519 asks handed over per second, 64 → 764, 128 → 837).
CHUNK_PER_SLOT = 8
#: Emails planned together before they are handed over: one SendGrid request's recipients.
EMAIL_CHUNK = 1000
#: The sealed fields planning opens of a person it asks: the addresses and the name messages
#: greet them by (never the family name).
MESSAGE_FIELDS = ("given_name", "phone", "email")


class Outbox(Protocol):
    """The providers, as the send agent needs them (wired in ``connectors.providers``)."""

    async def send(self, asks: Sequence[AskCommand], validity: Callable[[AskCommand], int | None],
                   wanted: Callable[[AskCommand], bool], ours: Callable[[AskCommand], Awaitable[bool]]) -> list[SendResult]:
        """Hand every ask to its provider (with retries); one result per ask handed over.
        ``validity(text)``: an SMS ask's ValidityPeriod, asked again right before each request
        (it counts from then). ``ours(ask)`` and then ``wanted(ask)``, asked right before each
        request: ``False`` (the worker no longer owns it; an erasure or opt-out since the chunk
        was marked) and the ask is not sent, and has no result."""

    async def recover(self, orphans: Sequence[tuple[AskCommand, datetime]]) -> list[SendResult | None]:
        """For each ask and when it was marked, whether the provider already has it (handed
        over since by a worker that died before the answer): its result if so or if that cannot
        be known (in doubt), ``None`` if it certainly does not. Asked no sooner than a request
        of the dead worker could still be answered."""

    def reply(self, to: str, body: str) -> None:
        """Queue a plain text reply (HELP) and return at once: a slow provider must not hold
        up the callbacks behind it."""

    async def test(self, channel: str, to: str, subject: str | None, body: str, sponsor: str, request_id: str) -> str | None:
        """Send one test message (the console's "send a test to myself") to ``to`` only: no
        ask, no status callback; ``None`` once the provider took it, else why not."""

    async def aclose(self) -> None:
        """Finish the queued replies, then release the providers' connections (the worker is stopping)."""


class Budget:
    """How many asks may be decided and marked ``sending`` without an answer yet, across every
    hand-over in this worker (the partitions planned side by side, the asks topic's sender). A
    chunk waits for room before it is decided, so it is decided at most two chunks before the
    provider gets it, however many partitions are under way. Taken whole and in turn (first
    come, first served); a chunk larger than the budget takes all of it."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._waiting: deque[tuple[int, asyncio.Future]] = deque()

    async def take(self, n: int) -> int:
        """Wait until ``n`` asks fit, take them; what to ``give`` back once they are answered."""
        n = min(n, self.limit)
        if not self._waiting and self.used + n <= self.limit:
            self.used += n
            return n
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append((n, turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.give(n)  # granted, but its taker is gone
            else:
                self._waiting.remove((n, turn))
            raise
        return n

    def give(self, n: int) -> None:
        self.used -= n
        while self._waiting and self.used + self._waiting[0][0] <= self.limit:
            m, turn = self._waiting.popleft()
            if not turn.done():
                self.used += m
                turn.set_result(None)


@dataclass(frozen=True)
class Outreach:
    """What the outreach agents need. ``outbox`` ``None``: no provider is configured; asks are
    planned and recorded cancelled, never sent (so adding credentials later sends no backlog)."""

    outbox: Outbox | None
    policy: OutreachPolicy
    clock: Clock
    partitions: int
    chunk: int = 16
    queue: SenderQueue = field(default_factory=lambda: SenderQueue(0))
    keys: DataKeys = field(default_factory=MemoryDataKeys)  # opens people's sealed fields; seals their asks
    #: The asks this worker is handing over now (by id). Planning and the asks topic's sender run
    #: side by side: an ask one of them has marked is not the other's to take for a dead worker's.
    sending: set[str] = field(default_factory=set)
    #: Answers on their way: texts back (HELP, STOP) still reading their person's data key
    #: (``callbacks.text_back``) and the console's test sends (``dry_run``). A stopping worker
    #: lets them finish (``close``).
    answering: set[asyncio.Task] = field(default_factory=set)
    #: The rapid-response actions this worker fanned out, by id (their latest targeting
    #: command): a person merged after their partition was planned is planned again (``plan_again``).
    fanned_out: dict[str, TargetAction] = field(default_factory=dict)
    #: The console's previews under way, by request: a copy of ``queue`` that the partitions
    #: previewed here fill as the launch would (``dry_run.preview_partition``); the latest few.
    previews: dict[str, SenderQueue] = field(default_factory=dict)
    #: Asks being handed over (``Budget``): two chunks' worth.
    handing: Budget = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "handing", Budget(2 * self.chunk))

    def answer_soon(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on a task of its own, in ``answering`` until done."""
        task = asyncio.ensure_future(work)
        self.answering.add(task)
        task.add_done_callback(self.answering.discard)


def outreach_from(s: Settings, outbox: Outbox | None) -> Outreach:
    load_zip_data()  # at start, not in the first fan-out
    policy = OutreachPolicy(
        cap=s.frequency_cap, window=timedelta(days=s.frequency_window_days), quiet=quiet_hours(s),
        footer=s.sms_footer, footer_es=s.sms_footer_es, rsvp_base_url=s.rsvp_links, unsubscribe_base_url=s.unsubscribe_links,
        referral_secret=s.person_key_bytes(), link_key=s.link_key_bytes(), rsvp_open=timedelta(hours=s.rsvp_open_hours),
        grace=timedelta(minutes=s.rapid_response_grace_minutes),
        link_settle=LINK_SETTLE if s.clock == "system" else None,  # a file clock may stand still: no wait then
        sponsor_names=SponsorNames(CoalitionFile(s.coalition, every=1.0)),  # as the file says now; ids if no file
    )
    return Outreach(outbox=outbox, policy=policy, clock=from_setting(s.clock), partitions=s.partitions,
                    chunk=CHUNK_PER_SLOT * s.send_concurrency, queue=SenderQueue(s.sms_rate), keys=KafkaDataKeys(s))


def quiet_hours(s: Settings) -> QuietHours:
    return QuietHours(time.fromisoformat(s.quiet_start), time.fromisoformat(s.quiet_end))


def fan_out(p: Pipeline, action: ActionEvent, owner: str, posted_at: datetime, sponsors: Sequence[str] = (), now: datetime | None = None) -> None:
    """Copy an action to every targeting partition (called by intake for rapid-response actions,
    with the workers' ``now``: the grace counts by it when it is earlier, fixed here for every
    partition and every later look)."""
    target = TargetAction(partner=owner, action=action, posted_at=posted_at, grace_from=grace_start(posted_at, now),
                          sponsors=sponsor_order(owner, sponsors))
    value = target.model_dump_json().encode()
    for partition in range(p.targeting.partitions or 1):
        p.send_soon(p.targeting, action.action_id, value, partition)


def plan_again(p: Pipeline, o: Outreach, partition: int, person: str, known_since: datetime) -> None:
    """A record the coalition knew since ``known_since`` was merged into ``person``'s (its fold
    arrived): plan them again for every alert this worker fanned out, posted since, whose asks
    may still go. Their partition may have been planned before the fold, and the merged record's
    skipped as merged (an outside probe: an email never planned). What was asked already, under
    either record, is not asked again; a record the coalition learnt of after the alert was
    posted is missed, as a later sign-up is."""
    for action_id, target in forget_over(o).items():
        if known_since <= (target.posted_at or known_since):
            p.send_soon(p.targeting, action_id, target.model_copy(update={"person": person}).model_dump_json().encode(), partition)


def forget_over(o: Outreach) -> dict[str, TargetAction]:
    """``o.fanned_out`` without the alerts whose asks can no longer go (forgotten)."""
    now = o.clock()
    for action_id, target in list(o.fanned_out.items()):
        if send_until(target.action, target.grace_start or now, o.policy.grace) <= now:
            del o.fanned_out[action_id]
    return o.fanned_out


def owner_fence(p: Pipeline) -> Callable[[int], bool]:
    """Whether this worker still owns what it read under a consumer generation: no rebalance
    since (a revoke suspends flow control at once, before the group moves on)."""
    return lambda generation: generation == p.app.consumer_generation_id and p.app.flow_control.is_active()


def register(p: Pipeline, o: Outreach) -> None:
    owns, index = owner_fence(p), PeopleIndex(o.partitions)

    # One actor per partition, sharing the topic's queue: the partitions are planned and handed
    # over side by side (a small alert reaches the provider for all of them at once, not one
    # partition per provider round trip), within the worker's ``Budget`` of asks being handed over.
    @p.app.agent(p.targeting, name="plan_asks", concurrency=o.partitions)
    async def plan_asks(stream):  # noqa: ANN001
        # Acknowledged once planned, handed over and durable: a command whose hand-over failed
        # half-way is planned again by whoever takes the partition (Faust would acknowledge it
        # as the agent stops).
        p.pending.separate()  # each actor settles its own writes only
        async for event in stream.noack().events():
            try:
                await take(p, o, event, owns, index)
                await p.settle()
            except Exception as exc:  # noqa: BLE001 - any failure: nothing may be acknowledged
                await p.crash(exc)
                raise
            await stream.ack(event)

    async def send_asks(records: list[Any]) -> None:
        batch = [Queued(m.partition, m.generation_id, ask) for m in records if (ask := p.parse(AskCommand, m, "ask command"))]
        if not all(o.keys.ring.readable(v) for q in batch for v in (q.ask.to, q.ask.body)) and not await o.keys.caught_up():
            # A key written since this worker last read the topic, or an erased one; not read
            # in time, its asks wait a minute (``opened``).
            log.warning("the data-keys topic was not read to its end in time")
        await send_batch(p, o, batch, owns)

    # A fetch at a time, on a task of its own: none of Faust's per-record cost, and the fetch
    # loop reads the other topics while asks are handed over (until four batches wait).
    sender = p.work_in_batches(p.asks_topic, send_asks, SEND_BATCH)

    @p.app.on_before_shutdown.connect
    async def close_outbox(app, **kwargs) -> None:  # noqa: ANN001
        await close(o, sender)

    released: set[tuple[str, datetime]] = set()

    @p.app.timer(1.0, name="release_deferred")
    async def release_deferred() -> None:
        await release(p, o, released)


#: How long a stopping worker waits for the answers on their way (``Outreach.answering``).
ANSWER_WAIT = 5.0


async def close(o: Outreach, sender: Apart) -> None:
    """The worker is stopping: the asks topic's sender stops; answers on their way (texts back
    still reading a data key, console test sends) are let finish, for up to ``ANSWER_WAIT``
    (their callbacks and commands are acknowledged: nobody would answer them after); then the
    queued replies leave and the providers' connections close."""
    await sender.stop()
    if o.answering:
        await asyncio.wait(o.answering, timeout=ANSWER_WAIT)  # it copies the set: done tasks leave it meanwhile
    if o.outbox is not None:
        await o.outbox.aclose()
    await o.keys.stop()


async def take(p: Pipeline, o: Outreach, event, owns: Callable[[int], bool], index: PeopleIndex) -> None:  # noqa: ANN001
    """Carry out one command of the targeting topic: a dry run, or an action to plan and hand
    over for the people of the event's partition."""
    if await dry_run(p, o, event, index) or (target := p.parse(TargetAction, event, "targeting command")) is None:
        return
    sponsors = sponsor_order(target.partner, target.sponsors)
    owned = lambda: owns(event.message.generation_id)  # noqa: E731
    if target.person is None:
        forget_over(o)[target.action.action_id] = target
    planned = await plan_partition(p, o, target.action, event.message.partition, target.grace_start, index, sponsors, owned=owned,
                                   only=target.person)
    log.info("planned %d asks for %s on partition %d", planned, target.action.action_id, event.message.partition)
    if not owned():
        # The partition changed hands while it was being planned: the command goes to the back
        # of its partition, and the new owner plans it again (what was sent is skipped). Not left
        # to the rebalance alone: before fix 5 of ``streams.transport`` a commit was seen to pass
        # the unfinished command (make test: a tenth of a fan-out never sent).
        log.info("partition %d changed hands during planning: %s handed on", event.message.partition, target.action.action_id)
        p.send_soon(p.targeting, event.key or "", event.message.value, event.message.partition)


async def dry_run(p: Pipeline, o: Outreach, event, index: PeopleIndex) -> bool:  # noqa: ANN001
    """Carry out the console's preview or test send if ``event`` is one (``agents.outreach.dry_run``)."""
    key = event.key or ""
    if key.startswith(PREVIEW_PREFIX):
        if (req := p.parse(PreviewAudience, event, "audience preview request")) is not None:
            await answer(p, req.request_id, await preview_partition(p, o, req, event.message.partition, index))
        return True
    if key.startswith(TEST_SEND_PREFIX):
        if (cmd := p.parse(SendTest, event, "test send request")) is not None:
            start_test(p, o, cmd)
        return True
    return False


class PeopleIndex:
    """People keys by partition, so that planning one partition reads only its people. Each
    key is hashed once (murmur2 in Python is the cost); new keys are found by a set difference."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.known: set[str] = set()
        self.by_partition: dict[int, set[str]] = {}

    def keys(self, table: Mapping[str, Any], partition: int) -> list[str]:
        new = table.keys() - self.known
        for key in new:
            self.by_partition.setdefault(partition_of(key, self.partitions), set()).add(key)
        self.known |= new
        return sorted(k for k in self.by_partition.get(partition, ()) if k in table)


async def plan_partition(p: Pipeline, o: Outreach, action: ActionEvent, partition: int, grace_from: datetime | None = None,
                         index: PeopleIndex | None = None, sponsors: Collection[str] | None = None, *, owned: Callable[[], bool],
                         only: str | None = None) -> int:
    """Plan ``action``'s asks for the people of ``partition`` (``only``: that person) and hand
    them over as they are planned, a chunk at a time (``hand_over``); how many were planned.
    ``owned()``: whether this worker still owns the partition (else it stops short, and the
    partition's new owner plans it from the start)."""
    now, count = o.clock(), 0
    keys = [only] if only is not None else (index or PeopleIndex(o.partitions)).keys(p.people.table.data, partition)

    async def people() -> AsyncIterator[list[Queued]]:  # each person's asks
        unread = []
        for i, key in enumerate(keys):
            if i % 256 == 0:
                await asyncio.sleep(0)  # the other agents get their turn in a partition of people not asked
            if not p.app.lease.held():  # frozen past its session: what it remembers of a person waits (``answerable``)
                await p.app.lease.wait(owned)
                if not owned():
                    return
            asks = plan_person(p, o, action, partition, key, now, grace_from, sponsors)
            if asks is None:
                unread.append(key)
            else:
                yield asks
        # A person whose data key this worker has not read yet (or who was erased): read the data
        # keys up to now; who is still unreadable then was erased, and is skipped without a word.
        if unread and await keys_read(o, owned):
            for key in unread:
                yield plan_person(p, o, action, partition, key, now, grace_from, sponsors) or []

    async def planned() -> AsyncIterator[list[Queued]]:  # in chunks
        nonlocal count
        texts, emails = [], []
        async for asks in people():
            count += len(asks)
            for item in asks:
                (texts if item.ask.channel == "sms" else emails).append(item)
            if len(texts) >= o.chunk or len(emails) >= EMAIL_CHUNK:
                yield texts + emails
                texts, emails = [], []
        if texts or emails:
            yield texts + emails

    await hand_over(p, o, planned(), lambda items: owned())
    return count


async def keys_read(o: Outreach, owned: Callable[[], bool]) -> bool:
    """Read the data keys up to now, trying again for as long as it takes while ``owned()``:
    nobody is skipped as erased because the topic was slow to answer. ``False``: no longer owned."""
    while not await o.keys.caught_up():
        log.warning("the data-keys topic was not read to its end in time; trying again")
        if not owned():
            return False
    return True


def plan_person(p: Pipeline, o: Outreach, action: ActionEvent, partition: int, key: str, now: datetime, grace_from: datetime | None,
                sponsors: Collection[str] | None) -> list[Queued] | None:
    """This person's asks for ``action``, to be handed over, or ``None`` if their record cannot
    be read (their data key is unknown here)."""
    person = p.people.get(key)
    if person is None or target_of(p, key) != key:  # merged into another person: planned there
        return []
    # Passed over with one field opened: a targeted action in a large coalition leaves most people out.
    postal_code = o.keys.ring.open("postal_code", person.postal_code)
    if postal_code is None and person.postal_code is not None:
        return None
    if not may_be_asked(person, action, postal_code):
        settle_unplanned(p, o, partition, action.action_id, key, (), now)
        return []
    readable = open_person(person, o.keys.ring, MESSAGE_FIELDS, {"postal_code": postal_code})
    if readable is None:
        return None
    recent, seal = p.recent_asks.get(key), sealing_key(person, o.keys.ring)
    # Asks not handed over are planned again: a replay must not strand them. One left "sending"
    # by a stopped worker is too: the send path asks the provider whether it has it.
    ids = (ask_id(action.action_id, key, "sms"), ask_id(action.action_id, key, "email"))
    facts = {aid: f for aid in ids if (f := p.asks.get(aid)) is not None}
    done = {aid for aid, f in facts.items() if f.status in ASKED_ALREADY and f.status != "sending"}
    unreceived = unreceived_of(recent, p.asks.get)
    planned = plan(readable, action, recent, done, now, o.policy, grace_from, sponsors, unreceived)
    asks = [Queued(partition, 0, ask, seal) for ask in wait_for_link(planned, person, now, o.policy.link_settle)]
    for item in asks:
        if (old := facts.get(item.ask.ask_id)) is not None and old.status in REPLANNED:  # decided afresh (an outside probe: never texted once cancelled)
            p.asks.put(partition, item.ask.ask_id, item.ask.fact("planned", now, send_until=item.ask.send_until, dropped=old.dropped))
        recent = remember(recent, item.ask.ask_id, now, o.policy.window)
    if asks:
        p.recent_asks.put(partition, key, recent)
    settle_unplanned(p, o, partition, action.action_id, key, {item.ask.channel for item in asks}, now)
    return asks


#: Why an ask waiting for its hour was cancelled when its action, planned again, no longer made it.
NO_LONGER_ASKED = "no longer asked by the action as it stands"


def settle_unplanned(p: Pipeline, o: Outreach, partition: int, action_id: str, key: str, kept: Collection[str], now: datetime) -> None:
    """The person's asks for ``action_id`` on channels other than ``kept`` (those its planning
    just made). One waiting for its hour is cancelled: a new version of the action no longer asks
    them there (another target, no template for the channel; an outside probe: an alert edited at
    night to another ZIP, or to email only, texted the people its first version had deferred, in
    the morning, with its old text). One a stopped worker left ``sending`` is settled in doubt:
    it may have left before the worker stopped, and may not go now (an outside probe: people who
    opted out meanwhile were planned again as nobody to ask, their asks left "sending" for good)."""
    for channel in ("sms", "email"):
        aid = ask_id(action_id, key, channel)
        if channel in kept or aid in o.sending:
            continue
        if (ask := p.deferred.get(aid)) is not None:
            carry_out(p, partition, ask, p.asks.get(aid), Cancel(NO_LONGER_ASKED), now)
        elif (state := p.asks.get(aid)) is not None and state.status == "sending":
            p.asks.put(partition, aid, advance(state, "in_doubt", now, error="its worker stopped mid-send; the person may no longer be asked"))


class Queued(NamedTuple):
    """An ask to hand over: its partition and the consumer generation it was read under (the
    asks topic's), and for an ask planned here, whose address and text are open, the key they are
    sealed with before the ask is stored (deferred)."""

    partition: int
    generation: int
    ask: AskCommand
    key: DataKey | None = None

    def stored(self) -> AskCommand:
        """The ask as it may be written down: sealed with its person's own key."""
        return seal_ask(self.ask, self.key) if self.key is not None else self.ask


@dataclass(frozen=True)
class Ready:
    """An ask marked ``sending``, about to be handed over (``previous``: its fact before the
    mark; ``closes``: when its window closes, so its validity is counted at the hand-over)."""

    item: Queued
    previous: AskFact | None
    closes: datetime | None = None

    @property
    def orphaned(self) -> bool:
        return self.previous is not None and self.previous.status == "sending"


async def send_batch(p: Pipeline, o: Outreach, batch: list[Queued], owns: Callable[[int], bool]) -> None:
    """Hand a batch of asks to the providers, chunk by chunk, deciding each chunk at the moment
    it is sent. ``owns(generation)``: whether this worker still owns what it read under that
    consumer generation; checked before a chunk is marked and again, once the marks are
    durable, right before the provider call. The next chunk is decided and marked while one is
    with the provider, so the provider never waits for the broker."""
    unique = list({item.ask.ask_id: item for item in reversed(batch)}.values())[::-1]  # an action posted twice

    async def each() -> AsyncIterator[list[Queued]]:
        for chunk in chunks(unique, o.chunk):
            yield chunk

    await hand_over(p, o, each(), lambda items: all(owns(item.generation) for item in items))


async def hand_over(p: Pipeline, o: Outreach, chunks: AsyncIterator[list[Queued]], owned: Callable[[list[Queued]], bool]) -> None:
    """Decide, mark and hand over each chunk (``send_batch``), once the worker's ``Budget`` has
    room for it. ``owned(items)``: whether this worker still owns their partitions; checked
    before a chunk is marked and again, once the marks are durable, right before the provider call."""
    p.pending.own()  # this agent's writes, shared with the send tasks below
    in_flight: list[asyncio.Task] = []
    try:
        async for chunk in chunks:
            taken, task = await o.handing.take(len(chunk)), None
            try:
                if not await confirmed(p, owned, chunk):
                    break  # the rest is read again by the partition's new owner
                ready = await prepare(p, o, chunk)
                if ready and not await confirmed(p, owned, [r.item for r in ready]):
                    await hand_back(p, o, ready)
                    break
                if ready:
                    task = asyncio.ensure_future(send_chunk(p, o, ready, owned))
                    task.add_done_callback(lambda _, n=taken: o.handing.give(n))
                    in_flight.append(task)
            finally:
                if task is None:
                    o.handing.give(taken)
            if len(in_flight) == 2:
                await in_flight.pop(0)
        while in_flight:
            await in_flight.pop(0)
    finally:
        for task in in_flight:  # only after a failure: those asks stay "sending", orphaned
            task.cancel()


async def confirmed(p: Pipeline, owned: Callable[[list[Queued]], bool], items: list[Queued]) -> bool:
    """Whether ``items`` are still this worker's to mark or hand over, as the broker last said:
    ``owned`` (read under the consumer generation in force, no rebalance under way) and the
    group's lease held (``streams.transport.Lease``: a heartbeat answered within the session
    timeout). A worker frozen past its session (SIGSTOP, a paused VM) believes it owns its
    partitions until a heartbeat is refused: it waits for a heartbeat answered, or for the
    rebalance that takes the items away (an outside probe: resumed, it texted 71 people the new
    owner had texted already)."""
    await p.app.lease.wait(lambda: owned(items))
    return owned(items)


async def answerable(p: Pipeline, owned: Callable[[list[Queued]], bool], items: list[Queued]) -> bool:
    """Whether what this worker did with ``items`` may still be written down: its lease held
    once a heartbeat or a rebalance said where it stands. A rebalance under way waits for this
    worker's batch; one completed without it (frozen past its session) does not, and the
    partitions' new owner may have moved the facts on since: in CI, a worker resumed from a
    freeze wrote its requests' late answers over them ("delivered" back to "sent", or to "in
    doubt" once their timeout fired)."""
    await p.app.lease.wait(lambda: owned(items))
    return p.app.lease.held()


async def prepare(p: Pipeline, o: Outreach, chunk: list[Queued]) -> list[Ready]:
    """Decide every ask of ``chunk`` now, record what is not sent, mark what is; return the
    marked asks once their marks are durable."""
    now = o.clock()
    ready = [r for item in chunk if (r := decide(p, o, item, p.asks.get(item.ask.ask_id), now)) is not None]
    await p.settle()  # durable before any provider is called
    return ready


def decide(p: Pipeline, o: Outreach, item: Queued, state: AskFact | None, now: datetime) -> Ready | None:
    """Gate one ask at ``now`` and record the outcome; a ``Ready`` if it is to be handed over."""
    ask = item.ask
    if ask.ask_id in o.sending:
        return None  # being handed over here already; that hand-over records what happens
    if (state is None or state.status in ("planned", "deferred")) and settled_elsewhere(p, item, state, now):
        return None
    person = p.people.get(ask.person_key)
    if state is not None and state.status == "deferred":
        item = item._replace(ask=(ask := rezoned(ask, person, o.keys.ring.open)))
    wait = o.queue.wait(now) if ask.channel == "sms" else 0.0
    decision = gate(ask, state, person, now, o.policy.quiet, wait)
    if o.outbox is None and isinstance(decision, (Send, Defer)):
        decision = Cancel("no provider configured")
    if isinstance(decision, Defer):
        carry_out(p, item.partition, item.stored(), state, decision, now)
    elif isinstance(decision, (Cancel, Expire)):
        carry_out(p, item.partition, ask, state, decision, now)
    elif isinstance(decision, Orphaned) and o.outbox is None:
        settle_ask(p, item.partition, ask, state, "in_doubt", now, error="its worker stopped mid-send")
    elif isinstance(decision, Orphaned):
        o.sending.add(ask.ask_id)
        return Ready(item, state)
    elif isinstance(decision, Send):
        transition(p, item.partition, ask, state, "sending", now, marked_at=system_clock())
        o.sending.add(ask.ask_id)
        if ask.channel == "sms":
            o.queue.add(now, ask.segments or 1)
        return Ready(item, state, window_end(ask, now, o.policy.quiet) if ask.channel == "sms" else None)
    return None


#: Why a deferred ask was cancelled when its person had been asked under another record of theirs.
ASKED_AS_ANOTHER = "asked for this action under another record of this person"


def settled_elsewhere(p: Pipeline, item: Queued, state: AskFact | None, now: datetime) -> bool:
    """Cancel a new or deferred ask here, and say so, when it is no longer this record's to send:
    its person was merged into another after the merge's fold was taken (planned just before:
    the ask is passed on to them, ``pass_on``), or, deferred, was asked for the action on the
    ask's channel under another record of theirs, merged in since (``asked_as_another``)."""
    ask = item.ask
    if (survivor := target_of(p, ask.person_key)) != ask.person_key:
        pass_on(p, item.stored(), survivor, now)
        reason = MERGED
    elif state is not None and ask.channel in asked_as_another(p.recent_asks.get(ask.person_key), ask.action_id, ask.person_key):
        reason = ASKED_AS_ANOTHER
    else:
        return False
    carry_out(p, item.partition, ask, state, Cancel(reason), now)
    return True


async def send_chunk(p: Pipeline, o: Outreach, ready: list[Ready], owned: Callable[[list[Queued]], bool]) -> None:
    """Hand the chunk over, each text only while ``confirmed`` this worker's (else it is left
    ``sending``, for the partition's new owner to look up). A text whose window has closed by its
    request (``window_closed``: the chunk before took that long) is decided again instead;
    orphaned asks are first looked up."""
    try:
        await _send_chunk(p, o, ready, owned)
    finally:  # recorded, or (a failure) left "sending" for whoever replays them
        o.sending.difference_update(r.item.ask.ask_id for r in ready)


async def _send_chunk(p: Pipeline, o: Outreach, ready: list[Ready], owned: Callable[[list[Queued]], bool]) -> None:
    assert o.outbox is not None
    now, results = o.clock(), {}
    ready, readable = opened(p, o, ready, now)
    if orphans := [r for r in ready if r.orphaned]:
        found = await o.outbox.recover([(readable[r.item.ask.ask_id], r.previous.marked_at or r.previous.updated_at) for r in orphans])
        if not await confirmed(p, owned, [r.item for r in ready]):
            return  # taken away while looking: left as they were, for the new owner
        results.update({r.item.ask.ask_id: result for r, result in zip(orphans, found) if result is not None})
        log.info("looked up %d asks a stopped worker left sending: %d at the provider, %d in doubt, %d sent now", len(orphans),
                 sum(res.ok for res in results.values()), sum(res.in_doubt for res in results.values()), len(orphans) - len(results))
    go = [r for r in ready if r.item.ask.ask_id not in results]
    closes = {r.item.ask.ask_id: r.closes for r in go}
    items = {r.item.ask.ask_id: r.item for r in go}

    async def ours(ask: AskCommand) -> bool:  # still this worker's, right before its request
        return await confirmed(p, owned, [items[ask.ask_id]])

    def validity(ask: AskCommand) -> int:  # a text's, counted from each request however long the chunk takes
        return validity_seconds(o.clock(), closes[ask.ask_id])

    refused: dict[str, str] = {}  # why an ask was not handed over after all, by ask id
    closed: set[str] = set()  # texts whose window closed before their request (the chunk before took that long)

    def wanted(ask: AskCommand) -> bool:  # an erasure or opt-out while the chunk is handed over stops it
        if (reason := withdrawn(ask, p.people.get(ask.person_key))) is not None:
            refused[ask.ask_id] = reason
        elif window_closed(closes.get(ask.ask_id), o.clock()):
            closed.add(ask.ask_id)
        return reason is None and ask.ask_id not in closed

    results.update({res.ask_id: res for res in await o.outbox.send([readable[r.item.ask.ask_id] for r in go], validity, wanted, ours)})
    if not await answerable(p, owned, [r.item for r in ready]):
        return  # the answers are the new owner's to find
    done = o.clock()
    for r in go:
        if r.item.ask.ask_id in results:
            continue
        if (reason := refused.get(r.item.ask.ask_id)) is not None:
            carry_out(p, r.item.partition, r.item.ask, r.previous, Cancel(reason), done)
        elif r.item.ask.ask_id in closed:
            o.sending.discard(r.item.ask.ask_id)
            decide(p, o, r.item, r.previous, done)  # as if never marked: it was not sent
    for r in ready:
        if r.item.ask.ask_id in results:
            result = results[r.item.ask.ask_id]
            if result.error_code == str(TWILIO_QUEUE_FULL):
                queue_full(p, o, r.item.partition, r.item.stored(), done)
            else:
                record_result(p, r.item.partition, r.item.ask, result, done)


def queue_full(p: Pipeline, o: Outreach, partition: int, ask: AskCommand, now: datetime) -> None:
    """The sender's queue was full (21611): nothing left; deferred to try again, or expired."""
    log.warning("the sender's queue is full (21611): text deferred, not failed")
    carry_out(p, partition, ask, p.asks.get(ask.ask_id), after_queue_full(ask, now, o.policy.quiet), now, error_code=str(TWILIO_QUEUE_FULL))


def opened(p: Pipeline, o: Outreach, ready: list[Ready], now: datetime) -> tuple[list[Ready], dict[str, AskCommand]]:
    """The asks whose address and text can be read, opened for the provider (by ask id); the
    others are cancelled or deferred (``sending.unreadable``)."""
    keep, readable, waiting = [], {}, 0
    for r in ready:
        ask = open_ask(r.item.ask, o.keys.ring)
        if ask is None:
            decision = unreadable(any(o.keys.ring.erased_value(getattr(r.item.ask, f)) for f in ("to", "body")), now)
            carry_out(p, r.item.partition, r.item.ask, p.asks.get(r.item.ask.ask_id), decision, now)
            waiting += isinstance(decision, Defer)
        else:
            keep.append(r)
            readable[ask.ask_id] = ask
    if waiting:
        log.warning("%d asks wait a minute: their data keys are not read here yet", waiting)
    return keep, readable


async def hand_back(p: Pipeline, o: Outreach, ready: list[Ready]) -> None:
    """The partition was revoked while these were being marked: put their facts back as they
    were, before the rebalance completes (it waits for this batch), so the new owner sends them.
    Not once the group may have moved on without this worker (``answerable``): the new owner
    may have sent them already; left "sending", they are looked up."""
    o.sending.difference_update(r.item.ask.ask_id for r in ready)
    if not p.app.lease.held():  # it was just waited for (``confirmed``, ``answerable``)
        return
    for r in ready:
        if r.orphaned:
            continue  # orphaned before us: still orphaned
        if r.previous is None:
            p.asks.delete(r.item.partition, r.item.ask.ask_id)
        else:
            p.asks.put(r.item.partition, r.item.ask.ask_id, r.previous)
    await p.settle()


def transition(p: Pipeline, partition: int, ask: AskCommand, state: AskFact | None, status: str, now: datetime, **details: object) -> None:
    """Move the ask's fact to ``status``, keeping what the fact already knows (reply flags)."""
    update = {"status": status, "updated_at": now, **details}
    p.asks.put(partition, ask.ask_id, state.model_copy(update=update) if state is not None else ask.fact(status, now, **{"send_until": ask.send_until, **details}))


def settle_ask(p: Pipeline, partition: int, ask: AskCommand, state: AskFact | None, status: str, now: datetime, **details: object) -> None:
    transition(p, partition, ask, state, status, now, **details)
    p.deferred.delete(partition, ask.ask_id)


def defer(p: Pipeline, partition: int, ask: AskCommand, state: AskFact | None, until: datetime, now: datetime) -> None:
    transition(p, partition, ask, state, "deferred", now, deferred_until=until)
    p.deferred.put(partition, ask.ask_id, ask.model_copy(update={"send_after": until}))


def carry_out(p: Pipeline, partition: int, ask: AskCommand, state: AskFact | None, decision: Cancel | Expire | Defer, now: datetime,
              **details: object) -> None:
    """Record a decision not to send now: the ask settled cancelled or expired, or deferred."""
    if isinstance(decision, Defer):
        defer(p, partition, ask, state, decision.until, now)
    else:
        status = "cancelled" if isinstance(decision, Cancel) else "expired"
        settle_ask(p, partition, ask, state, status, now, error=decision.reason, **details)


def withdraw_waiting(p: Pipeline, partition: int, person_key: str, now: datetime) -> None:
    """Cancel the person's asks waiting for an allowed hour that may no longer go to them (an
    opt-out, an address found undeliverable): counted cancelled at once, not "waiting" until
    they come due and are decided again."""
    recent, person = p.recent_asks.get(person_key), p.people.get(person_key)
    if recent is None or person is None:
        return
    for aid, _ in recent.asks:
        if parse_ask_id(aid)[1] != person_key:
            continue  # an ask of another record of theirs, merged in: not this partition's
        if (ask := p.deferred.get(aid)) is not None and (reason := withdrawn(ask, person)) is not None:
            carry_out(p, partition, ask, p.asks.get(aid), Cancel(reason), now)


def chunks(items: list[Queued], size: int) -> list[list[Queued]]:
    """SMS in chunks of ``size``; emails together (they go out in requests of up to 1000)."""
    texts = [i for i in items if i.ask.channel == "sms"]
    emails = [i for i in items if i.ask.channel == "email"]
    return [texts[i : i + size] for i in range(0, len(texts), size)] + ([emails] if emails else [])


def record_result(p: Pipeline, partition: int, ask: AskCommand, r: SendResult, now: datetime) -> None:
    current = p.asks.get(ask.ask_id) or ask.fact("sending", now)
    p.asks.put(partition, ask.ask_id, on_send_result(current, r, now))
    p.deferred.delete(partition, ask.ask_id)
    if r.ok:
        return
    if r.in_doubt:
        log.warning("ask in doubt (the provider may have it); not resending")
        return
    p.dead_letter(ask.ask_id, "permanent provider failure", code=r.error_code, error=r.error)
    if (person := p.people.get(ask.person_key)) is not None:
        p.people.put(partition, ask.person_key, after_refusal(person, ask.channel, r, ask.planned_at, now))  # unchanged: nothing written
        withdraw_waiting(p, partition, ask.person_key, now)


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
