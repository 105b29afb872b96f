"""The organizer console's dry runs: an audience preview and a test send, and the workers' answers.

A preview asks every partition of the targeting topic who *would* be asked if the action were
posted now: each partition's worker plans its own people without writing anything and answers
with counts (``AudienceCount``: no names, no addresses). A test send asks one worker to render
the action's messages with sample values, marked as a test, and send them to the address the
organizer typed, and nobody else, through the providers the workers use (``TestSent``). Neither
is an ask: no fact, no tally. Answers travel on the previews topic (``streams.topology``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from .events import ActionEvent
from .facts import Channel
from .people import Internal

#: Kafka key prefixes on the targeting topic (``preview:<request id>:<n>``, ``test-send:<request id>``).
PREVIEW_PREFIX = "preview:"
TEST_SEND_PREFIX = "test-send:"
#: What a test message starts with (its subject too, for an email).
TEST_MARK = "[TEST] "


class PreviewAudience(Internal):
    """Plan ``action`` as if posted at ``requested_at`` by ``owner`` with ``sponsors``; write nothing."""

    version: int = Field(default=1, description="The writer's contract version (internal topics).")
    request_id: str
    action: ActionEvent
    owner: str
    sponsors: tuple[str, ...] = ()
    requested_at: datetime


#: Why a person is left out of a channel they were asked on for this action already
#: (``AudienceCount.excluded``): what the console tells an edit's organizer is not re-sent.
ALREADY = "already asked"


class AudienceCount(Internal):
    """One partition's answer to a ``PreviewAudience``: counts only.

    ``asked``: asks per channel. ``excluded``: per channel, per reason (the eligibility rules'
    words: "out of area", "opted out", "no consent", "consent covers no sponsor", "no phone",
    "no email", "undeliverable", "frequency cap", "already asked"), people left out on that channel. ``deferred``:
    texts that quiet hours would hold, with the earliest and latest moment they would go
    (``deferred_by_queue`` of them because the sender's queue would not send them before quiet
    hours begin). ``queue_drains``: when the sender's queue, as the worker predicts it
    (``TURNOUT_SMS_RATE``), would have sent the last text handed over; ``None`` without a rate."""

    kind: Literal["audience"] = "audience"
    request_id: str
    partition: int
    people: int = 0
    reached: int = 0
    asked: dict[Channel, int] = {}
    excluded: dict[Channel, dict[str, int]] = {}
    deferred: int = 0
    deferred_by_queue: int = 0
    deferred_first: datetime | None = None
    deferred_last: datetime | None = None
    queue_drains: datetime | None = None
    at: datetime


class SendTest(Internal):
    """Send ``action``'s messages, rendered with sample values and marked as a test, to these
    addresses only (the organizer's own), as sent on behalf of ``sponsor``."""

    version: int = Field(default=1, description="The writer's contract version (internal topics).")
    request_id: str
    action: ActionEvent
    sponsor: str
    language: str = "en"
    phone: str | None = None
    email: str | None = None
    requested_at: datetime


class TestResult(Internal):
    channel: Channel
    sent: bool
    error: str | None = None
    queue_wait: int = Field(default=0, description="A text's expected wait, in seconds, behind the texts queued at the sender before it (TURNOUT_SMS_RATE).")


class TestSent(Internal):
    """A worker's answer to a ``SendTest``: per channel, sent or why not. No addresses."""

    kind: Literal["test"] = "test"
    request_id: str
    results: tuple[TestResult, ...] = ()
    at: datetime
