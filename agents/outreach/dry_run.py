"""The organizer console's dry runs, as the ``plan_asks`` agent carries them out.

A ``PreviewAudience`` arrives once per targeting partition: the worker counts what launching
the action now would do for that partition's people (``preview.outcome``, the planning rules
themselves) and answers with an ``AudienceCount``. It writes no table and sends no ask.

A ``SendTest`` arrives once: the worker renders the action's messages with sample values,
marked as a test (``preview.test_messages``), and hands them to its own providers for the
addresses in the command only, in a task of its own (a slow provider does not hold up
planning; a stopping worker lets it finish), then answers with a ``TestSent``: sent, or why
not ("no provider configured"). Neither writes an ask, a fact or a tally.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from contracts.asks import ASKED_ALREADY, ask_id
from contracts.preview import AudienceCount, PreviewAudience, SendTest, TestResult, TestSent
from streams.app import Pipeline
from streams.sealing import open_person

from ..identity import target_of
from .eligibility import sponsor_order
from .planning import unreceived_of
from .preview import count, outcome, test_messages
from .templates import segments

if TYPE_CHECKING:
    from .agents import Outreach, PeopleIndex

log = logging.getLogger(__name__)
#: Previews whose queue a worker keeps (``Outreach.previews``): the latest, while their partitions are counted.
PREVIEWS_KEPT = 16


async def preview_partition(p: Pipeline, o: Outreach, req: PreviewAudience, partition: int, index: PeopleIndex) -> AudienceCount:
    """Count, for this partition's people, what launching ``req.action`` now would do; its texts
    wait their turn in the sender's queue, as predicted here, after those of the request's
    partitions previewed before on this worker (as a launch hands them over)."""
    now, sponsors, outcomes, unread = o.clock(), sponsor_order(req.owner, req.sponsors), [], []
    queue = o.previews.setdefault(req.request_id, o.queue.copy())
    while len(o.previews) > PREVIEWS_KEPT:
        del o.previews[next(iter(o.previews))]

    def counted(key: str) -> bool:
        """Count this person's outcome; ``False`` if their record cannot be read (yet)."""
        person = p.people.get(key)
        if person is None or target_of(p, key) != key:  # merged into another person: counted there
            return True
        person = open_person(person, o.keys.ring)  # as planning reads them: area and zone from the address
        if person is None:
            return False
        ids = (ask_id(req.action.action_id, key, "sms"), ask_id(req.action.action_id, key, "email"))
        done = {aid for aid in ids if (f := p.asks.get(aid)) is not None and f.status in ASKED_ALREADY}
        recent = p.recent_asks.get(key)
        outcomes.append(outcome(person, req.action, recent, done, now, o.policy, req.requested_at, sponsors, unreceived_of(recent, p.asks.get),
                                queue))
        return True

    for i, key in enumerate(index.keys(p.people.table.data, partition)):
        if i % 256 == 0:
            await asyncio.sleep(0)  # a big partition must not starve the other agents
        if not counted(key):
            unread.append(key)
    # As planning does: a data key this worker has not read yet is read once; who is still
    # unreadable was erased, and is nobody to ask.
    if unread and await o.keys.caught_up():
        for key in unread:
            counted(key)
    return count(req.request_id, partition, outcomes, now, queue)


async def answer(p: Pipeline, request_id: str, value: AudienceCount | TestSent) -> None:
    assert p.previews is not None
    await p.previews.send(key=request_id.encode(), value=value.model_dump_json().encode())


def start_test(p: Pipeline, o: Outreach, cmd: SendTest) -> None:
    """Send the test in a task of its own (``Outreach.answering``: a stopping worker lets it
    finish); it answers when the providers have."""
    o.answer_soon(_send_test(p, o, cmd))


async def _send_test(p: Pipeline, o: Outreach, cmd: SendTest) -> None:
    results = []
    for channel, (subject, body) in test_messages(cmd.action, cmd.sponsor, cmd.language, o.policy).items():
        to = cmd.phone if channel == "sms" else cmd.email
        if not to:
            continue
        if o.outbox is None:
            results.append(TestResult(channel=channel, sent=False, error="no provider configured (no credentials on the workers)"))
            continue
        now = o.clock()
        wait = round(o.queue.wait(now)) if channel == "sms" else 0  # behind the texts queued at the sender, as any text
        try:
            error = await o.outbox.test(channel, to, subject, body, cmd.sponsor, cmd.request_id)
        except Exception as exc:  # noqa: BLE001 - a test that fails says so; the agent goes on
            log.warning("test send failed: %s", type(exc).__name__)
            error = f"not sent ({type(exc).__name__})"
        if error is None and channel == "sms":
            o.queue.add(now, segments(body)[1])
        results.append(TestResult(channel=channel, sent=error is None, error=error, queue_wait=wait if error is None else 0))
    try:
        await answer(p, cmd.request_id, TestSent(request_id=cmd.request_id, results=tuple(results), at=o.clock()))
    except Exception as exc:  # noqa: BLE001 - the web app then says no worker answered
        log.warning("test send answer not written: %s", type(exc).__name__)
