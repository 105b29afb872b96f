"""What a supporter's link opens, and what answering it writes. Pure: the link, what the web
app has read of the facts (``TallyBook``) and ``now`` in; a page to show or records to write out.

The web app does not keep people (no names, phones or emails): a link names its ask, and the
ask's fact says which partner to credit. The RSVP becomes a ``SupporterRsvpEvent`` on the events
topic, keyed and enveloped as the ingress does it, so the intake counts it like any other RSVP.
An unsubscribe becomes what SendGrid would have sent for that ask (an ``unsubscribe`` event),
and "stop texts too" what a STOP reply would have (``SmsReply``), both on the provider topic,
which the receipts agent applies coalition-wide.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Literal

from contracts.asks import AskFact
from contracts.events import ActionEvent, Envelope, RsvpStatus, SupporterRsvpEvent
from contracts.facts import Attendance
from contracts.providers import EmailEvent, ProviderEnvelope, SmsReply
from contracts.tallies import TallyBook
from streams import links
from streams.keys import fact_key

Record = tuple[bytes, bytes]


@dataclass(frozen=True)
class Opened:
    """A link that may be answered: its ask's action, the partner credited, what is known already."""

    link: links.Link
    action: ActionEvent
    partner: str
    answer: RsvpStatus | None = None
    unsubscribed: bool = False
    #: When the answer in force was received (from whichever link or partner).
    answered_at: datetime | None = None


@dataclass(frozen=True)
class Refused:
    """A link that may not be answered, and the HTTP status that says why:
    404 *invalid* (not ours, altered, cut short), 410 *expired*, 410 *forgotten* (the person was
    erased: nothing is written about them), 503 *later* (this web app has not read the ask or its
    action yet: it is starting up)."""

    status: int
    kind: Literal["invalid", "expired", "forgotten", "later"]
    link: links.Link | None = None
    action: ActionEvent | None = None


def open_link(book: TallyBook, key: bytes, purpose: links.Purpose, action_id: str, token: str, now: datetime,
              rsvp_open: timedelta, forgotten: Callable[[str], bool] = lambda person_key: False) -> Opened | Refused:
    """Read ``token`` as a ``purpose`` link for ``action_id``. An RSVP link works until
    ``rsvp_open`` after the action's current start (an action moved to a later day keeps its
    links; one moved earlier ends them sooner than the expiry they were signed with); an
    unsubscribe link never expires. No link of a person ``forgotten`` (erased) works."""
    try:
        link = links.read(key, purpose, action_id, token)
    except links.BadLink:
        return Refused(404, "invalid")
    if forgotten(link.person_key):
        return Refused(410, "forgotten", link)
    record, ask = book.action_record(action_id), book.fact("ask", link.ask_id)
    if record is None or not isinstance(ask, AskFact):
        return Refused(503, "later", link)
    if purpose == "rsvp" and not record.action.takes_answers(now, rsvp_open):
        return Refused(410, "expired", link, record.action)
    attendance = book.fact("attendance", fact_key(action_id, link.person_key))
    if not isinstance(attendance, Attendance):
        return Opened(link, record.action, ask.partner, None, ask.opted_out)
    return Opened(link, record.action, ask.partner, attendance.rsvp, ask.opted_out, answered_at=attendance.rsvp_received)


def rsvp_record(opened: Opened, status: RsvpStatus, received_at: datetime) -> Record:
    """The events-topic record of a supporter's answer: keyed by person (the person's partition
    holds their attendance), credited to the ask's partner."""
    link = opened.link
    event_id = "page-" + hashlib.sha256(link.ask_id.encode()).hexdigest()[:32]  # an ask id may be longer than an event id
    event = SupporterRsvpEvent(event_id=event_id, occurred_at=received_at, action_id=link.action_id,
                               status=status, ask_id=link.ask_id)
    envelope = Envelope(partner=opened.partner, received_at=received_at, person_key=link.person_key, event=event)
    return link.person_key.encode(), envelope.model_dump_json().encode()


def unsubscribe_records(opened: Opened, stop_texts: bool, received_at: datetime) -> list[Record]:
    """Provider-topic records that opt the person out of email (and, if asked, of texts) at once."""
    link = opened.link
    events: list[EmailEvent | SmsReply] = [EmailEvent(ask_id=link.ask_id, sg_event_id=f"unsubscribe-link:{link.ask_id}", event="unsubscribe")]
    if stop_texts:
        events.append(SmsReply(message_sid=f"unsubscribe-link:{link.ask_id}", keyword="STOP", opt_out_handled_by_twilio=False))
    return [(link.person_key.encode(), ProviderEnvelope(person_key=link.person_key, received_at=received_at, event=e).model_dump_json().encode())
            for e in events]
