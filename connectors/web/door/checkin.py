"""What a tap at the door writes: a partner ``checkin`` event (for "Undo", its withdrawal), as
the partner's own tools would post it. Pure: the form's fields, the contact found in the
directory and ``now`` in; the event (a JSON-ready dict) or a ``Refusal`` naming the field out.

The event id comes from the volunteer's phone (``door-<id>``), made when the button was tapped,
so a check-in queued offline and sent three times is one event, and one attendee.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .directory import Contact

CLIENT_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
#: A tap queued offline keeps its own time, unless it claims one the coalition would not accept.
OLDEST_TAP = timedelta(days=2)


@dataclass(frozen=True)
class Refusal(Exception):
    field: str
    message: str


def event_id(form: dict[str, str]) -> str:
    client = form.get("event_id", "")
    if not CLIENT_ID.match(client):
        raise Refusal("event_id", "must be 8 to 64 letters, digits or dashes (the page makes one per tap)")
    return "door-" + client


def tapped_at(form: dict[str, str], now: datetime) -> datetime:
    """When the button was tapped (the page sends it; a queued tap is sent later), else ``now``."""
    try:
        at = datetime.fromisoformat(form.get("at", "").replace("Z", "+00:00"))
    except ValueError:
        return now
    if at.tzinfo is None or not now - OLDEST_TAP <= at <= now:
        return now
    return at


def walk_in(form: dict[str, str]) -> tuple[Contact, bool, bool]:
    """A walk-in from the form: a name, a phone or an email, and the consent they gave."""
    given, family = form.get("given_name", "").strip(), form.get("family_name", "").strip()
    phone, email = form.get("phone", "").strip(), form.get("email", "").strip()
    if not given:
        raise Refusal("given_name", "a first name is needed")
    if not phone and not email:
        raise Refusal("phone", "a phone or an email is needed")
    sms, mail = form.get("consent_sms") == "yes", form.get("consent_email") == "yes"
    if sms and not phone:
        raise Refusal("consent_sms", "texts need a phone number")
    if mail and not email:
        raise Refusal("consent_email", "emails need an email address")
    return Contact(given, family or None, phone or None, email or None), sms, mail


def checkin_event(event_id: str, action_id: str, at: datetime, contact: Contact, sms: bool = False, email: bool = False,
                  withdrawn: bool = False) -> dict:
    """The partner event (``contracts.events.CheckinEvent``'s wire form). Consent is sent only
    when given at the door (a check-in of someone known leaves their consent as it was).
    ``withdrawn``: the check-in taken back (a wrong tap), naming the person by phone, else email."""
    if withdrawn:  # whom only: a phone, else an email (both would link two people)
        person = {"phone": contact.phone} if contact.phone else {"email": contact.email}
    else:
        person = {k: v for k, v in (("given_name", contact.given_name), ("family_name", contact.family_name),
                                    ("phone", contact.phone), ("email", contact.email)) if v}
    event: dict = {"type": "checkin", "event_id": event_id, "occurred_at": at.isoformat(), "action_id": action_id, "person": person}
    if withdrawn:
        event["withdrawn"] = True
    consent = {k: {"granted": True, "method": "door check-in"} for k, given in (("sms", sms), ("email", email)) if given}
    if consent:
        event["consent"] = consent
    return event
