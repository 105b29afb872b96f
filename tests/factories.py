"""Event builders shared by the tests: the wire shapes partners post."""

from __future__ import annotations

T0 = "2026-11-22T15:00:00Z"


def signup(event_id: str, phone: str | None = None, email: str | None = None, at: str = T0, **person) -> dict:
    p = {k: v for k, v in (("phone", phone), ("email", email)) if v}
    return {"type": "signup", "event_id": event_id, "occurred_at": at, "person": {**p, **person},
            "consent": {"sms": phone is not None, "email": email is not None}}


def pledge(event_id: str, action: str, count: int, at: str = T0) -> dict:
    return {"type": "pledge", "event_id": event_id, "occurred_at": at, "action_id": action, "count": count}


def rsvp(event_id: str, action: str, status: str = "yes", phone: str | None = None, email: str | None = None, at: str = T0) -> dict:
    person = {k: v for k, v in (("phone", phone), ("email", email)) if v}
    return {"type": "rsvp", "event_id": event_id, "occurred_at": at, "action_id": action, "status": status, "person": person}


def checkin(event_id: str, action: str, phone: str | None = None, email: str | None = None, at: str = T0) -> dict:
    person = {k: v for k, v in (("phone", phone), ("email", email)) if v}
    return {"type": "checkin", "event_id": event_id, "occurred_at": at, "action_id": action, "person": person}


def action(action_id: str, pledges: dict[str, int] | None = None, at: str = T0) -> dict:
    return {"type": "action", "event_id": f"a-{action_id}", "occurred_at": at, "action_id": action_id,
            "title": "Rally for fair funding", "kind": "rally", "starts_at": "2026-12-01T18:00:00-08:00",
            "time_zone": "America/Los_Angeles", "target": {"postal_codes": ["94607"]},
            "pledges": [{"partner": p, "count": c} for p, c in (pledges or {}).items()]}


def phone(i: int) -> str:
    """Distinct valid US numbers (area code 510, exchange 2xx-9xx)."""
    return f"+1510{200 + i // 10000:03d}{i % 10000:04d}"
