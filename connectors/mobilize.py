"""Mobilize attendances → partner events. Pure: no I/O, no clock.

An attendance (``GET /v1/organizations/{org}/attendances``) has an ``id``, ``status``
(``REGISTERED``, ``CONFIRMED``, ``CANCELLED``), ``attended`` (true/false/null),
``modified_date`` (unix seconds), the ``event`` and ``timeslot``, the ``person`` (OSDI-style
``email_addresses``, ``phone_numbers``, ``postal_addresses``) and the ``sponsor``: the
organization that promoted the sign-up.

- REGISTERED/CONFIRMED → RSVP yes, CANCELLED → RSVP no, dated ``modified_date`` (so the
  latest status wins, as for any RSVP). ``attended: true`` → a check-in at the timeslot's
  start (else ``modified_date``).
- The attendance carries the person: name, phone, email and ZIP (primary entries), and SMS
  consent when Mobilize says ``sms_opt_in_status: OPT_IN`` (the RSVP form's text opt-in;
  Mobilize has no email opt-in to pass on). So an RSVP through a partner's event page
  introduces someone no partner signed up yet (``agents.people.introduce``).
- The turnout action is the one the polled partner mapped the Mobilize event id to;
  attendances of unmapped events are skipped with a reason.
- **Credit**: to the coalition partner whose Mobilize organization is the ``sponsor`` (it
  recruited the person, even on another partner's event); when the sponsor is not a
  coalition partner (or absent), to the partner whose organization was polled.
- Event ids are derived from the attendance id and its state, so polling the same attendance
  again yields the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

_RSVP = {"REGISTERED": "yes", "CONFIRMED": "yes", "CANCELLED": "no"}


@dataclass(frozen=True)
class Attendance:
    """What one attendance means here: who is credited and the events it becomes."""

    partner: str
    events: list[dict[str, Any]]


class Skipped(ValueError):
    """The attendance is not counted; the message says why."""


def translate(att: dict[str, Any], polled: str, events: dict[str, str], sponsors: dict[int, str]) -> Attendance:
    """``polled``: the partner whose organization was read; ``events``: its Mobilize event id →
    action id; ``sponsors``: Mobilize organization id → coalition partner."""
    action = events.get(str((att.get("event") or {}).get("id")))
    if action is None:
        raise Skipped(f"attendance {att.get('id')}: Mobilize event {(att.get('event') or {}).get('id')} is not mapped to a turnout action")
    status = _RSVP.get(str(att.get("status", "")).upper())
    if status is None:
        raise Skipped(f"attendance {att.get('id')}: unknown status {att.get('status')!r}")
    modified = _iso(att.get("modified_date"))
    raw = att.get("person") or {}
    person, consent = _person(raw), _consent(raw, _iso(att.get("created_date")) or modified)
    base = f"mz-{att.get('id')}"
    out = [{"type": "rsvp", "event_id": f"{base}-rsvp-{att.get('modified_date')}", "occurred_at": modified,
            "action_id": action, "status": status, "person": person, **consent}]
    if att.get("attended") is True:
        start = (att.get("timeslot") or {}).get("start_date")
        out.append({"type": "checkin", "event_id": f"{base}-checkin", "occurred_at": _iso(start) if start else modified,
                    "action_id": action, "person": person, **consent})
    sponsor = (att.get("sponsor") or {}).get("id")
    return Attendance(partner=sponsors.get(sponsor, polled) if isinstance(sponsor, int) else polled, events=out)


def _iso(unix: Any) -> str | None:
    return datetime.fromtimestamp(unix, timezone.utc).isoformat() if isinstance(unix, (int, float)) else None


def _primary(entries: Any, field: str) -> str | None:
    entries = [e for e in entries or [] if isinstance(e, dict) and e.get(field)]
    chosen = next((e for e in entries if e.get("primary")), entries[0] if entries else None)
    return chosen[field] if chosen else None


def _person(p: dict[str, Any]) -> dict[str, str]:
    out = {
        "given_name": p.get("given_name"), "family_name": p.get("family_name"),
        "phone": _primary(p.get("phone_numbers"), "number"), "email": _primary(p.get("email_addresses"), "address"),
        "postal_code": _primary(p.get("postal_addresses"), "postal_code"),
    }
    return {k: v for k, v in out.items() if isinstance(v, str) and v.strip()}


def _consent(p: dict[str, Any], at: str | None) -> dict[str, Any]:
    """SMS consent when the person opted in to texts on Mobilize's form (and has a number)."""
    if str(p.get("sms_opt_in_status", "")).upper() != "OPT_IN" or not _primary(p.get("phone_numbers"), "number"):
        return {}
    return {"consent": {"sms": {"granted": True, "given_at": at, "method": "Mobilize RSVP (SMS opt-in)"}}}


def newest(attendances: list[dict[str, Any]], since: int) -> int:
    """The cursor after these attendances: the latest ``modified_date`` seen (or ``since``)."""
    return max([since, *(a["modified_date"] for a in attendances if isinstance(a.get("modified_date"), int))])
