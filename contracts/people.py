"""A person as a partner describes them, normalized on the way in.

Phones become E.164 (``phonenumbers``; numbers without a country code are read in the
default region, ``US`` unless the validation context says ``{"default_region": "GB"}``).
Emails are validated for syntax and normalized by ``email-validator`` (no DNS look-up).
Field names follow OSDI where OSDI has one.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_serializer,
    model_validator,
)

DEFAULT_REGION = "US"
#: A date and time as JSON Schema's ``date-time`` (RFC 3339) writes it: a "T", whole seconds and
#: an offset (checked by ``AwareDatetime``, which says when it is missing).
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?")


def _rfc3339(value: Any) -> Any:
    # Pydantic alone also takes numbers (Unix time), numeric strings, a space for the "T" and
    # no seconds: more than the published schema says, so a partner's validator and ours disagreed.
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        if value[17:19] == "60":  # RFC 3339 writes a leap second so; no clock here can hold it
            raise ValueError("is a leap second (second 60), which turnout cannot keep: give second 59 instead")
        return value
    raise ValueError("should be a date and time with a UTC offset, as RFC 3339 writes it (2026-11-22T15:00:00Z)")


def in_utc(value: datetime) -> datetime:
    """``value``, if it is a time in UTC too: near the calendar's edges an offset takes it past them
    (0001-01-01T00:00+01:00 is the year 0 in UTC), and every comparison or key made of it would fail."""
    try:
        value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is outside the calendar once written in UTC (years 1 to 9999)") from None
    return value


#: A date and time as a string of JSON Schema's ``date-time`` format, with a UTC offset.
Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
#: A partner's date and time: one that is a time in UTC too.
Timestamp = Annotated[Rfc3339, AfterValidator(in_utc)]
#: How a sealed personal field starts (``streams.crypto``: encrypted with the person's data key).
SEALED_PREFIX = "enc1:"


class Frozen(BaseModel):
    """Base for every partner-facing contract: immutable, unknown fields are an error, not
    silently dropped (a typo must not vanish)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Internal(Frozen):
    """Base for what turnout writes for itself (internal topics, fact tables): unknown fields are
    ignored, so that during a rolling deploy an older worker reads what a newer one wrote.
    Records on internal topics also carry ``version`` (of the writer's contract). A partner
    event nested inside stays strict: a new partner-facing field is deployed to every worker
    and web app before partners may use it."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)


#: Why phonenumbers could not read a number, in a few words (its own sentences repeat "not a phone number").
_UNPARSED = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "no such country code",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


#: A phone a spreadsheet stored as a number: as a float (``5105550126.0``) or in scientific notation
#: (``5.10555E+09``, its digits gone).
_SPREADSHEET_NUMBER = re.compile(r"\d{7,}\.0+|\d[.,]\d+[eE]\+?\d+")


def normalize_phone(value: str, region: str = DEFAULT_REGION) -> str:
    """Return ``value`` in E.164, or raise ``ValueError`` saying why it is not a phone number."""
    if _SPREADSHEET_NUMBER.fullmatch(value.strip()):
        raise ValueError("not a phone number: a spreadsheet stored it as a number (a decimal or 5.1E+09 form, "
                         "digits may be lost); format the column as text and export again")
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        why = _UNPARSED.get(exc.error_type)
        raise ValueError("not a phone number" + (f" ({why})" if why else "")) from None
    if number.extension:
        # E.164 has no extension: cut off, everyone at one switchboard would be one person.
        raise ValueError("has an extension, which cannot be texted and would make everyone at that number one person: "
                         "give the person's own (mobile) number")
    if any(c.isalpha() for c in value):
        # phonenumbers reads letters as a keypad's digits and drops words around the digits:
        # "510-555-CALL" would be someone's number, and "not-a-phone-…" a guess.
        raise ValueError("not a phone number: it has letters (give the digits only, e.g. +1 510 555 0123)")
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"not a valid phone number for region {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str) -> str:
    """Return the normalized address: lower-cased (partners' tools disagree on case), in Unicode
    NFKC (a full-width "ｂen＠example.org", as a Japanese keyboard types it, is ben@example.org,
    as full-width digits are a phone's digits)."""
    try:
        address = validate_email(unicodedata.normalize("NFKC", value).strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    if len(address.rpartition("@")[0].encode()) > 64:
        raise ValueError("The part before the @-sign is longer than 64 bytes (RFC 5321): no mail server takes it.")
    return address


def _phone(value: str, info: ValidationInfo) -> str:
    context = info.context or {}
    # Records the ingress already normalized are re-read by agents many times: skip the work.
    if context.get("normalized") and value.startswith("+"):
        return value
    return normalize_phone(value, context.get("default_region", DEFAULT_REGION))


def _sealed_or(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    # Inside turnout's own records (read with the "normalized" context) a personal field is
    # sealed (encrypted): it is taken as it is. What partners post is always validated, and may
    # not look sealed: the ingress would leave it as it came, and no key would ever open it, so
    # the person's record would read as erased (no partner's asks would reach them).
    if isinstance(value, str) and value.startswith(SEALED_PREFIX) and (info.context or {}).get("normalized"):
        return value
    out = handler(value)  # stripped of surrounding spaces by now
    if isinstance(out, str) and out.startswith(SEALED_PREFIX):
        raise ValueError(f"must not start with {SEALED_PREFIX!r} (how turnout marks an encrypted field)")
    return out


#: Control characters (C0, DEL, C1).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: The bidirectional embeddings, overrides and isolates, which turn the text after them around on
#: a page, in a spreadsheet or a terminal (direction marks, U+200E/U+200F, stay: they only nudge
#: punctuation). Refused in what partners post; what turnout stored before this rule still reads.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
#: ... and the line and paragraph separators, which break a line as a newline would (a template
#: breaks its lines with newlines only; one-line text has none).
_BREAKS = "\u2028\u2029"
_BIDI_OR_BREAK = re.compile(f"[\u202a-\u202e\u2066-\u2069{_BREAKS}]")


def _posted(info: ValidationInfo) -> bool:
    """Whether the value is being posted (not re-read from turnout's own records)."""
    return not (info.context or {}).get("normalized")


def _no_control(pattern: re.Pattern[str], posted: re.Pattern[str] = _BIDI):  # noqa: ANN202
    def check(value: str, info: ValidationInfo) -> str:
        if (found := pattern.search(value) or (posted.search(value) if _posted(info) else None)) is not None:
            what = "line separator" if found.group() in _BREAKS else "control character"
            raise ValueError(f"must not contain the {what} U+{ord(found.group()):04X}")
        return value
    return AfterValidator(check)


#: Letters that show nothing: the Hangul fillers and the braille blank.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _visible(value: str, info: ValidationInfo) -> str:
    # Visible: a letter, digit, punctuation mark or symbol. Spaces, format characters (a
    # zero-width space), a combining mark alone, unassigned code points and blank letters show nothing.
    if _posted(info) and not any(unicodedata.category(c)[0] in "LNPS" and c not in _BLANK_LETTERS for c in value):
        raise ValueError("must have a visible character")
    return value


#: A partner's one-line text (a name, a title, a place) holds no control character: a NUL or an
#: escape sequence would reach CSV exports and an organizer's terminal as it came.
OneLine = _no_control(CONTROL, _BIDI_OR_BREAK)
#: A message template may break lines (newline, carriage return, tab), nothing else.
Lines = _no_control(_CONTROL_BUT_LINES, _BIDI_OR_BREAK)

Sealable = WrapValidator(_sealed_or)
Phone = Annotated[str, StringConstraints(min_length=3, max_length=40), AfterValidator(_phone), Sealable]
Email = Annotated[str, StringConstraints(min_length=3, max_length=320), AfterValidator(normalize_email), Sealable,
                  WithJsonSchema({"type": "string", "format": "email", "minLength": 3, "maxLength": 320})]
#: Whitespace around a postal code or a language tag is trimmed (as around a name); the patterns
#: say so, so that the JSON Schema refuses nothing the API takes.
POSTAL_CODE_PATTERN = r"^\s*[A-Za-z0-9][A-Za-z0-9 -]*\s*$"
PostalCode = Annotated[str, StringConstraints(min_length=2, max_length=12, pattern=POSTAL_CODE_PATTERN, to_upper=True), Sealable]
#: A BCP 47 language tag, as far as turnout reads one (``es``, ``es-MX``).
LANGUAGE_TAG = r"^\s*[a-zA-Z]{2,3}(-[A-Za-z0-9]{2,8})*\s*$"
Language = Annotated[str, StringConstraints(pattern=LANGUAGE_TAG, to_lower=True)]
Visible = AfterValidator(_visible)
Name = Annotated[str, StringConstraints(min_length=1, max_length=100), OneLine, Visible, Sealable]


class PersonRef(Frozen):
    """How to reach a person: a phone or an email is required (either identifies them)."""

    phone: Phone | None = None
    email: Email | None = None

    @model_serializer(mode="wrap")
    def _without_empty_fields(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Most RSVPs name a phone and nothing else: the envelope on Kafka need not list the rest as nulls.
        return {k: v for k, v in handler(self).items() if v is not None}

    @model_validator(mode="after")
    def _reachable(self) -> PersonRef:
        if self.phone is None and self.email is None:
            raise ValueError("a person needs a phone or an email")
        return self


class Person(PersonRef):
    """A supporter as a partner knows them: on a sign-up, and on an RSVP or check-in (where the
    name, postal code and language are optional and introduce someone not signed up yet)."""

    given_name: Name | None = None
    family_name: Name | None = None
    postal_code: PostalCode | None = None
    language: Language | None = None


def _granted(value: Any) -> Any:
    # The short wire form {"sms": true} means consent given, with no further detail.
    if isinstance(value, bool):
        return {"granted": value}
    if not isinstance(value, (dict, ChannelConsent)):  # "yes", 1: said in the contract's words, not a class's name
        raise ValueError(f'give true or false, or an object such as {{"granted": true, "scope": "coalition"}}, not {json.dumps(value)[:40]}')
    return value


ConsentScope = Literal["partner", "coalition"]
Channel = Literal["sms", "email"]


class ChannelConsent(Frozen):
    """Consent for one channel, with when and how it was given (for the compliance record)."""

    granted: bool
    given_at: Timestamp | None = None
    method: Annotated[str, StringConstraints(max_length=200), OneLine] | None = Field(
        default=None, description="How consent was collected, e.g. 'paper sign-in sheet', 'web form'."
    )
    scope: ConsentScope = Field(
        default="partner",
        description="Who may message the person on this channel: `partner` (the partner that collected it) or `coalition` (any partner, as the form said).",
    )


# The schema shows the shorthand too, so partners (and the OpenAPI document) know it is valid.
Consent_ = Annotated[ChannelConsent, BeforeValidator(_granted, json_schema_input_type=ChannelConsent | bool)]


class Consent(Frozen):
    """Per-channel consent. Absent means not given."""

    # The default written as the shorthand (``false``): one of the field's own schema's forms, which
    # client generators need of a default (an outside probe: openapi-python-client dropped Consent).
    sms: Consent_ = Field(default=False, validate_default=True)
    email: Consent_ = Field(default=False, validate_default=True)


class ConsentRecord(Internal):
    """Consent as the people table keeps it: who recorded it first and when, and whom it covers."""

    granted: bool
    partner: str
    at: datetime
    method: str | None = None
    scope: ConsentScope = "partner"
    covers: tuple[str, ...] = Field(default=(), description="Every partner that recorded this consent (partner scope); empty: just ``partner``.")

    def covers_partner(self, partner: str) -> bool:
        return self.granted and (self.scope == "coalition" or partner in (self.covers or (self.partner,)))
