"""Reading a request body within its size limit, turning a verified body into envelopes, and
reporting what was wrong, by index and field."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Callable

from fastapi import HTTPException, Request
from pydantic import BaseModel, Field, ValidationError

from contracts.events import ActionEvent, Envelope, partner_event
from streams import metrics
from streams.keys import event_person_key, routing_key


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class Rejection(BaseModel):
    index: int
    event_id: str | None = None
    errors: list[FieldError]


class Warning_(BaseModel):
    index: int
    event_id: str
    message: str


class IngestResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejection]
    warnings: list[Warning_] = Field(default=[], description="Accepted events worth a look: e.g. an RSVP for an action id nobody has posted yet.")


class BadBody(Exception):
    """The body is not a JSON event or array of events (400)."""


def parse_events(body: bytes, max_batch: int) -> tuple[list[Any], bool]:
    """The raw items of the body and whether it was a single object."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadBody(f"body is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        return [data], True
    if not isinstance(data, list):
        raise BadBody("body must be a JSON object (one event) or an array of events")
    if not data:
        raise BadBody("the array of events is empty")
    if len(data) > max_batch:
        raise BadBody(f"at most {max_batch} events per request, got {len(data)}")
    return data, False


def field_errors(exc: ValidationError, event_type: object) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = list(err["loc"])
        if loc and loc[0] == event_type:  # the discriminated union's tag, not a field
            loc = loc[1:]
        field = ".".join(str(x) for x in loc) or ("type" if "tag" in err["type"] else "(event)")
        out.append(FieldError(field=field, message=err["msg"], type=err["type"]))
    return out


#: How far in the future an event's ``occurred_at`` may be (clocks differ a little, no more).
FUTURE_TOLERANCE = timedelta(minutes=5)


def authority_errors(event: Any, partner: str, role: str, received_at: datetime, owner: str | None) -> list[FieldError]:
    """What a valid event may still not claim: a time in the future, another partner's action
    (``owner``: who owns it, as far as this web app has read; the worker enforces it too), or,
    for a member, texting during quiet hours."""
    errors = []
    if isinstance(event, ActionEvent) and owner is not None and owner != partner and role != "backbone":
        errors.append(FieldError(field="action_id", message=f"action {event.action_id!r} belongs to {owner!r}: only it or the backbone may change it", type="not_owner"))
    if event.occurred_at > received_at + FUTURE_TOLERANCE:
        errors.append(FieldError(field="occurred_at", message="is more than 5 minutes in the future", type="future_time"))
    if getattr(event, "override_quiet_hours", False) and role != "backbone":
        errors.append(FieldError(field="override_quiet_hours", message="only the backbone partner may override quiet hours", type="not_allowed"))
    return errors


def envelopes(
    items: list[Any], partner: str, received_at: datetime, person_secret: bytes, region: str, role: str = "member",
    owner_of: Callable[[str], str | None] = lambda action_id: None,
) -> tuple[list[tuple[bytes, bytes]], IngestResult]:
    """Validate each item; return Kafka records of the valid ones and the result to report.
    ``owner_of(action_id)``: the partner that owns a posted action, ``None`` if none is known."""
    records: list[tuple[bytes, bytes]] = []
    rejected: list[Rejection] = []
    warnings: list[Warning_] = []
    seen: set[str] = set()
    duplicates = 0
    for index, item in enumerate(items):
        event_type = item.get("type") if isinstance(item, dict) else None
        try:
            event = partner_event.validate_python(item, context={"default_region": region})
        except ValidationError as exc:
            event_id = item.get("event_id") if isinstance(item, dict) else None
            rejected.append(Rejection(index=index, event_id=event_id if isinstance(event_id, str) else None, errors=field_errors(exc, event_type)))
            continue
        action_id = getattr(event, "action_id", None)
        owner = owner_of(action_id) if action_id is not None else None
        if errors := authority_errors(event, partner, role, received_at, owner):
            rejected.append(Rejection(index=index, event_id=event.event_id, errors=errors))
            continue
        if action_id is not None and owner is None and not isinstance(event, ActionEvent):
            warnings.append(Warning_(index=index, event_id=event.event_id, message=f"no partner has posted action {action_id!r} yet: "
                                     "this is kept and counted once the action is posted (check the id)"))
        if event.event_id in seen:
            duplicates += 1
            continue
        seen.add(event.event_id)
        person = event_person_key(person_secret, event)
        env = Envelope(partner=partner, received_at=received_at, role=role, person_key=person, event=event)
        records.append((routing_key(partner, event, person).encode(), env.model_dump_json().encode()))
    return records, IngestResult(accepted=len(records), duplicates=duplicates, rejected=rejected, warnings=warnings)


def refused(status: int, detail: str, reason: str) -> HTTPException:
    metrics.EVENTS_REJECTED.labels(reason).inc()
    return HTTPException(status, detail)


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it exceeds ``limit`` (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise refused(413, f"body over {limit} bytes", "too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise refused(413, f"body over {limit} bytes", "too_large")
        chunks.append(chunk)
    return b"".join(chunks)
