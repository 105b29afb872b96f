"""Partner events: what partners post to ``POST /v1/events``, and the envelope the ingress writes.

Every event carries a partner-supplied ``event_id`` (unique per partner: the idempotency key)
and ``occurred_at``. The ``type`` field selects the model. The partner is never part of the
body: the ingress stamps the authenticated partner on the envelope.
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    AfterValidator, ConfigDict, Field, SerializerFunctionWrapHandler, StringConstraints, TypeAdapter, ValidationInfo,
    field_validator, model_serializer, model_validator,
)

from .people import Channel, Consent, Frozen, Internal, Language, Lines, OneLine, Person, PersonRef, PostalCode, Rfc3339, Timestamp, Visible, in_utc
from .zones import known_zone

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
# Not trimmed (unlike names): the schema's pattern has no room for a space, and what it refuses, so does the API.
Slug = Annotated[str, StringConstraints(strip_whitespace=False, pattern=SLUG_PATTERN)]
EVENT_ID_PATTERN = r"^[!-~]+$"
EventId = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=128, pattern=EVENT_ID_PATTERN)]
Shift = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=64, pattern=EVENT_ID_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=2000), OneLine]
ActionKind = Literal["rally", "march", "town_hall", "call_in", "hearing", "canvass", "vigil", "meeting", "other"]
RsvpStatus = Literal["yes", "no", "maybe"]


def _time_zone(name: str) -> str:
    if not known_zone(name):
        raise ValueError(f"unknown IANA time zone {name[:64]!r}")
    return name


TimeZone = Annotated[str, AfterValidator(_time_zone)]


def _type_required(schema: dict[str, Any]) -> None:
    """``type`` has a default in Python (code builds an event without naming it), but a posted
    event must name it: it picks the model. The JSON Schema says so."""
    if "type" in schema.get("properties", {}):
        schema["required"] = ["type", *schema.get("required", [])]


class BaseEvent(Frozen):
    model_config = ConfigDict(json_schema_extra=_type_required)

    event_id: EventId = Field(description="Partner-supplied idempotency key, unique per partner.")
    occurred_at: Timestamp = Field(description="When it happened, with a UTC offset.")


NO_CONSENT = Consent()


class PersonEvent(BaseEvent):
    """An event about one person: who (a phone or an email, optionally name, postal code and
    language) and the consent given with it. Consent for a channel needs that channel."""

    person: Person
    consent: Consent = Consent()

    @model_validator(mode="after")
    def _consent_needs_channel(self) -> PersonEvent:
        if self.consent.sms.granted and self.person.phone is None:
            raise ValueError("consent.sms is granted but person.phone is missing")
        if self.consent.email.granted and self.person.email is None:
            raise ValueError("consent.email is granted but person.email is missing")
        return self

    @model_serializer(mode="wrap")
    def _without_default_consent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # No consent given is the default: an RSVP's envelope on Kafka need not spell it out.
        data = handler(self)
        if self.consent == NO_CONSENT:
            data.pop("consent", None)
        return data

    @property
    def introduces(self) -> bool:
        """Whether it says more about the person than how to reach them: a name, postal code,
        language or a consent (an RSVP or check-in that does introduces the person)."""
        p = self.person
        return any((p.given_name, p.family_name, p.postal_code, p.language, self.consent.sms.granted, self.consent.email.granted))


class SignupEvent(PersonEvent):
    type: Literal["signup"] = "signup"


class Location(Frozen):
    """Where an action happens (OSDI location names)."""

    venue: Text | None = None
    address_lines: list[Text] = []
    locality: Text | None = None
    region: Text | None = None
    postal_code: PostalCode | None = None


class TargetArea(Frozen):
    """Who an action is for: people in any of these postal codes or regions."""

    postal_codes: list[PostalCode] = []
    regions: list[Annotated[str, StringConstraints(min_length=1, max_length=100), OneLine]] = []


PLACEHOLDERS = frozenset({"given_name", "action_title", "local_time", "place", "rsvp_link", "sponsor"})


def template_problems(text: str) -> list[str]:
    """What is wrong with an ask template, one sentence each; empty when it is fine.

    Only the named placeholders; conversions, format specs, attribute and index access are
    refused (``str.format`` on partner text could reach into the objects it is given).
    """
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        return [f"malformed braces: {exc}"]
    return list(dict.fromkeys(p for p in (_field_problem(*f) for f in fields) if p))


def _field_problem(field: str, spec: str | None, conversion: str | None) -> str | None:
    if field == "" or field.isdigit():
        return f"positional placeholder {{{field}}} is not allowed: use a name"
    if any(c in field for c in ".["):
        return f"attribute or index access {{{field}}} is not allowed"
    if field not in PLACEHOLDERS:
        return f"unknown placeholder {{{field}}} (known: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))})"
    if conversion or spec:
        return f"conversions and format specs are not allowed in {{{field}}}"
    return None


def _template(text: str) -> str:
    problems = template_problems(text)
    if problems:
        raise ValueError("; ".join(problems))
    return text


TemplateText = Annotated[str, StringConstraints(min_length=1, max_length=2000), Lines, AfterValidator(_template)]


class EmailTemplate(Frozen):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=2000), OneLine, AfterValidator(_template)]
    body: Annotated[str, StringConstraints(min_length=1, max_length=20000), Lines, AfterValidator(_template)]


class AskTemplates(Frozen):
    """Ask texts per language (``en``, ``es``…)."""

    sms: dict[Language, TemplateText] = {}
    email: dict[Language, EmailTemplate] = {}

    @field_validator("sms", "email", mode="before")
    @classmethod
    def _each_language_once(cls, value: object) -> object:
        # Tags are trimmed and lower-cased: "en" and " EN " would be one key, one text lost unsaid.
        seen: dict[str, str] = {}
        for key in value if isinstance(value, dict) else ():
            tag = str(key).strip().lower()
            if tag in seen:
                raise ValueError(f"{seen[tag]!r} and {key!r} are one language ({tag}): give its text once")
            seen[tag] = key
        return value


class InlinePledge(Frozen):
    partner: Slug
    count: Annotated[int, Field(ge=0, le=1_000_000)]


def _plausible_start(value: datetime) -> datetime:
    # Local times are computed from it in every time zone: the calendar's edges overflow there.
    # Its year in UTC: the links it signs count minutes since 1970-01-01T00:00Z.
    try:
        year = value.astimezone(timezone.utc).year
    except OverflowError:  # beyond the calendar in UTC (9999-12-31T23:59-12:00)
        year = 0
    if not 1970 <= year <= 2999:
        raise ValueError("starts_at must be between the years 1970 and 2999 (UTC)")
    return value


#: The most characters Twilio takes in one message's body (beyond: error 21617, nothing sent).
TWILIO_MAX_BODY = 1600
#: The longest each placeholder of an SMS may be filled with, besides the action's own title and
#: place: a name, a partner's name, the RSVP link, the start as a text writes it.
_FILLED_MAX = {"given_name": 100, "sponsor": 120, "rsvp_link": 200, "local_time": 40}
#: Around the text: "<partner's name>: " before one that does not name its sponsor, and the
#: opt-out footer after it (on a line of its own).
_SPONSOR_PREFIX, _FOOTER_MAX = 122, 61


def longest_sms(template: str, title: str, place: str) -> int:
    """The most characters a text of ``template`` can have once filled in, sponsor and footer included."""
    parts = list(string.Formatter().parse(template))
    fills = {"action_title": len(title), "place": len(place), **_FILLED_MAX}
    named = any(field == "sponsor" for _, field, _, _ in parts)
    return sum(len(literal) + (fills[field] if field else 0) for literal, field, _, _ in parts) + (0 if named else _SPONSOR_PREFIX) + _FOOTER_MAX


class ActionEvent(BaseEvent):
    type: Literal["action"] = "action"
    action_id: Slug
    title: Annotated[str, StringConstraints(min_length=1, max_length=200), OneLine, Visible]
    kind: ActionKind
    starts_at: Annotated[Rfc3339, AfterValidator(_plausible_start)]  # its years in UTC said as such, not as in_utc says them
    time_zone: TimeZone = Field(description="IANA time zone of the action, e.g. America/Los_Angeles.")
    location: Location = Location()
    # Before the fields whose rules depend on them: each rule is a field's own validator, so it is
    # said with every other field's problems at once (a model validator runs only when all are fine).
    rapid_response: bool = Field(default=False, description="Send asks to everyone eligible in the target area now.")
    override_quiet_hours: bool = Field(default=False, description="Text even in recipients' quiet hours. See the README's legal caution.")
    target: TargetArea = Field(default=TargetArea(), validate_default=True)  # left out, it is checked as one written empty
    pledges: list[InlinePledge] = Field(default=[], description="Commitments agreed with partners; a partner's own later pledge replaces its entry.")
    templates: AskTemplates = Field(default=AskTemplates(), validate_default=True)

    def takes_answers(self, now: datetime, open_for: timedelta) -> bool:
        """Whether an RSVP answer to this action is still taken ``now``: until ``open_for``
        after its current start (the RSVP link and a YES texted back follow the same rule)."""
        return now < self.starts_at + open_for

    # Otherwise it is accepted and planned to nobody: the organizer learns nothing. (The rules
    # below skip ``normalized`` facts: an action accepted before a rule is still read.)
    @field_validator("target")
    @classmethod
    def _target_reaches_someone(cls, target: TargetArea, info: ValidationInfo) -> TargetArea:
        if info.data.get("rapid_response") and not (target.postal_codes or target.regions) and not (info.context or {}).get("normalized"):
            raise ValueError("a rapid_response action needs a target area, postal codes or regions (it would reach nobody)")
        return target

    @field_validator("pledges")
    @classmethod
    def _one_pledge_per_partner(cls, pledges: list[InlinePledge]) -> list[InlinePledge]:
        partners = [p.partner for p in pledges]
        if len(set(partners)) != len(partners):
            raise ValueError("each partner may appear once")
        return pledges

    @field_validator("templates")
    @classmethod
    def _templates_can_be_sent(cls, templates: AskTemplates, info: ValidationInfo) -> AskTemplates:
        if (info.context or {}).get("normalized"):
            return templates
        if info.data.get("rapid_response") and not (templates.sms or templates.email):
            raise ValueError("a rapid_response action needs an sms or email template (it would reach nobody)")
        location = info.data.get("location")
        if location is None:
            return templates
        texts = [*templates.sms.values(), *(t for e in templates.email.values() for t in (e.subject, e.body))]
        if not (location.venue or location.locality) and any(field == "place" for text in texts for _, field, _, _ in string.Formatter().parse(text)):
            raise ValueError("{place} is used but the action has no location (venue or locality): the messages would say \"at , …\"")
        place = ", ".join(x for x in (location.venue, location.locality) if x)
        for language, template in templates.sms.items() if "title" in info.data else ():
            if (n := longest_sms(template, info.data["title"], place)) > TWILIO_MAX_BODY:
                raise ValueError(f"templates.sms.{language}: filled in, a text could be {n:,} characters (the longest name, sponsor and "
                                 f"link, and the footer), more than the {TWILIO_MAX_BODY:,} Twilio takes in one message: shorten it")
        return templates


def grace_start(posted_at: datetime, workers_now: datetime | None) -> datetime:
    """When a rapid-response alert's grace counts from: its first posting (the web app's stamp),
    or the workers' time when their clock is behind it (a rehearsal's file clock)."""
    return min(posted_at, workers_now or posted_at)


def past_its_grace(starts_at: datetime, posted_at: datetime, grace: timedelta) -> bool:
    """Whether a rapid-response alert first posted at ``posted_at`` started more than ``grace``
    before it (an old action posted again, an example copied): it is over, and gets no grace
    (``agents.outreach.planning.send_until``); within it, an alert ("call now", a start typed a
    few minutes ago) is sent for ``grace`` after it was posted."""
    return starts_at < posted_at - grace


class PledgeEvent(BaseEvent):
    type: Literal["pledge"] = "pledge"
    action_id: Slug
    count: Annotated[int, Field(ge=0, le=1_000_000)]


class RsvpEvent(PersonEvent):
    """An RSVP. Its ``person`` may carry the sign-up fields and ``consent``: an RSVP taken by a
    partner's event page (Mobilize, Action Network) introduces someone nobody signed up yet."""

    type: Literal["rsvp"] = "rsvp"
    action_id: Slug
    status: RsvpStatus
    shift: Shift | None = Field(default=None, description="The shift (time slot) of the action this answers for, as the partner's tool names it "
                                                          "(Mobilize: the timeslot id). A partner's answer is yes while the person is down for any "
                                                          "shift; an answer naming no shift, given later, is its answer for the whole action.")


class CheckinEvent(PersonEvent):
    """A check-in; like an RSVP, it may introduce the person (a sign-in sheet with names). One
    withdrawn (a wrong tap at the door, a Mobilize attendance marked not attended) takes back
    the posting partner's own check-ins of the person received before it (a backbone's: everyone's);
    one naming a ``shift``, only the check-ins of that shift."""

    type: Literal["checkin"] = "checkin"
    action_id: Slug
    withdrawn: bool = Field(default=False, description="true: the person did not attend after all; takes back the posting partner's own "
                                                       "check-ins of them for the action received before this one (a backbone partner's: everyone's; "
                                                       "naming a `shift`: only the check-ins of that shift, the partner's own or, a backbone's, everyone's). "
                                                       "Names the person by a phone or an email, nothing else, and takes no consent.")
    shift: Shift | None = Field(default=None, description="The shift (time slot) of the action this is about, as the partner's tool names it "
                                                          "(Mobilize: the timeslot id). A person who came to any shift turned out, and is counted once.")

    model_config = ConfigDict(json_schema_extra=lambda schema: _withdrawal_schema(schema))

    @model_validator(mode="after")
    def _withdrawal_names_whom_only(self) -> CheckinEvent:
        # As the JSON Schema says (``_withdrawal_schema``): fields given, even null, count.
        if not self.withdrawn:
            return self
        if "consent" in self.model_fields_set:
            raise ValueError("a withdrawn check-in takes no consent: post a sign-up for that")
        given = self.person.model_fields_set
        if given - {"phone", "email"}:
            raise ValueError("a withdrawn check-in names the person by a phone or an email only (it introduces nobody)")
        if len(given) > 1:
            raise ValueError("a withdrawn check-in names the person by a phone or an email, not both (both would link them as one person)")
        return self

    @property
    def introduces(self) -> bool:
        return not self.withdrawn and super().introduces


def _withdrawal_schema(schema: dict[str, Any]) -> None:
    """A withdrawn check-in's rules (``CheckinEvent._withdrawal_names_whom_only``), in JSON Schema."""
    _type_required(schema)
    schema["if"] = {"properties": {"withdrawn": {"const": True}}, "required": ["withdrawn"]}
    schema["then"] = {"properties": {"person": {"maxProperties": 1, "propertyNames": {"enum": ["phone", "email"]}}},
                      "not": {"required": ["consent"]}}


def _channels(channels: tuple[str, ...]) -> tuple[str, ...]:
    # Checked after each item is (an unknown channel is said once, as that), not as a length.
    if not channels:
        raise ValueError("name the channels to stop: sms, email or both")
    if len(set(channels)) != len(channels):
        raise ValueError("name each channel once")
    return channels


class OptOutEvent(BaseEvent):
    """The person asked the partner to stop messages on these channels (at its office, on its
    own list). Applied coalition-wide, as a STOP reply or an unsubscribe is: no partner's ask
    reaches them on that channel afterwards. A START texted back lifts an SMS opt-out; an email
    opt-out lasts. Only how to reach the person is taken, and kept only as their key."""

    type: Literal["opt_out"] = "opt_out"
    person: PersonRef
    channels: Annotated[tuple[Channel, ...], AfterValidator(_channels)] = Field(
        description="The channels to stop: `sms`, `email` or both, each once.", json_schema_extra={"minItems": 1, "maxItems": 2, "uniqueItems": True})


PartnerEvent = Annotated[
    # "type": "object" on the union too: a validator that reads the discriminator loosely (Redocly)
    # otherwise lets an array match it, and calls the batch example ambiguous.
    Union[SignupEvent, ActionEvent, PledgeEvent, RsvpEvent, CheckinEvent, OptOutEvent],
    Field(discriminator="type", json_schema_extra={"type": "object"}),
]
#: The ``type`` of each partner event, in the union's order.
EVENT_TYPES: tuple[str, ...] = tuple(get_args(e.model_fields["type"].annotation)[0] for e in get_args(get_args(PartnerEvent)[0]))
partner_event = TypeAdapter(PartnerEvent)


# --- Internal events: written by turnout itself, never accepted from partners -----------------
# They are not part of ``PartnerEvent`` (the partner-facing schema and validation stay as they
# are); only the envelope, which the web app writes, may carry them.


class SupporterRsvpEvent(BaseEvent):
    """An RSVP a supporter gave on turnout's own RSVP page, through the signed link of one ask.

    The page knows the person only by key (from the link), so, unlike ``RsvpEvent``, it names
    no phone or email: the person is the envelope's ``person_key``, and the envelope's partner
    is the ask's, which the RSVP is credited to."""

    type: Literal["supporter_rsvp"] = "supporter_rsvp"
    action_id: Slug
    status: RsvpStatus
    ask_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(description="The ask whose link was answered.")


EnvelopeEvent = Annotated[
    Union[SignupEvent, ActionEvent, PledgeEvent, RsvpEvent, CheckinEvent, OptOutEvent, SupporterRsvpEvent], Field(discriminator="type")
]


class Envelope(Internal):
    """An accepted event as the ingress writes it to the events topic."""

    version: int = Field(default=1, description="The writer's contract version (internal topics).")
    partner: Slug
    received_at: Annotated[datetime, AfterValidator(in_utc)]
    role: Literal["backbone", "member"] = Field(default="member", description="The posting partner's role, as the ingress knew it.")
    inline: bool = Field(default=False, description="A pledge listed inside an action by its owner (not the partner's own).")
    person_key: str | None = Field(default=None, description="Keyed hash of the person's phone, else email (the ingress's); "
                                   "the identity step re-keys it to the canonical person before intake applies it.")
    email_key: str | None = Field(default=None, description="Keyed hash of the person's email when the event names a phone too: identity "
                                  "resolution links the two without reading the email, which is sealed (``streams.crypto``).")
    event: EnvelopeEvent

    @model_serializer(mode="wrap")
    def _without_email_key(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)  # most events name one identifier: no null on Kafka for the rest
        if self.email_key is None:
            data.pop("email_key", None)
        return data

    @model_validator(mode="after")
    def _person_events_are_keyed(self) -> Envelope:
        if (hasattr(self.event, "person") or isinstance(self.event, SupporterRsvpEvent)) and not self.person_key:
            raise ValueError("person_key is required for events about a person")
        return self
