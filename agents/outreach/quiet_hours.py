"""Quiet hours: no SMS while it is night where the recipient is.

Everything works on the recipient's *wall clock*: the window is a pair of local times, and
the instants returned are where that wall clock first reads the right time, found by
walking forward in UTC and stepping over offset changes. That keeps the answers right on
DST days, including zones that change at local midnight (America/Santiago, America/Havana)
and days when the window's end does not exist (then the first instant after the gap).
Two offset changes less than a day apart are assumed not to happen (tzdata has none recent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

from contracts.zones import known_zone

from .eligibility import zip5, zip_facts

TWILIO_MAX_VALIDITY = 36000  # seconds: Twilio queues a message at most 10 h (accepts 1-36000)


@dataclass(frozen=True)
class QuietHours:
    """Local times between which no SMS is sent: ``start`` inclusive, ``end`` exclusive.

    ``start > end`` is a window across midnight (the default, 21:00-09:00).
    """

    start: time = time(21)
    end: time = time(9)

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise ValueError("quiet hours need start != end")
        if self.start.tzinfo or self.end.tzinfo:
            raise ValueError("quiet hours are local wall-clock times: no tzinfo")

    def covers(self, local: time) -> bool:
        """Whether wall-clock time ``local`` is inside the window."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def recipient_zone(postal_code: str | None, phone: str | None, action_zone: str) -> str:
    """The recipient's IANA time zone: from the US ZIP, else from the phone number when it
    maps to exactly one zone, else the action's zone."""
    code = zip5(postal_code)
    return (code and _zip_zone(code)) or (phone and _phone_zone(phone)) or action_zone


def _valid_zone(name: str | None) -> str | None:
    # The bundled ZIP data has blanks and a few non-IANA names.
    return name if known_zone(name) else None


#: The bundled ZIP data's names that are no IANA zone, for a place that has one (99634,
#: Napakiak, Alaska). The rest without one are overseas military ZIPs (AE, AP, AA).
_ZIP_ZONE_NAMES = {"Napakiak": "America/Anchorage"}


@lru_cache(maxsize=None)  # bounded by the ~42k US ZIPs
def _zip_zone(code: str) -> str | None:
    name = zip_facts(code)[1]
    return _valid_zone(_ZIP_ZONE_NAMES.get(name or "", name))


@lru_cache(maxsize=4096)
def _phone_zone(phone: str) -> str | None:
    try:
        zones = phone_timezone.time_zones_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return None
    # A toll-free or non-geographic number lists a whole continent; that says nothing.
    if len(zones) != 1 or zones[0] == "Etc/Unknown":
        return None
    return _valid_zone(zones[0])


@lru_cache(maxsize=1024)  # asked for every ask of a chunk, and every person a planning plans, at one ``now``
def next_allowed(now: datetime, zone: str, quiet: QuietHours) -> datetime | None:
    """``None`` if ``now`` is outside quiet hours in ``zone``; else the first UTC instant,
    rounded up to the minute, at which it no longer is (the next local ``end``)."""
    tz = _aware(now, zone)
    if not quiet.covers(now.astimezone(tz).time()):
        return None
    return _ceil_minute(_next_change(now, tz, quiet))


def validity_period(now: datetime, zone: str, quiet: QuietHours, max_seconds: int = TWILIO_MAX_VALIDITY) -> int:
    """Seconds until quiet hours next start in ``zone``, clipped to [1, ``max_seconds``].

    Sent as Twilio's ``ValidityPeriod``, so a text stuck in Twilio's queue expires instead of
    arriving at night. ``now`` must be outside quiet hours (``ValueError`` otherwise: such
    an ask is deferred with ``next_allowed``, not sent).
    """
    tz = _aware(now, zone)
    if quiet.covers(now.astimezone(tz).time()):
        raise ValueError("now is inside quiet hours: defer the ask until next_allowed()")
    seconds = math.floor((_next_change(now, tz, quiet) - now).total_seconds())
    return min(max(seconds, 1), max_seconds)


@lru_cache(maxsize=1024)
def quiet_begins(now: datetime, zone: str, quiet: QuietHours) -> datetime:
    """The next UTC instant at which quiet hours begin in ``zone`` (``now`` outside them)."""
    tz = _aware(now, zone)
    if quiet.covers(now.astimezone(tz).time()):
        raise ValueError("now is inside quiet hours")
    return _next_change(now, tz, quiet)


def _aware(now: datetime, zone: str) -> ZoneInfo:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return ZoneInfo(zone)


def _next_change(now: datetime, tz: ZoneInfo, quiet: QuietHours) -> datetime:
    """The first UTC instant after ``now`` at which ``quiet.covers`` flips."""
    t = now.astimezone(timezone.utc)
    inside = quiet.covers(t.astimezone(tz).time())
    target = quiet.end if inside else quiet.start
    for _ in range(8):  # each pass either arrives or crosses one offset change
        wall = t.astimezone(tz).replace(tzinfo=None)
        goal = datetime.combine(wall.date(), target)
        goal += timedelta(days=1) if goal <= wall else timedelta()
        arrival = t + (goal - wall)  # if the UTC offset stays as it is
        if _offset(arrival, tz) == _offset(t, tz):
            return arrival
        t = _offset_change(t, arrival, tz)
        if quiet.covers(t.astimezone(tz).time()) != inside:
            return t  # the change jumped the wall clock past the target
    raise AssertionError("no quiet-hours boundary found within 8 offset changes")


def _offset(t: datetime, tz: ZoneInfo) -> timedelta | None:
    return t.astimezone(tz).utcoffset()


def _offset_change(lo: datetime, hi: datetime, tz: ZoneInfo) -> datetime:
    """The first whole second in (``lo``, ``hi``] with a different offset than ``lo``'s."""
    before = _offset(lo, tz)
    low, high = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    while high - low > 1:
        mid = (low + high) // 2
        if _offset(datetime.fromtimestamp(mid, timezone.utc), tz) == before:
            low = mid
        else:
            high = mid
    return datetime.fromtimestamp(high, timezone.utc)


def _ceil_minute(t: datetime) -> datetime:
    floor = t.replace(second=0, microsecond=0)
    return floor if floor == t else floor + timedelta(minutes=1)
