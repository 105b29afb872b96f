"""From a verified body to Kafka records, reporting what was wrong by index and field.

The steps, each a plain function so a new check slots in between two of them:

1. ``parse_events``: the body as strict JSON (``body.load_json``), one event or a non-empty
   array of at most ``max_batch``; anything else is ``BadBody`` (400).
2. ``validate_events``: every event on its own. Duplicate keys, numbers too long to read and
   strings that are not valid Unicode are refused by path; the contract validates; then
   ``coerced`` refuses what pydantic's lax mode converted from another JSON type (``"5"`` or
   ``true`` as a count, a number as a date); then ``Authority`` (what this partner may claim:
   ``authority_errors``), which also warns about events for actions nobody has posted. Returns
   the accepted events with their index, the rejections, the warnings, and how many repeated
   an earlier event id of the same request.
3. ``sealed_records``: the accepted events as Kafka records, each person's name, phone, email
   and postal code sealed with their data key (``streams.crypto``; a new person's key is
   written and acknowledged first). Only once every event of the batch is validated is
   anything written, so a retry of the same batch writes the same events (sealed anew).

``router`` is ``POST /v1/events``: the partner and the signature headers are checked before
a byte of the body is read, the body within the size limit, then the steps above.
"""

from __future__ import annotations

import re
import time as clock
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable, Collection, Iterator, Mapping

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from contracts.events import ActionEvent, CheckinEvent, Envelope, OptOutEvent, PartnerEvent, SignupEvent, grace_start, partner_event, past_its_grace
from contracts.facts import Attendance, withdrawal_refused
from contracts.people import PersonRef
from streams import metrics
from streams.clock import from_setting
from streams.coalition import Coalition
from streams.crypto import DataKey
from streams.data_keys import DataKeys
from streams.keys import event_person_key, person_key, routing_key
from streams.sealing import seal_event
from streams.settings import Settings

from ..csv_files import us_regions, zip_problem
from ..signing import SignatureError, check_timestamp, verify
from .body import BadBody, load_json, problems, read_limited
from .errors import FieldError, documented, refused
from .openapi import PARTNER_SECURITY
from .publisher import Publisher, Record

__all__ = ["Authority", "BadBody", "Checked", "FieldError", "IngestRefusal", "IngestResult", "Rejection", "Warning_", "authority_errors",
           "envelopes", "parse_events", "person_keys", "records", "router", "sealed_records", "validate_events"]


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


class IngestRefusal(IngestResult):
    """The 422 when no event was valid: the ingest result, and ``detail`` and ``errors`` as every
    refusal has (``errors``: every rejection's, the field prefixed with the event's index)."""

    detail: str = "no event was valid: see rejected"
    errors: list[FieldError] = []

    @classmethod
    def of(cls, result: IngestResult) -> IngestRefusal:
        errors = [e.model_copy(update={"field": f"{r.index}.{e.field}"}) for r in result.rejected for e in r.errors]
        return cls(**result.model_dump(), errors=errors)


#: The README's batch, as the document's examples (a test posts them: they must be accepted).
EXAMPLES = {
    "batch": {"summary": "A sign-up, a pledge, an RSVP and a check-in", "value": [
        {"type": "signup", "event_id": "u-001", "occurred_at": "2026-11-22T15:00:00Z",
         "person": {"given_name": "Ana", "family_name": "Diaz", "phone": "+15105550123", "email": "ana@example.org", "postal_code": "94607", "language": "es"},
         "consent": {"sms": True, "email": True}},
        {"type": "pledge", "event_id": "u-002", "occurred_at": "2026-11-22T15:00:00Z", "action_id": "rally-1201", "count": 40},
        {"type": "rsvp", "event_id": "u-003", "occurred_at": "2026-11-22T15:01:00Z", "action_id": "rally-1201", "status": "yes", "person": {"phone": "+15105550123"}},
        {"type": "checkin", "event_id": "u-004", "occurred_at": "2026-12-01T18:05:00Z", "action_id": "rally-1201", "person": {"phone": "+15105550123"}},
    ]},
    "action": {"summary": "One action, with a pledge and an SMS template", "value": {
        "type": "action", "event_id": "a-rally-1201", "occurred_at": "2026-11-20T12:00:00Z", "action_id": "rally-1201",
        "title": "Rally for fair funding", "kind": "rally", "starts_at": "2026-12-01T18:00:00-08:00", "time_zone": "America/Los_Angeles",
        "location": {"venue": "City Hall", "locality": "Oakland"}, "target": {"postal_codes": ["94607"]}, "pledges": [{"partner": "union-a", "count": 40}],
        "templates": {"sms": {"en": "{given_name}, join us at {place} on {local_time}: {rsvp_link}"}}}},
    "opt_out": {"summary": "An opt-out the partner relays: no more texts or emails, coalition-wide", "value": {
        "type": "opt_out", "event_id": "u-005", "occurred_at": "2026-11-23T09:30:00Z", "person": {"phone": "+15105550123"}, "channels": ["sms", "email"]}},
}


@dataclass
class Checked:
    """What ``validate_events`` made of a batch."""

    accepted: list[tuple[int, PartnerEvent]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    duplicates: int = 0

    def result(self) -> IngestResult:
        return IngestResult(accepted=len(self.accepted), duplicates=self.duplicates, rejected=sorted(self.rejected, key=lambda r: r.index),
                            warnings=self.warnings)


#: Actions accepted here that the web app remembers until it has read their facts.
MAX_POSTED = 10_000
#: How far in the future an event's ``occurred_at`` may be (clocks differ a little, no more).
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass(frozen=True)
class Authority:
    """Who is posting, for what a valid event may still not claim. ``owner_of(action_id)``: the
    partner that owns a posted action, ``None`` if none is known (as far as this web app has
    read; the worker enforces it too)."""

    partner: str
    role: str = "member"
    received_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    owner_of: Callable[[str], str | None] = lambda action_id: None
    #: The partner ids of the coalition file (disabled ones too), ``None``: not checked.
    partners: frozenset[str] | None = None
    #: The person's attendance fact for a check-in's action, as far as this web app has read.
    attendance_of: Callable[[CheckinEvent], Attendance | None] = lambda event: None
    #: Whether the posting partner has posted a check-in's person itself: a warning tells a partner
    #: nothing of people it does not know (whether they came, or who checked them in).
    knows: Callable[[CheckinEvent], bool] = lambda event: False
    #: ``TURNOUT_RAPID_RESPONSE_GRACE_MINUTES``, to warn of an alert sent to nobody (``None``: not checked).
    grace: timedelta | None = None
    #: When a posted action was first posted, as far as this web app has read (``None``: not known).
    first_posted_of: Callable[[str], datetime | None] = lambda action_id: None
    #: Now by the workers' clock (``TURNOUT_CLOCK``: a rehearsal's file clock), which an alert's grace counts by when it is behind.
    workers_now: datetime | None = None

    def check(self, index: int, event: PartnerEvent) -> tuple[list[FieldError], Warning_ | None]:
        action_id = getattr(event, "action_id", None)
        owner = self.owner_of(action_id) if action_id is not None else None
        errors = authority_errors(event, self.partner, self.role, self.received_at, owner, self.partners)
        if errors:
            return errors, None
        if (isinstance(event, CheckinEvent) and event.withdrawn and self.knows(event)
                and withdrawal_refused(self.attendance_of(event), event, self.partner, self.role)):
            # Kept all the same: the workers decide, whatever order the events reach them in. Said
            # without naming the partner (the dead letter does, for organizers).
            return [], Warning_(index=index, event_id=event.event_id, message=f"the check-in that counts for {event.action_id!r} is another "
                                "partner's: only it or the backbone may withdraw it; this withdrawal takes nothing back")
        if isinstance(event, ActionEvent) and event.rapid_response and self.grace is not None:
            # By when it was first posted (an edit: then), by the workers' clock when it is behind.
            posted = grace_start(self.first_posted_of(action_id) or self.received_at, self.workers_now)
            if (stale := stale_alert(event.starts_at, posted, self.grace)) is not None:
                return [], Warning_(index=index, event_id=event.event_id, message=f"starts_at is {stale}; the action is kept")
        if action_id is None or owner is not None or isinstance(event, ActionEvent):
            return [], None
        return [], Warning_(index=index, event_id=event.event_id, message=f"no partner has posted action {action_id!r} yet: "
                            "this is kept and counted once the action is posted (check the id)")


def stale_alert(starts_at: datetime, posted: datetime, grace: timedelta) -> str | None:
    """Why nobody is asked for a rapid-response alert first posted at ``posted``, if it is
    ``past_its_grace``."""
    if not past_its_grace(starts_at, posted, grace):
        return None
    minutes = round(grace / timedelta(minutes=1))
    hours, plural = minutes // 60, lambda n, unit: f"{n} {unit}" + ("" if n == 1 else "s")
    span = plural(hours, "hour") if minutes and minutes % 60 == 0 else plural(minutes, "minute")
    return (f"more than {span} past: nobody is texted or emailed for this alert (one is sent until its start, or for {span} "
            "after it is first posted when it started less than that before)")


def authority_errors(event: Any, partner: str, role: str, received_at: datetime, owner: str | None,
                     partners: frozenset[str] | None = None) -> list[FieldError]:
    """What a valid event may still not claim: a time in the future, another partner's action
    (``owner``: who owns it), for a member texting during quiet hours or pledging for another
    partner, or an inline pledge for a partner the coalition does not have (``partners``: its
    ids; ``None``: not checked), which would otherwise be a partner of its own in every tally."""
    errors = []
    if isinstance(event, ActionEvent) and owner is not None and owner != partner and role != "backbone":
        errors.append(FieldError(field="action_id", message=f"action {event.action_id!r} belongs to {owner!r}: only it or the backbone may change it", type="not_owner"))
    if event.occurred_at > received_at + FUTURE_TOLERANCE:
        errors.append(FieldError(field="occurred_at", message="is more than 5 minutes in the future", type="future_time"))
    consent = getattr(event, "consent", None)
    for channel in ("sms", "email") if consent is not None else ():
        if (given := getattr(consent, channel).given_at) is not None and given > received_at + FUTURE_TOLERANCE:
            errors.append(FieldError(field=f"consent.{channel}.given_at", message="is more than 5 minutes in the future", type="future_time"))
    if getattr(event, "override_quiet_hours", False) and role != "backbone":
        errors.append(FieldError(field="override_quiet_hours", message="only the backbone partner may override quiet hours", type="not_allowed"))
    if partners is not None and isinstance(event, ActionEvent):
        errors += unknown_partners([p.partner for p in event.pledges], partners)
    if isinstance(event, ActionEvent) and role != "backbone":
        errors += [FieldError(field=f"pledges.{i}.partner", message=f"only the backbone lists pledges for other partners: {p.partner!r} "
                              "posts its own pledge", type="not_allowed")
                   for i, p in enumerate(event.pledges) if p.partner != partner and (partners is None or p.partner in partners)]
    return errors


class JustPosted:
    """The owners of actions, as ``owner_of`` (the actions fact topic, which the web app reads a
    moment after it writes) knows them, and until then as this app accepted them (their first
    poster): a pledge right behind its action is not "not posted yet", and another partner's
    post of the same id is refused here too, not only by the worker. An id is claimed as soon
    as its event is validated, before the write is awaited, so that of two requests racing to
    post it the second is refused; a claim whose write failed is let go (``release``)."""

    def __init__(self, owner_of: Callable[[str], str | None]) -> None:
        self.owner_of = owner_of
        self.posted: dict[str, str] = {}

    def owner(self, action_id: str) -> str | None:
        return self.owner_of(action_id) or self.posted.get(action_id)

    def claim(self, events: list[tuple[int, PartnerEvent]], partner: str) -> list[str]:
        """Claim the new actions among ``events`` for ``partner``; the ids claimed."""
        claimed = []
        for _, event in events:
            if isinstance(event, ActionEvent) and self.owner(event.action_id) is None:
                self.posted[event.action_id] = partner
                claimed.append(event.action_id)
        if len(self.posted) > MAX_POSTED:  # those the fact topic has brought go; then the oldest
            for action_id in [a for a in self.posted if self.owner_of(a) is not None]:
                del self.posted[action_id]
            while len(self.posted) > MAX_POSTED:
                del self.posted[next(iter(self.posted))]
        return claimed

    def release(self, action_ids: list[str]) -> None:
        for action_id in action_ids:
            self.posted.pop(action_id, None)


#: The headers that say who signed a request.
AUTH_HEADERS = ("X-Turnout-Partner", "X-Turnout-Timestamp", "X-Turnout-Signature")


def router(s: Settings, publisher: Publisher, coalition: Callable[[], Coalition], person_secret: bytes, data_keys: DataKeys,
           owner_of: Callable[[str], str | None] = lambda action_id: None,
           attendance_of: Callable[[str, str], Attendance | None] = lambda action_id, person_key: None,
           knows: Callable[[str, str], bool] = lambda partner, person_key: False,
           first_posted_of: Callable[[str], datetime | None] = lambda action_id: None) -> APIRouter:
    """``owner_of(action_id)``: who owns a posted action, ``first_posted_of(action_id)`` when it
    was first posted; ``attendance_of(action_id, person key)``:
    the person's attendance fact (both as the web app's tallies have read them); ``knows(partner,
    person key)``: whether the partner has posted the person itself (the door's directory)."""
    r = APIRouter(tags=["partners"])
    workers_clock = from_setting(s.clock)

    def checkin_attendance(event: CheckinEvent) -> Attendance | None:
        key = event_person_key(person_secret, event)
        return attendance_of(event.action_id, key) if key is not None else None

    owners = JustPosted(owner_of)

    @r.post(
        "/v1/events", status_code=202, response_model=IngestResult,
        summary=f"Post one partner event or an array of up to {s.max_batch}, signed by the partner.",
        responses={422: {"description": "No event was valid; each is reported by index with field paths", "model": IngestRefusal},
                   **documented(400, 401, 413, 503, s401="Unknown or disabled partner, or bad, missing or stale signature; nothing written")},
        openapi_extra={"security": PARTNER_SECURITY, "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
            {"$ref": "#/components/schemas/PartnerEvent"},
            {"type": "array", "items": {"$ref": "#/components/schemas/PartnerEvent"}, "minItems": 1, "maxItems": s.max_batch},
        ]}, "examples": EXAMPLES}}}},
    )
    async def post_events(request: Request) -> JSONResponse:
        for header in AUTH_HEADERS:  # which copy counts would be a guess (a proxy may take the last)
            if len(request.headers.getlist(header)) > 1:
                raise refused(400, f"{header} is given more than once: give it once", "bad_headers")
        if (encoding := request.headers.get("content-encoding", "").strip().lower()) not in ("", "identity"):
            raise refused(400, f"Content-Encoding {encoding[:40]!r} is not taken: send the JSON body uncompressed", "bad_body")
        named = request.headers.get("x-turnout-partner")
        if not named:
            raise refused(401, "no X-Turnout-Partner header: say which partner signs the request", "unknown_partner")
        partner = coalition().get(named)
        if partner is None:
            raise refused(401, "unknown or disabled partner (X-Turnout-Partner)", "unknown_partner")
        timestamp, signature = request.headers.get("x-turnout-timestamp"), request.headers.get("x-turnout-signature")
        try:
            check_timestamp(timestamp, signature, clock.time(), s.signature_tolerance)  # before reading the body
            body = await read_limited(request, s.max_body_bytes)
            verify(partner.secret.get_secret_value(), timestamp, signature, body, clock.time(), s.signature_tolerance)
        except SignatureError as exc:
            raise refused(401, f"signature rejected: {exc.reason}", "signature") from None
        try:
            items = parse_events(body, s.max_batch)
        except BadBody as exc:
            raise refused(400, str(exc), "bad_body") from None
        def known(event: CheckinEvent) -> bool:
            return (key := event_person_key(person_secret, event)) is not None and knows(partner.id, key)

        authority = Authority(partner.id, partner.role, datetime.now(timezone.utc), owners.owner, frozenset(coalition().partners),
                              checkin_attendance, known, timedelta(minutes=s.rapid_response_grace_minutes), first_posted_of, workers_clock())
        checked = validate_events(items, s.default_region, authority)
        claimed = owners.claim(checked.accepted, partner.id)
        try:
            out = await sealed_records(checked.accepted, authority, person_secret, data_keys)
            if out:
                await publisher.publish(out)
        except BaseException:
            owners.release(claimed)
            raise
        if out:
            metrics.EVENTS_ACCEPTED.labels(partner.id).inc(len(out))
        metrics.EVENTS_REJECTED.labels("invalid_event").inc(len(checked.rejected))
        metrics.EVENTS_REJECTED.labels("duplicate").inc(checked.duplicates)
        if out or checked.duplicates:
            return JSONResponse(checked.result().model_dump(), status_code=202)
        return JSONResponse(IngestRefusal.of(checked.result()).model_dump(), status_code=422)

    return r


def parse_events(body: bytes, max_batch: int) -> list[Any]:
    """The raw items of the body: one object, or an array of 1 to ``max_batch``."""
    data = load_json(body)
    if isinstance(data, dict) and "type" not in data and isinstance(data.get("events"), list):
        raise BadBody('send the events themselves: one event object, or a JSON array of events, not {"events": [...]}')
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise BadBody("body must be a JSON object (one event) or an array of events")
    if not data:
        raise BadBody("the array of events is empty")
    if len(data) > max_batch:
        raise BadBody(f"at most {max_batch} events per request, got {len(data)}")
    return data


def validate_events(items: list[Any], region: str, authority: Authority) -> Checked:
    """Validate each item on its own; an event id seen earlier in the request is a duplicate,
    or refused when the event says something else (which one did the partner mean?)."""
    out = Checked()
    seen: dict[str, Any] = {}
    for index, item in enumerate(items):
        errors = [FieldError(field=f, message=m, type="invalid_json") for f, m in problems(item)]
        if not errors:
            try:
                event = partner_event.validate_python(item, context={"default_region": region})
            except ValidationError as exc:
                errors = field_errors(exc, item.get("type") if isinstance(item, dict) else None)
            else:
                errors = [FieldError(field=f, message=m, type="json_type") for f, m in coerced(event, item)]
        if not errors:
            errors, warning = authority.check(index, event)
            out.warnings += [warning] if warning and not errors else []
        if not errors and region == "US":
            out.warnings += [Warning_(index=index, event_id=event.event_id, message=m) for m in area_warnings(event)]
        if not errors and event.event_id in seen and seen[event.event_id] != event:
            errors = [FieldError(field="event_id", message=f"{event.event_id!r} is used earlier in this request for another event: "
                                 "give each event its own id", type="duplicate_id")]
        if errors:
            out.rejected.append(Rejection(index=index, event_id=_event_id(item), errors=errors))
        elif event.event_id in seen:
            out.duplicates += 1
        else:
            seen[event.event_id] = event
            out.accepted.append((index, event))
    # An action the request itself posts is no unknown action to the events beside it.
    posted = {event.action_id for _, event in out.accepted if isinstance(event, ActionEvent)}
    about = {index: getattr(event, "action_id", None) for index, event in out.accepted if not isinstance(event, ActionEvent)}
    out.warnings = [w for w in out.warnings if about.get(w.index) not in posted]
    return out


def unknown_partners(pledged: list[object], partners: Collection[str]) -> list[FieldError]:
    """An action's pledges (their partners, in order) for partners the coalition file does not list."""
    return [FieldError(field=f"pledges.{i}.partner", message=f"no partner {p!r} in the coalition", type="unknown_partner")
            for i, p in enumerate(pledged) if p not in partners]


def area_warnings(event: PartnerEvent) -> list[str]:
    """What of an event's postal codes and regions no US ZIP or state matches: kept as given (a
    code abroad is fine), but said, as the CSV import and the console say it."""
    out = []
    person = getattr(event, "person", None)
    if (code := getattr(person, "postal_code", None)) and (problem := zip_problem(code)):
        out.append(f"person.postal_code {code!r} {problem}; kept as given, but no target of US ZIPs or states includes it")
    if isinstance(event, ActionEvent):
        out += [f"target.postal_codes {code!r} {problem}; kept as given, but nobody with a US ZIP is in it"
                for code in event.target.postal_codes if (problem := zip_problem(code))]
        out += [f"target.regions {region!r} is not a US state code (such as CA); kept as given, but nobody is in it"
                for region in event.target.regions if region.strip().upper() not in us_regions()]
    return out


def one_identifier_each(events: list[tuple[int, PartnerEvent]]) -> list[tuple[int, PartnerEvent]]:
    """``events`` with an opt-out naming a phone and an email as two, one each: a sign-up naming
    both says they are one person, an opt-out only stops messages (to whoever has either) and
    links nobody (two people's phone and email in one opt-out would otherwise become one person)."""
    out: list[tuple[int, PartnerEvent]] = []
    for index, event in events:
        if isinstance(event, OptOutEvent) and event.person.phone and event.person.email:
            out += [(index, event.model_copy(update={"person": PersonRef.model_construct(phone=event.person.phone)})),
                    (index, event.model_copy(update={"person": PersonRef.model_construct(email=event.person.email)}))]
        else:
            out.append((index, event))
    return out


def records(events: list[tuple[int, PartnerEvent]], authority: Authority, person_secret: bytes, keys: Mapping[str, DataKey]) -> list[Record]:
    """Kafka records (key, value) of accepted events, stamped with the authenticated partner,
    the person's fields sealed with their data key (``keys``: by person key, from ``person_keys``)."""
    out = []
    for _, event in one_identifier_each(events):
        person = event_person_key(person_secret, event)
        email_key = None
        if person is not None:
            if event.person.phone and event.person.email:  # identity resolution links the two by their keys
                email_key = person_key(person_secret, None, event.person.email)
            event = seal_event(event, keys[person])
        env = Envelope(partner=authority.partner, received_at=authority.received_at, role=authority.role, person_key=person,
                       email_key=email_key, event=event)
        out.append((routing_key(authority.partner, event, person).encode(), env.model_dump_json().encode()))
    return out


def person_keys(events: list[tuple[int, PartnerEvent]], person_secret: bytes) -> tuple[list[str], set[str]]:
    """The person keys of these events (whose data keys their records are sealed with), each
    hashed once, and of those the people the events introduce (a sign-up; an RSVP or check-in
    with a name, a postal code, a language or a consent): the worker makes or keeps a record of them."""
    keys, introducing = [], set()
    for _, event in one_identifier_each(events):
        if (pk := event_person_key(person_secret, event)) is not None:
            keys.append(pk)
            if isinstance(event, SignupEvent) or getattr(event, "introduces", False):
                introducing.add(pk)
    return keys, introducing


async def sealed_records(events: list[tuple[int, PartnerEvent]], authority: Authority, person_secret: bytes, data_keys: DataKeys) -> list[Record]:
    """``records``, after making sure every person has a durable data key (new people get one)."""
    keys = await data_keys.keys_for(*person_keys(events, person_secret)) if events else {}
    return records(events, authority, person_secret, keys)


async def envelopes(
    items: list[Any], partner: str, received_at: datetime, person_secret: bytes, region: str, data_keys: DataKeys, role: str = "member",
    owner_of: Callable[[str], str | None] = lambda action_id: None,
) -> tuple[list[Record], IngestResult]:
    """``validate_events`` then ``sealed_records``, for callers with no step of their own in between."""
    authority = Authority(partner, role, received_at, owner_of)
    checked = validate_events(items, region, authority)
    return await sealed_records(checked.accepted, authority, person_secret, data_keys), checked.result()


#: A person's contact field → the channel of its consent.
CONTACT_CHANNELS = {"phone": "sms", "email": "email"}


def without_contact(event: dict[str, Any], refused: Collection[str]) -> dict[str, Any] | None:
    """``event`` without the person's phone or email the ingress ``refused`` (its fields:
    ``person.phone``, ``person.email``), when the other still names the person; else ``None``.
    The consent of its channel goes with it."""
    bad = {field.removeprefix("person.") for field in refused}
    person = event.get("person") or {}
    if not bad or not bad <= CONTACT_CHANNELS.keys() or not any(person.get(c) for c in CONTACT_CHANNELS if c not in bad):
        return None
    out = {**event, "person": {k: v for k, v in person.items() if k not in bad}}
    if "consent" in out:
        consent = {k: v for k, v in out.pop("consent").items() if k not in {CONTACT_CHANNELS[c] for c in bad}}
        out.update({"consent": consent} if consent else {})
    return out


async def salvaged(items: list[Any], rejected: list[Rejection], *args: Any) -> tuple[list[Record], set[int]]:
    """The ``rejected`` of ``items`` refused only for the person's phone or email, written
    without it (``without_contact``; ``args`` as ``envelopes``'s after the items): their records,
    and which items (indices) they were. A source that cannot be asked again (Action Network,
    Mobilize until the record changes) loses no RSVP to a mistyped number."""
    again = {r.index: fixed for r in rejected if (fixed := without_contact(items[r.index], [e.field for e in r.errors]))}
    if not again:
        return [], set()
    indices = list(again)
    records, result = await envelopes(list(again.values()), *args)
    return records, set(indices) - {indices[r.index] for r in result.rejected}


def field_errors(exc: ValidationError, event_type: object) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = list(err["loc"])
        if loc and loc[0] == event_type:  # the discriminated union's tag, not a field
            loc = loc[1:]
        name = ".".join(str(x) for x in loc) or ("type" if "tag" in err["type"] else "(event)")
        error = FieldError.of(name, err)
        # A rule across fields says which first: of the event, or within its own field (templates.sms.en).
        if (named := _NAMED.match(error.message)) and (name == "(event)" or named[1].startswith(f"{name}.")):
            error = error.model_copy(update={"field": named[1], "message": named[2]})
        out.append(error)
    return out


#: A whole-event rule's words that start with the field they are about: "pledges: each partner
#: may appear once", "consent.email is granted but person.email is missing".
_NAMED = re.compile(r"^([a-z_]+(?:\.[a-z0-9_]+)*)(?:: | (?=is ))(.+)$", re.S)


def coerced(value: Any, raw: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str, str]]:
    """(field path, message) wherever the validated ``value`` holds a type the JSON ``raw`` did
    not send: pydantic's lax mode turns ``"5"`` and ``true`` into 5, 1700000000 into a date.
    (Strict mode cannot be used instead: it refuses what the contract's own before-validators
    return, such as the ``{"sms": true}`` consent shorthand.) A model made from a non-object
    was made by such a validator, and is not looked into."""
    if isinstance(value, BaseModel):
        if isinstance(raw, dict):
            for name, spec in type(value).model_fields.items():
                key = spec.alias or name
                if key in raw:
                    yield from coerced(getattr(value, name), raw[key], path + (key,))
        return
    if isinstance(value, (list, tuple)) and isinstance(raw, list):
        for index, (item, sent) in enumerate(zip(value, raw)):
            yield from coerced(item, sent, path + (index,))
    elif isinstance(value, dict) and isinstance(raw, dict):
        for key, item in value.items():
            if key in raw:
                yield from coerced(item, raw[key], path + (key,))
    elif value is not None and (not isinstance(raw, _JSON_TYPES.get(type(value), object)) or (isinstance(raw, bool) and not isinstance(value, bool))):
        yield ".".join(map(str, path)) or "(event)", f"must be a JSON {_JSON_NAMES.get(type(value), 'value of its documented type')}, not {_json_name(raw)}"


_JSON_TYPES: dict[type, type | tuple[type, ...]] = {bool: bool, int: int, float: (int, float), str: str, datetime: str, date: str, time: str}
_JSON_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", datetime: "date-time string", date: "date string", time: "time string"}


def _json_name(raw: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", type(None): "null"}.get(type(raw), "an object")


def _event_id(item: Any) -> str | None:
    """The item's event id to report back, if it is one the answer can carry (valid Unicode)."""
    event_id = item.get("event_id") if isinstance(item, dict) else None
    return event_id if isinstance(event_id, str) and not any(True for _ in problems(event_id)) else None
