"""Whether to hand an ask to a provider now: the last check before a message leaves.

Run per chunk, immediately before the provider call, with that moment's clock: an opt-out, a
consent change or an erasure that arrived after planning still stops the message, an ask
that reaches quiet hours waits, and an ask whose action has started is not sent at all.

A text handed to Twilio waits in the sender's queue (Twilio paces it at the sender's MPS), so
"now" is not when it arrives. Its ``ValidityPeriod`` is therefore the time left until the
recipient's quiet hours begin or the action starts, whichever is first: a text still queued
then expires (Twilio error 30036) instead of arriving at night or after the event. A text
whose predicted queue wait already exceeds that is not handed over but deferred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from contracts.asks import NEVER_RESEND, AskCommand, AskFact
from contracts.facts import PersonRecord

from ..erasure import ERASED

from .eligibility import consent_problem, undeliverable_problem
from .quiet_hours import TWILIO_MAX_VALIDITY, QuietHours, next_allowed, quiet_begins, recipient_zone


@dataclass(frozen=True)
class Skip:
    """Already handled (a replay or a duplicate): do nothing, record nothing."""

    reason: str


@dataclass(frozen=True)
class Cancel:
    """Never send this ask (opted out, consent gone, person erased, no provider)."""

    reason: str


@dataclass(frozen=True)
class Expire:
    """Too late: no allowed moment is left before the action starts."""

    reason: str


@dataclass(frozen=True)
class Defer:
    until: datetime


@dataclass(frozen=True)
class Orphaned:
    """Marked ``sending`` by a worker that is gone: the provider may or may not have it."""


@dataclass(frozen=True)
class Send:
    validity_period: int | None = None


Decision = Skip | Cancel | Expire | Defer | Orphaned | Send


def gate(ask: AskCommand, state: AskFact | None, person: PersonRecord | None, now: datetime, quiet: QuietHours,
         queue_wait: float = 0.0) -> Decision:
    """What to do with ``ask`` at ``now``; ``queue_wait``: seconds a text handed over now is
    expected to wait in the provider's queue before it leaves."""
    if state is not None and state.status == "sending":
        return Orphaned()
    if state is not None and state.status in NEVER_RESEND:
        return Skip(f"already {state.status}")
    if (reason := withdrawn(ask, person)) is not None:
        return Cancel(reason)
    if ask.send_until is not None and now >= ask.send_until:
        return Expire("the action has started")
    if ask.send_after is not None and now < ask.send_after:
        return defer_or_expire(ask.send_after, ask.send_until)
    if ask.channel != "sms":
        return Send()
    quiet_applies = ask.quiet_hours_apply and ask.time_zone is not None
    if quiet_applies and (until := next_allowed(now, ask.time_zone, quiet)) is not None:
        return defer_or_expire(until, ask.send_until)
    closes = window_end(ask, now, quiet)
    validity = validity_seconds(now, closes)
    if queue_wait >= validity:
        # It would only expire in the queue: try again in the next window, if one is left.
        if closes == ask.send_until:
            return Expire("the provider's queue is too long to deliver before the action")
        return defer_or_expire(next_allowed(closes, ask.time_zone, quiet) or closes, ask.send_until)
    return Send(validity_period=validity)


def rezoned(ask: AskCommand, person: PersonRecord | None, open_field: Callable[[str, str | None], str | None]) -> AskCommand:
    """A text planned a while ago (deferred), in the time zone of where its person lives now: a
    ZIP or phone given since moves their quiet hours. ``open_field(name, value)`` opens a sealed
    field (``None`` if it cannot); what cannot be read keeps the zone it was planned with."""
    if person is None or ask.channel != "sms" or not ask.quiet_hours_apply or ask.time_zone is None:
        return ask
    zone = recipient_zone(open_field("postal_code", person.postal_code), open_field("phone", person.phone), ask.time_zone)
    return ask if zone == ask.time_zone else ask.model_copy(update={"time_zone": zone})


def withdrawn(ask: AskCommand, person: PersonRecord | None) -> str | None:
    """Why ``ask`` may no longer go to ``person`` at all (erased, opted out, consent gone, an
    address found undeliverable since it was planned), else ``None``: checked when a chunk is
    marked and again right before each request."""
    if person is None:
        return "person no longer known"
    return consent_problem(person, ask.channel) or undeliverable_problem(person, ask.channel)


def window_end(ask: AskCommand, now: datetime, quiet: QuietHours) -> datetime | None:
    """When this text may no longer arrive: quiet hours begin or the action starts (``now``
    is outside quiet hours)."""
    ends = [ask.send_until] if ask.send_until is not None else []
    if ask.quiet_hours_apply and ask.time_zone is not None:
        ends.append(quiet_begins(now, ask.time_zone, quiet))
    return min(ends, default=None)


def validity_seconds(now: datetime, closes: datetime | None) -> int:
    """Twilio's ``ValidityPeriod`` (counted from submission): until ``closes``, in [1, 36000]."""
    if closes is None:
        return TWILIO_MAX_VALIDITY
    return min(max(math.floor((closes - now).total_seconds()), 1), TWILIO_MAX_VALIDITY)


def window_closed(closes: datetime | None, now: datetime) -> bool:
    """Whether a text whose window ends at ``closes`` may no longer be handed over at ``now``:
    less than a second of it left (Twilio's least ``ValidityPeriod``). It is decided again."""
    return closes is not None and (closes - now).total_seconds() < 1


def defer_or_expire(until: datetime, send_until: datetime | None) -> Defer | Expire:
    if send_until is not None and until >= send_until:
        return Expire("no allowed hour left before the action")
    return Defer(until)


def after_validity_expired(ask: AskCommand, now: datetime, quiet: QuietHours) -> Defer | Expire:
    """A text the provider dropped because its validity ran out (30036): its window closed,
    so it is deferred to the next allowed hour while the action is still ahead."""
    if ask.send_until is not None and now >= ask.send_until:
        return Expire("the action has started")
    if not ask.quiet_hours_apply or ask.time_zone is None:
        return Expire("the provider's queue held it past its validity")
    start = next_allowed(now, ask.time_zone, quiet)
    if start is None:  # the window is open again (or not yet closed): the next one, to be safe
        start = next_allowed(quiet_begins(now, ask.time_zone, quiet), ask.time_zone, quiet)
    return defer_or_expire(start, ask.send_until)


#: How long a text refused for a full sender queue (21611) waits before it is tried again.
QUEUE_FULL_WAIT = timedelta(minutes=15)


def after_queue_full(ask: AskCommand, now: datetime, quiet: QuietHours) -> Defer | Expire:
    """Twilio refused the text because the sender's queue holds ten hours already (21611):
    nothing was queued, so it is tried again once the queue has drained a little, in an allowed
    hour, while the action is still ahead (never recorded failed: the number is fine)."""
    until = now + QUEUE_FULL_WAIT
    if ask.channel == "sms" and ask.quiet_hours_apply and ask.time_zone is not None:
        until = next_allowed(until, ask.time_zone, quiet) or until
    return defer_or_expire(until, ask.send_until)


#: How long an ask waits when this worker has not read its person's data key yet.
KEY_WAIT = timedelta(minutes=1)


def unreadable(erased: bool, now: datetime) -> Cancel | Defer:
    """An ask whose address or text this worker cannot open. ``erased``: its person's data key
    was seen tombstoned, so there is nothing to send to (cancelled, quietly). Otherwise the key
    has not been read here yet (a worker that just took the partition over, or a broker slow to
    answer): not sent now and not lost, but decided again a minute later."""
    return Cancel(ERASED) if erased else Defer(now + KEY_WAIT)


class SenderQueue:
    """A prediction of the provider's queue for one sender: texts leave at ``mps`` per second
    (0: no queue). Used to keep a text from being handed over when it would only expire, and
    to keep the queue under Twilio's 10 hours; it paces nothing."""

    def __init__(self, mps: float) -> None:
        self.mps = mps
        self._free_at: datetime | None = None

    def wait(self, now: datetime) -> float:
        if not self.mps or self._free_at is None:
            return 0.0
        wait = (self._free_at - now).total_seconds()
        if wait > TWILIO_MAX_VALIDITY + 60:  # more than Twilio queues (10 hours): the clock moved back (a rehearsal's)
            self._free_at = None
            return 0.0
        return max(0.0, wait)

    def copy(self) -> SenderQueue:
        """The prediction as it stands, to be played forward without moving this one (a preview)."""
        other = SenderQueue(self.mps)
        other._free_at = self._free_at
        return other

    def drains(self, now: datetime) -> datetime | None:
        """When the queue will have sent its last text, if it holds any at ``now``."""
        return now + timedelta(seconds=wait) if (wait := self.wait(now)) else None

    def add(self, now: datetime, segments: int = 1) -> None:
        if self.mps:
            self.wait(now)  # forgets a queue the clock left behind
            start = max(self._free_at or now, now)
            self._free_at = start + timedelta(seconds=segments / self.mps)
