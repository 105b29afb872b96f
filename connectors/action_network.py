"""Action Network webhook payloads → partner events. Pure: no I/O, no clock.

Action Network posts a JSON array; each item holds one resource under its type key
(``osdi:submission``, ``osdi:signature``, ``osdi:attendance``, ``action_network:action``…)
next to ``action_network:sponsor`` and an ``idempotency_key``. People follow OSDI:
``email_addresses[]``, ``phone_numbers[]``, ``postal_addresses[]``, each address with a
``status`` (``subscribed``, ``unsubscribed``, ``bouncing``…).

- Submissions (forms) and signatures (petitions) are sign-ups. A ``subscribed`` email grants
  email consent, a ``subscribed`` phone grants SMS consent; anything else grants none.
- An address the person stopped there (``unsubscribed``, a spam complaint) is also passed on as
  an ``opt_out`` of its channel: coalition-wide, as a STOP or an unsubscribe is, so no other
  partner's consent texts or emails it either. A bounce is not an opt-out.
- Attendances are RSVPs for the turnout action the partner mapped the Action Network event to
  (``turnout action-network map``); ``declined``/``tentative`` become no/maybe, else yes. They
  carry the person and consent like a submission does, so an RSVP through a partner's event
  page introduces someone nobody signed up yet.
- The event id is ``an-`` + the idempotency key, so a redelivery is the same event.
- Everything else (other types, unmapped events, items without a resource, fields of the wrong
  JSON type, duplicate keys, text that is not valid Unicode) is rejected with a reason; the
  caller keeps those as dead letters.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from contracts.people import LANGUAGE_TAG
from streams.coalition import action_network_event_id

from .web.body import problems

SIGNUPS = {"osdi:submission": "form submission", "osdi:signature": "petition signature"}
ATTENDANCE = "osdi:attendance"
ENVELOPE_KEYS = {"action_network:sponsor", "action_network:referrer_data", "idempotency_key"}
_STATUS = {"declined": "no", "tentative": "maybe"}
_EVENT_ID = re.compile(r"^[!-~]{1,120}$")


@dataclass(frozen=True)
class Rejected:
    index: int
    reason: str


def translate(items: list[Any], actions: dict[str, str]) -> tuple[list[tuple[int, dict[str, Any]]], list[Rejected]]:
    """The partner events in ``items`` (each with the index it came from: an item whose person
    stopped an address gives its opt-outs too) and what was rejected."""
    events, rejected = [], []
    for index, item in enumerate(items):
        try:
            events += [(index, e) for e in _events(item, actions)]
        except ValueError as exc:
            rejected.append(Rejected(index, str(exc)))
    return events, rejected


def _events(item: Any, actions: dict[str, str]) -> list[dict[str, Any]]:
    if not isinstance(item, dict):
        raise ValueError("not an object")
    garbled = "; ".join(f"{path}: {message}" for path, message in problems(item))
    if garbled:
        raise ValueError(garbled)
    kinds = [k for k in item if k not in ENVELOPE_KEYS]
    if len(kinds) != 1 or not isinstance(item[kinds[0]], dict):
        raise ValueError(f"expected one resource next to {sorted(ENVELOPE_KEYS)}, found keys {sorted(item)}")
    kind, resource = kinds[0], item[kinds[0]]
    if kind not in SIGNUPS and kind != ATTENDANCE:
        raise ValueError(f"{kind} is not something turnout takes from Action Network (it takes {', '.join([*SIGNUPS, ATTENDANCE])})")
    key = item.get("idempotency_key")
    if key is None or key == "":
        raise ValueError("idempotency_key is missing")
    if not isinstance(key, str):
        raise ValueError(f"idempotency_key must be a string, not {json.dumps(key)[:40]}")
    at = resource.get("created_date") or resource.get("modified_date")
    if at is None:
        raise ValueError("created_date is missing")
    if not isinstance(at, str):  # else the sign-up's consent dates would be blamed too
        raise ValueError(f"created_date must be a date and time (ISO 8601), not {json.dumps(at)[:40]}")
    person = resource.get("person")
    if not isinstance(person, dict):
        raise ValueError(f"{kind} has no person")
    common = {"event_id": event_id(key), "occurred_at": at}
    if kind in SIGNUPS:
        return [{**common, "type": "signup", "person": _person(person), "consent": _consent(person, SIGNUPS[kind], at)}, *_stops(person, key, at)]
    event = _link(resource, "osdi:event")
    if event is None:
        raise ValueError("the attendance has no osdi:event link: which event is it for?")
    an_event = action_network_event_id(event)
    if an_event is None:
        raise ValueError(f"{event[:80]!r} is not an Action Network event (not an https://actionnetwork.org/api/v2/events/<id> link)")
    action = actions.get(event) or actions.get(an_event)
    if action is None:
        raise ValueError(f"no turnout action is mapped to Action Network event {_quoted(event)} (turnout action-network map)")
    status = resource.get("status", "")
    if not isinstance(status, str):
        raise ValueError("osdi:attendance status must be a string")
    status = _STATUS.get(status.lower(), "yes")
    return [{**common, "type": "rsvp", "action_id": action, "status": status, "person": _person(person),
             "consent": _consent(person, "event RSVP", at)}, *_stops(person, key, at)]


def _quoted(text: str, most: int = 200) -> str:
    """``text`` quoted for a reason, cut short: a reason is answered, dead-lettered and logged."""
    return repr(text[:most] + ("…" if len(text) > most else ""))


#: Address statuses that mean the person asked Action Network to stop that channel.
STOPPED = frozenset({"unsubscribed", "spam complaint", "previous spam complaint"})


def _stops(person: dict[str, Any], key: str, at: Any) -> list[dict[str, Any]]:
    """An ``opt_out`` of each address of ``person`` whose status says stopped (every entry,
    primary or not: turnout may know any of them), one per channel."""
    stops = []
    for name, channel, field in (("email_addresses", "email", "email"), ("phone_numbers", "sms", "phone")):
        entries = person.get(name) or []  # a list: read by _person already
        stopped = [e[_FIELDS[name]] for e in entries if isinstance(e, dict) and e.get(_FIELDS[name]) and str(e.get("status", "")).lower() in STOPPED]
        stops += [{"type": "opt_out", "event_id": event_id(f"{key}#stop-{channel}-{i}"), "occurred_at": at,
                   "person": {field: address}, "channels": [channel]} for i, address in enumerate(stopped)]
    return stops


def event_id(idempotency_key: str) -> str:
    if _EVENT_ID.match(idempotency_key):
        return f"an-{idempotency_key}"
    return "an-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]


#: The fields of ``email_addresses``, ``phone_numbers`` and ``postal_addresses`` entries turnout reads.
_FIELDS = {"email_addresses": "address", "phone_numbers": "number", "postal_addresses": "postal_code"}
#: Languages written as names instead of tags, for the languages turnout's messages speak.
_LANGUAGE_NAMES = {"english": "en", "spanish": "es", "español": "es", "espanol": "es"}


def _primary(entries: Any, name: str) -> dict[str, Any] | None:
    """The entry to read: the primary one among those that hold a value (an empty primary entry
    does not hide a usable one), else the first that does."""
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise ValueError(f"person.{name} must be an array of objects")
    entries = [e for e in entries if isinstance(e, dict) and e.get(_FIELDS[name])]
    return next((e for e in entries if e.get("primary")), entries[0] if entries else None)


def _language(spoken: Any) -> str | None:
    """The first language spoken as a tag; a name turnout knows is read as its tag, anything
    else is left out (the language is optional: the person is not refused for it)."""
    first = spoken[0] if isinstance(spoken, list) and spoken else None
    if not isinstance(first, str):
        return None
    return first.strip() if re.match(LANGUAGE_TAG, first.strip()) else _LANGUAGE_NAMES.get(first.strip().lower())


def _person(p: dict[str, Any]) -> dict[str, Any]:
    email, phone, postal = (_primary(p.get(name), name) for name in ("email_addresses", "phone_numbers", "postal_addresses"))
    out = {
        "given_name": p.get("given_name"),
        "family_name": p.get("family_name"),
        "email": email and email.get("address"),
        "phone": phone and phone.get("number"),
        "postal_code": postal and postal.get("postal_code"),
        "language": _language(p.get("languages_spoken")),
    }
    return {k: v for k, v in out.items() if v}


def _consent(p: dict[str, Any], how: str, at: Any) -> dict[str, Any]:
    email, phone = _primary(p.get("email_addresses"), "email_addresses"), _primary(p.get("phone_numbers"), "phone_numbers")

    def granted(address: dict[str, Any] | None, field: str) -> bool:
        return bool(address and address.get(field) and address.get("status") == "subscribed")

    method = f"Action Network {how}"
    return {
        "email": {"granted": granted(email, "address"), "given_at": at, "method": method},
        "sms": {"granted": granted(phone, "number"), "given_at": at, "method": method},
    }


def _link(resource: dict[str, Any], rel: str) -> str | None:
    links = resource.get("_links")
    link = links.get(rel) if isinstance(links, dict) else None
    href = link.get("href") if isinstance(link, dict) else None
    # Without a query or fragment: an event's link names it by its path (and a query could
    # carry a name or an address into a dead letter's reason).
    return href.partition("?")[0].partition("#")[0].rstrip("/") if isinstance(href, str) else None
