"""IANA time zone names, looked up instead of opened. ``ZoneInfo(name)`` reads ``name`` as a
path under the zone directories: "America" (a directory) or a name longer than a file name can
be raise ``OSError``, not the ``ValueError`` or ``ZoneInfoNotFoundError`` its callers expect
(the fuzzer's 500). Every name a partner, an organizer, a setting or a data file gives is
checked here first."""

from __future__ import annotations

from zoneinfo import available_timezones

#: Every zone this machine knows (the ``tzdata`` package's and the system's), less the two
#: that name no place: "localtime" (a link to this machine's own zone, where there is one) and
#: "Factory" (tzdata's "local time unknown", abbreviated "-00").
ZONES = frozenset(available_timezones()) - {"localtime", "Factory"}


def known_zone(name: str | None) -> bool:
    return name in ZONES
