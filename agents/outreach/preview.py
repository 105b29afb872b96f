"""Dry runs for the organizer console: who an action would reach, and a test message. Pure.

``outcome`` plans one person exactly as ``planning.plan`` would for a launch now, and decides
each ask as the send path would hand it over now (``sending.gate``); it says per channel whether
they would be asked (and when a text would go, when quiet hours hold it) or why not: the first
eligibility rule that fails (``eligibility.decide``), "already asked" when the action reached
them on that channel before, or why the ask would not be sent (no allowed hour left before the
action). ``count`` adds outcomes up into a partition's ``AudienceCount``. Channels the action
has no template for are not counted: no one is asked on them. ``test_messages`` renders the action's messages with sample values,
marked as a test, for the organizer's own phone and email.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from contracts.asks import RecentAsks
from contracts.events import ActionEvent
from contracts.facts import Channel, PersonRecord
from contracts.preview import ALREADY, TEST_MARK, AudienceCount

from .eligibility import CHANNELS
from .planning import OutreachPolicy, in_language, pick, plan, verdict
from .sending import Cancel, Defer, Expire, Send, SenderQueue, gate
from .templates import email_body, names_sponsor, render, sms_body

#: The sample values a test message is rendered with (the organizer is not a person in the table).
SAMPLE_NAME = "Alexandra"


@dataclass(frozen=True)
class Outcome:
    """One person's fate per channel: asked (``None``, or when a held text would go) or the reason not."""

    asked: dict[Channel, datetime | None] = field(default_factory=dict)
    excluded: dict[Channel, str] = field(default_factory=dict)
    held_by_queue: bool = False  # the text is held because the sender's queue would not send it in its window


def channels_of(action: ActionEvent) -> tuple[Channel, ...]:
    """The channels the action has a template for (the only ones anyone can be asked on)."""
    return tuple(c for c in CHANNELS if (action.templates.sms if c == "sms" else action.templates.email))


def outcome(person: PersonRecord, action: ActionEvent, recent: RecentAsks | None, already: set[str], now: datetime,
            policy: OutreachPolicy, grace_from: datetime | None = None, sponsors: Collection[str] | None = None,
            unreceived: Collection[str] = (), queue: SenderQueue | None = None) -> Outcome:
    """What launching ``action`` at ``now`` would do for ``person`` (arguments as ``plan``'s;
    ``queue``: a copy of the worker's prediction of the sender's queue, which a text to be sent
    joins, as at the launch)."""
    asks = {a.channel: a for a in plan(person, action, recent, already, now, policy, grace_from, sponsors, unreceived)}
    eligible = verdict(person, action, recent, now, policy, sponsors, unreceived)
    result = Outcome()
    for channel in channels_of(action):
        if channel in asks:
            # As the send path decides it when the launch hands it over: held, expired or sent now.
            ask, wait = asks[channel], queue.wait(now) if queue is not None and channel == "sms" else 0.0
            decision = gate(ask, None, person, now, policy.quiet, wait)
            if isinstance(decision, (Cancel, Expire)):
                result.excluded[channel] = decision.reason
            elif isinstance(decision, Defer):
                result.asked[channel] = decision.until
                result = replace(result, held_by_queue=wait > 0 and isinstance(gate(ask, None, person, now, policy.quiet), Send))
            else:
                result.asked[channel] = None
                if queue is not None and channel == "sms":
                    queue.add(now, ask.segments or 1)
        else:
            result.excluded[channel] = eligible.reasons.get(channel, ALREADY)
    return result


def count(request_id: str, partition: int, outcomes: Iterable[Outcome], now: datetime, queue: SenderQueue | None = None) -> AudienceCount:
    """A partition's answer: people seen, people reached on any channel, asks per channel,
    exclusions per channel and reason, texts held by quiet hours (by the sender's queue among
    them) and when the first and last go, and when ``queue`` (as the outcomes left it) drains."""
    people = reached = by_queue = 0
    asked: dict[Channel, int] = {}
    excluded: dict[Channel, dict[str, int]] = {}
    held: list[datetime] = []
    for o in outcomes:
        people += 1
        reached += bool(o.asked)
        by_queue += o.held_by_queue
        for channel, after in o.asked.items():
            asked[channel] = asked.get(channel, 0) + 1
            if after is not None:
                held.append(after)
        for channel, reason in o.excluded.items():
            excluded.setdefault(channel, {})[reason] = excluded.get(channel, {}).get(reason, 0) + 1
    return AudienceCount(request_id=request_id, partition=partition, people=people, reached=reached, asked=asked, excluded=excluded,
                         deferred=len(held), deferred_by_queue=by_queue, deferred_first=min(held, default=None), deferred_last=max(held, default=None),
                         queue_drains=queue.drains(now) if queue is not None else None, at=now)


def test_messages(action: ActionEvent, sponsor: str, language: str, policy: OutreachPolicy) -> dict[Channel, tuple[str | None, str]]:
    """Per channel the action has a template for, ``(subject, body)`` as an ask would carry them
    (sponsor's name, footer, unsubscribe line), rendered with sample values and marked
    ``TEST_MARK``. Its links lead nowhere live: a test is not an ask."""
    values = {
        "given_name": SAMPLE_NAME, "action_title": action.title,
        "place": ", ".join(x for x in (action.location.venue, action.location.locality) if x),
        "sponsor": policy.sponsor_names.get(sponsor, sponsor),
        "rsvp_link": f"{policy.rsvp_base_url.rstrip('/')}/{action.action_id}/test",
    }
    out: dict[Channel, tuple[str | None, str]] = {}
    if picked := pick(action.templates.sms, language):
        tag, sms = picked
        text = render(sms, in_language(values, action, tag, sms=True))
        out["sms"] = (None, TEST_MARK + sms_body(text if names_sponsor(sms) else f"{values['sponsor']}: {text}", policy.sms_footer(language)))
    if picked := pick(action.templates.email, language):
        tag, mail = picked
        mine = in_language(values, action, tag)
        unsubscribe = f"{policy.unsubscribe_base_url.rstrip('/')}/{action.action_id}/test"
        body = email_body(render(mail.body, mine), unsubscribe, language, None if names_sponsor(mail.body) else values["sponsor"])
        out["email"] = (TEST_MARK + render(mail.subject, mine), TEST_MARK.strip() + "\n\n" + body)
    return out
