"""IANA time zone names, looked up instead of opened, and a start as messages write it in its zone. ``ZoneInfo(name)`` reads ``name`` as a
path under the zone directories: "America" (a directory) or a name longer than a file name can
be raise ``OSError``, not the ``ValueError`` or ``ZoneInfoNotFoundError`` its callers expect
(the fuzzer's 500). Every name a partner, an organizer, a setting or a data file gives is
checked here first."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

#: Every zone this machine knows (the ``tzdata`` package's and the system's), less the two
#: that name no place: "localtime" (a link to this machine's own zone, where there is one) and
#: "Factory" (tzdata's "local time unknown", abbreviated "-00").
ZONES = frozenset(available_timezones()) - {"localtime", "Factory"}


def known_zone(name: str | None) -> bool:
    return name in ZONES


_DAYS = {"en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), "es": ("lun", "mar", "mié", "jue", "vie", "sáb", "dom")}
#: A text's: GSM-7 only ("sab": the "á" of "sáb" is not, and would make every Spanish text
#: about a Saturday UCS-2, twice the segments; "é" is), as the Spanish SMS footer writes "SI".
_SMS_DAYS = {**_DAYS, "es": ("lun", "mar", "mié", "jue", "vie", "sab", "dom")}
_MONTHS = {"en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
           "es": ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic")}
_MERIDIEM = {"en": ("AM", "PM"), "es": ("a. m.", "p. m.")}
_WHEN = {"en": "{day} {month} {d}, {h}:{m:02d} {meridiem} {zone}", "es": "{day} {d} {month}, {h}:{m:02d} {meridiem} {zone}"}


def skipped(wall: datetime) -> bool:
    """Whether the clocks skip this wall time in its zone (the hour they go forward): Python
    would read it as an hour later without a word."""
    try:
        return wall.astimezone(timezone.utc).astimezone(wall.tzinfo).replace(tzinfo=None) != wall.replace(tzinfo=None)
    except OverflowError:  # at the calendar's edge: not skipped, and refused for its year elsewhere
        return False


@lru_cache(maxsize=1024)  # the same for every person asked for an action (in one language)
def local_time(starts_at: datetime, tz: str, language: str | None = "en", sms: bool = False) -> str:
    """``starts_at`` in zone ``tz``, as a message's ``{local_time}`` writes it, in the language of
    the template it goes into (its tag): ``Tue Dec 1, 6:00 PM PST``, or ``mar 1 dic, 6:00 p. m.
    PST`` for Spanish (``es``, ``es-MX``); English for any other. Locale-independent. ``sms``: in
    GSM-7 characters only (``_SMS_DAYS``).

    Zones without a letter abbreviation (tzdata writes ``-03``) show as ``UTC-03``.
    """
    if starts_at.tzinfo is None:
        raise ValueError("starts_at must be timezone-aware")
    t = starts_at.astimezone(ZoneInfo(tz))
    zone = t.tzname() or ""
    zone = f"UTC{zone}" if zone[:1] in "+-" else zone
    lang = "es" if (language or "").split("-")[0].lower() == "es" else "en"
    day, month = (_SMS_DAYS if sms else _DAYS)[lang][t.weekday()], _MONTHS[lang][t.month - 1]
    return _WHEN[lang].format(day=day, month=month, d=t.day, h=t.hour % 12 or 12, m=t.minute,
                              meridiem=_MERIDIEM[lang][t.hour >= 12], zone=zone).rstrip()
