"""Mobilize attendances → partner events. Pure: no I/O, no clock.

An attendance (``GET /v1/organizations/{org}/attendances``) has an ``id``, ``status``
(``REGISTERED``, ``CONFIRMED``, ``CANCELLED``), ``attended`` (true/false/null),
``modified_date`` (unix seconds), the ``event`` and ``timeslot``, the ``person`` (OSDI-style
``email_addresses``, ``phone_numbers``, ``postal_addresses``) and the ``sponsor``: the
organization that promoted the sign-up.

- REGISTERED/CONFIRMED → RSVP yes, CANCELLED → RSVP no, dated ``modified_date`` (so the
  latest status wins, as for any RSVP). ``attended: true`` → a check-in at the timeslot's
  start, or at ``modified_date`` when that is earlier or there is no start (checked in at the
  door before the start: dated at the start, it was in the future when read, and refused).
  ``attended: false`` → the check-in withdrawn (marked not attended after all), dated
  ``modified_date``; each change of ``attended`` is an event of its own (the id carries
  ``modified_date``), so a person marked, unmarked and marked again counts. Both name the
  timeslot as the check-in's ``shift``: someone marked not attended on one shift keeps the
  check-in another shift gave them. So do RSVPs: someone who cancels one of their timeslots and
  keeps another is still a yes.
- The attendance carries the person: name, phone, email and ZIP (primary entries), and SMS
  consent when Mobilize says ``sms_opt_in_status: OPT_IN`` (the RSVP form's text opt-in;
  Mobilize has no email opt-in to pass on). So an RSVP through a partner's event page
  introduces someone no partner signed up yet (``agents.people.introduce``).
- The turnout action is the one the polled partner mapped the Mobilize event id to;
  attendances of unmapped events are skipped with a reason, as are malformed ones (a field
  of the wrong JSON type, a date no calendar holds), each on its own.
- **Credit**: to the coalition partner whose Mobilize organization is the ``sponsor`` (it
  recruited the person, even on another partner's event); when the sponsor is not a
  coalition partner (or absent), to the partner whose organization was polled.
- Event ids are derived from the attendance id and its state, so polling the same attendance
  again yields the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Collection, Mapping

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .web.body import problems

_RSVP = {"REGISTERED": "yes", "CONFIRMED": "yes", "CANCELLED": "no"}
#: The last second ``datetime`` can hold (9999-12-31T23:59:59Z): a later date is garbled, not read.
LATEST = 253_402_300_799
#: Seconds since 1970 as Mobilize writes dates; 0 is no date (not 1970-01-01): a ``modified_date``
#: of 0 leaves its attendance undated (refused), a ``created_date`` of 0 is read as none.
Unix = Annotated[int, Field(gt=0, le=LATEST)]


class _Wire(BaseModel):
    """What turnout reads of Mobilize's JSON: the fields it uses, each of its JSON type (strict:
    ``"7001"`` is not an id); the many it does not use are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class _Ref(_Wire):  # an event or a sponsor
    id: int


class _Timeslot(_Wire):
    id: int | None = None
    start_date: Unix | None = None


class _Entry(_Wire):  # one of a person's email_addresses, phone_numbers or postal_addresses
    primary: bool | None = None
    address: str | None = None
    number: str | None = None
    postal_code: str | None = None


class _Person(_Wire):
    given_name: str | None = None
    family_name: str | None = None
    email_addresses: list[_Entry] | None = None
    phone_numbers: list[_Entry] | None = None
    postal_addresses: list[_Entry] | None = None
    sms_opt_in_status: str | None = None


class _Attendance(_Wire):
    id: int
    status: str = ""
    attended: bool | None = None
    created_date: Annotated[Unix | None, BeforeValidator(lambda v: None if v == 0 and type(v) is int else v)] = None
    modified_date: Unix
    event: _Ref
    timeslot: _Timeslot | None = None
    person: _Person | None = None
    sponsor: _Ref | None = None


class Page(_Wire):
    """One page of attendances: each is checked on its own (``translate``), so that one
    malformed attendance does not hold up the others."""

    data: list[Any]
    next: str | None = None


@dataclass(frozen=True)
class Attendance:
    """What one attendance means here: who is credited and the events it becomes."""

    partner: str
    events: list[dict[str, Any]]


class Skipped(ValueError):
    """The attendance is not counted; the message says why."""


def translate(raw: Any, polled: str, events: dict[str, str], sponsors: dict[int, str]) -> Attendance:
    """``polled``: the partner whose organization was read; ``events``: its Mobilize event id →
    action id; ``sponsors``: Mobilize organization id → coalition partner."""
    att = _parsed(raw)
    action = events.get(str(att.event.id))
    if action is None:
        raise Skipped(f"attendance {att.id}: Mobilize event {att.event.id} is not mapped to a turnout action")
    status = _RSVP.get(att.status.upper())
    if status is None:
        raise Skipped(f"attendance {att.id}: unknown status {att.status[:40]!r}")
    modified = _iso(att.modified_date)
    who = att.person or _Person()
    person = _person(who)
    consent = _consent(who, _iso(att.created_date if att.created_date is not None else att.modified_date))
    base = f"mz-{att.id}"
    shift = {"shift": str(att.timeslot.id)} if att.timeslot and att.timeslot.id is not None else {}
    out = [{"type": "rsvp", "event_id": f"{base}-rsvp-{att.modified_date}", "occurred_at": modified,
            "action_id": action, "status": status, "person": person, **shift, **consent}]
    if att.attended:
        start = att.timeslot and att.timeslot.start_date
        out.append({"type": "checkin", "event_id": f"{base}-checkin-{att.modified_date}",
                    "occurred_at": _iso(min(start, att.modified_date)) if start else modified, "action_id": action, "person": person, **shift,
                    **consent})
    elif att.attended is False:  # marked not attended (after a check-in, or never checked in: then nothing to take back)
        out.append({"type": "checkin", "event_id": f"{base}-checkin-{att.modified_date}", "occurred_at": modified, "action_id": action,
                    "person": {"phone": person["phone"]} if person.get("phone") else {"email": person.get("email")}, "withdrawn": True, **shift})
    return Attendance(partner=sponsors.get(att.sponsor.id, polled) if att.sponsor else polled, events=out)


def _parsed(raw: Any) -> _Attendance:
    """``raw`` as an attendance, or ``Skipped`` naming each field that is not what Mobilize sends."""
    if not isinstance(raw, dict):
        raise Skipped("an attendance that is not a JSON object")
    name = f"attendance {raw['id']}" if type(raw.get("id")) is int else "an attendance"
    garbled = "; ".join(f"{path}: {message}" for path, message in problems(raw))  # numbers too long, duplicate keys
    if garbled:
        raise Skipped(f"{name}: {garbled}")
    try:
        return _Attendance.model_validate(raw)
    except ValidationError as exc:
        raise Skipped(f"{name}: {reasons(exc, 'attendance')}") from None


def reasons(exc: ValidationError, what: str) -> str:
    """Each field pydantic refused and why, without the values: they may be personal data."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or what}: {'should be an object' if e['type'] == 'model_type' else e['msg']}"
                     for e in exc.errors(include_url=False, include_input=False, include_context=False))


def _iso(unix: int) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).isoformat()


def _primary(entries: list[_Entry] | None, field: str) -> str | None:
    values = [getattr(e, field) for e in sorted(entries or [], key=lambda e: not e.primary)]
    return next((v for v in values if v), None)


def _person(p: _Person) -> dict[str, str]:
    out = {
        "given_name": p.given_name, "family_name": p.family_name,
        "phone": _primary(p.phone_numbers, "number"), "email": _primary(p.email_addresses, "address"),
        "postal_code": _primary(p.postal_addresses, "postal_code"),
    }
    return {k: v for k, v in out.items() if v and v.strip()}


def _consent(p: _Person, at: str) -> dict[str, Any]:
    """SMS consent when the person opted in to texts on Mobilize's form (and has a number)."""
    if (p.sms_opt_in_status or "").upper() != "OPT_IN" or not _primary(p.phone_numbers, "number"):
        return {}
    return {"consent": {"sms": {"granted": True, "given_at": at, "method": "Mobilize RSVP (SMS opt-in)"}}}


def marks(organization: int, events: Mapping[str, str]) -> set[str]:
    """What a cursor keeps of the mapping it was read under: each Mobilize event mapped, to which
    action, in which organization."""
    return {f"{organization}/{event}={action}" for event, action in events.items()}


def start_from(since: int, mapped: Collection[str] | None, organization: int, events: Mapping[str, str]) -> int:
    """The cursor a pass reads from: ``since``, or 0 (every attendance again) when one of the
    ``events`` (Mobilize event → action) mapped now was not mapped so, in this ``organization``,
    when the cursor was stored (``mapped``: its ``marks``; ``None``: not known). The cursor moved
    past that event's attendances, skipped then as unmapped or counted for another action (or
    never read: another organization's); read again, they are the same keyed facts."""
    if not since or mapped is None:
        return since
    now = marks(organization, events) if any("/" in m for m in mapped) or not mapped else set(events)  # else kept by event only, earlier
    return since if now <= set(mapped) else 0


#: How far behind the start of the pass that stored it a cursor stays (seconds): Mobilize does
#: not say its pages come in ``modified_date`` order, so an attendance changed while a pass read
#: on, its page read before, is read again by the next (the same keyed facts), with a clock of
#: Mobilize's a few minutes behind ours.
OVERLAP = 300


def next_cursor(newest: int, since: int, began: int) -> int:
    """The cursor a pass that began at ``began`` (unix seconds) stores: the ``newest``
    ``modified_date`` it read, but no later than ``OVERLAP`` before it began, and never back
    before ``since``, where it started."""
    return max(since, min(newest, began - OVERLAP))


def newest(attendances: list[Any], since: int, until: int) -> int:
    """The cursor after these attendances: the latest ``modified_date`` seen (or ``since``), of
    those read or skipped alike, so a malformed one is not read for ever. A date after ``until``
    (now, give or take) is garbled: taking it would pass over every attendance until then."""
    return max([since, *(d for a in attendances if (d := modified_of(a)) is not None and d <= until)])


def modified_of(raw: Any) -> int | None:
    """An attendance's ``modified_date`` as Mobilize sent it, if it is a date (a whole number
    above 0; read before ``translate``, which may skip the attendance as malformed)."""
    date = raw.get("modified_date") if isinstance(raw, dict) else None
    return date if type(date) is int and date > 0 else None
