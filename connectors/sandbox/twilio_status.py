"""What becomes of a message the sandbox's Twilio accepted: its queue, and its status callbacks.

With no MPS configured a text leaves at once. With one, it joins its sender's queue (the From
number, or the Messaging Service) and leaves at its slot, or fails by callback with 30036
(validity expired) or, for a Messaging Service, 30001 (queue overflow); see ``queue``.

As at Twilio, the initial status (``queued``; ``accepted`` for Messaging Service sends) gets no
callback. A Messaging Service message reports ``queued`` when it joins its sender's queue; a
text that leaves reports ``sent``, then ``delivered`` (or ``undelivered`` / ``failed`` with the
carrier's ``ErrorCode``), ``callback_delay_ms`` apart.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .queue import QUEUE_OVERFLOW_SERVICE, Admission

if TYPE_CHECKING:
    from .server import Sandbox

API = "2010-04-01"
#: Carrier codes Twilio reports as ``failed`` (never left Twilio); the rest are ``undelivered``.
FAILED_CODES = frozenset({30001, 30002, 30010})
Step = tuple[str, int | None]
QUEUED: list[Step] = [("queued", None)]


def delivery(sb: "Sandbox", record: dict) -> list[Step]:
    """``sent``, then what the carrier made of it (the faults decide)."""
    to = record["to"]
    code = 30006 if to in sb.faults.landline_numbers else sb.faults.carrier_errors.get(to)
    final = ("delivered", None) if code is None else ("failed" if code in FAILED_CODES else "undelivered", code)
    return [("sent", None), final]


async def progress(sb: "Sandbox", record: dict, steps: list[Step]) -> None:
    """Move ``record`` through ``steps``, posting each status to its callback URL."""
    url = record["status_callback"] or sb.config.status_callback_url
    for status, error_code in steps:
        await asyncio.sleep(sb.faults.callback_delay_ms / 1000)
        sb.set_status(record, status, error_code)
        if url:
            params = {
                "AccountSid": sb.config.account_sid, "ApiVersion": API, "From": record["from"],
                "To": record["to"], "MessageSid": record["id"], "SmsSid": record["id"],
                "MessageStatus": status, "SmsStatus": status,
            }
            if record["messaging_service_sid"]:
                params["MessagingServiceSid"] = record["messaging_service_sid"]
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
            await sb.post_form(url, params)


def leave(sb: "Sandbox", record: dict, before: list[Step] | None = None) -> None:
    """The text leaves now: stamp it, then report ``before`` (if any), ``sent`` and its outcome."""
    sb.mark_left(record)
    sb.poster.spawn(progress(sb, record, [*(before or []), *delivery(sb, record)]))


def fail(sb: "Sandbox", record: dict, code: int) -> None:
    """The text will never leave: ``failed`` with ``code`` by callback."""
    sb.mark_failed(code)
    sb.poster.spawn(progress(sb, record, [("failed", code)]))


def dispatch(sb: "Sandbox", record: dict, sender: str, admission: Admission | None) -> None:
    """Send an accepted ``record`` on its way: at once (no queue, ``admission`` None), into its
    sender's queue, or to a 30001 failure when a Messaging Service's queue overflowed."""
    by_service = record["status"] == "accepted"
    if admission is None:
        leave(sb, record, QUEUED if by_service else None)
    elif admission.verdict == "overflow":
        fail(sb, record, QUEUE_OVERFLOW_SERVICE)
    else:
        if by_service:
            sb.poster.spawn(progress(sb, record, QUEUED))
        sb.queues.hold(sender, record, admission, record["segments"])
