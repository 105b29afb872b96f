"""Partners' CSV files as they really arrive: how to decode them, split them, read their dates
and check their ZIPs. Pure functions, used by ``csv_import`` and ``turnout import``.

- **Encoding**, in this order: a UTF-16 byte-order mark (Excel's "Unicode text"); UTF-8, with
  or without its BOM; Windows-1252 (what Excel on Windows writes as "CSV"); Latin-1, which
  decodes any bytes, as the last resort. Valid UTF-8 is almost never valid text of another
  encoding by accident, so trying it first is safe; the stdlib is enough, no guessing library.
  A sheet that is UTF-8 but for some lines (rows pasted from a Windows file) is read line by
  line, each in the first encoding that reads it, and the encoding named says which lines.
  A header row with NUL bytes (UTF-16 without its BOM, or no text at all) is refused.
- **Delimiter**: comma, semicolon (Excel where the decimal mark is a comma) or tab, whichever
  splits the header row into the most columns (a comma when none does).
- **Dates**: ISO 8601 with an offset as they are; without one (``2026-12-01T18:05``, a plain
  ``2026-12-01``, or US ``12/01/2026 6:05 PM``) in the time zone given, a plain date at midnight.
- **ZIPs** (region US): five digits or ZIP+4, and one the bundled ``zipcodes`` data knows.
- **Long values**: the csv module stops at a value over 131072 characters with no line number;
  ``long_values_read`` lifts that while a sheet is read, so the field the value is for refuses
  it, on its line, and the other rows are read.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Iterator
from zoneinfo import ZoneInfo

import zipcodes

from contracts.zones import skipped

DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs"}
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$")
_ZIP = re.compile(r"^(\d{5})(?:[- ]?\d{4})?$")
DATE_FORMS = "2026-12-01, 2026-12-01T18:05 or 12/01/2026 6:05 PM, with or without a UTC offset"
#: The largest field limit a C long holds on every platform (Windows' long is 32 bits).
_NO_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class Sheet:
    text: str
    encoding: str
    delimiter: str

    def describe(self) -> str:
        return f"{self.encoding}, separated by {DELIMITERS[self.delimiter]}"


class NeedsZone(ValueError):
    """A date without a UTC offset, and no time zone to read it in."""


class NotASheet(ValueError):
    """Bytes that no encoding here reads as a sheet's text (a header row with NUL bytes)."""


#: Excel's first line naming the sheet's separator ("sep=;"): no header.
_SEPARATOR_LINE = re.compile(r"sep=(.)[ \t]*(?=\r?\n|\r|$)", re.I)


def open_sheet(data: bytes, delimiter: str | None = None) -> Sheet:
    """The file's text, the encoding it was read as, and its delimiter (sniffed unless given, or
    named by a first line "sep=;", which is left blank: the lines keep their numbers)."""
    text, encoding = decode(data)
    if (named := _SEPARATOR_LINE.match(text)) and named[1] in DELIMITERS:
        text, delimiter = text[named.end():], delimiter or named[1]
    return Sheet(text, encoding, delimiter or sniff_delimiter(text))


def decode(data: bytes) -> tuple[str, str]:
    """``data`` as text and the name of the encoding used (the order is in the module docstring)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "UTF-16"
    if data.startswith(codecs.BOM_UTF8):
        return data.decode("utf-8-sig"), "UTF-8 (with BOM)"
    # Every encoding below would "read" UTF-16 without its BOM as letters between NULs, and call
    # each column unknown; a NUL in a later row only makes that row bad.
    if b"\x00" in data.split(b"\n", 1)[0]:
        raise NotASheet("its header row has NUL bytes: UTF-16 without a byte-order mark, or not a CSV file at all "
                        "(save it as CSV UTF-8, or Excel's \"Unicode text\")")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    lines = [_decode_line(line) for line in io.BytesIO(data)]
    if any(name == "UTF-8" and not text.isascii() for text, name in lines):
        # Mostly UTF-8, with rows pasted from a Windows file: each line in its own encoding.
        said = ", ".join(f"{_line_numbers(numbers)} as {name}" for name in ("Windows-1252", "Latin-1")
                         if (numbers := [n for n, (_, read_as) in enumerate(lines, 1) if read_as == name]))
        return "".join(text for text, _ in lines), f"UTF-8 ({said.replace(' as ', ' read as ', 1)})"
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def _decode_line(line: bytes) -> tuple[str, str]:
    for codec, name in (("utf-8", "UTF-8"), ("cp1252", "Windows-1252")):
        try:
            return line.decode(codec), name
        except UnicodeDecodeError:
            continue
    return line.decode("latin-1"), "Latin-1"


def _line_numbers(numbers: list[int], shown: int = 5) -> str:
    """``[2, 3, 4, 9]`` as ``lines 2-4, 9``: runs of lines, the first ``shown`` of them."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    said = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs[:shown])
    more = f" and {len(runs) - shown} more runs" if len(runs) > shown else ""
    return f"{'line' if len(numbers) == 1 else 'lines'} {said}{more}"


def sniff_delimiter(text: str) -> str:
    header = next((line for line in text.splitlines() if line.strip()), "")
    widths = {d: len(next(csv.reader([header], delimiter=d), [])) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: widths[d])  # ties: the first, a comma
    return best if widths[best] > 1 else ","


@contextmanager
def long_values_read() -> Iterator[None]:
    """Within the block, the csv module reads a value of any length instead of raising
    ``csv.Error`` for the whole file. The sheet is in memory already, so no value is longer than
    it; the limit is the module's (process-wide, which the single-threaded CLI can afford), and
    is put back after."""
    before = csv.field_size_limit(_NO_FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def parse_when(value: str, zone: ZoneInfo | None) -> str:
    """``value`` as ISO 8601 with a UTC offset, to the second when it had no more."""
    try:
        when = _parse(value.strip())
    except ValueError:
        raise ValueError(f"not a date we can read (use {DATE_FORMS})") from None
    if when.tzinfo is None:
        if zone is None:
            raise NeedsZone("the date has no UTC offset")
        when = when.replace(tzinfo=zone)
        if skipped(when):
            raise ValueError(f"{when:%Y-%m-%d %H:%M} does not exist in {zone.key}: the clocks go forward an hour then")
    return when.isoformat()


def _parse(value: str) -> datetime:
    us = _US_DATE.match(value)
    if not us:
        return datetime.fromisoformat(value)
    month, day, year, hour, minute, second, half = us.groups()
    h = int(hour or 0)
    if half:
        if not 1 <= h <= 12:
            raise ValueError("hour")
        h = h % 12 + (12 if half.lower() == "pm" else 0)
    return datetime(int(year), int(month), int(day), h, int(minute or 0), int(second or 0))


def zip_problem(value: str) -> str | None:
    """Why ``value`` is not a US ZIP, or ``None`` when it is one."""
    match = _ZIP.match(value.strip())
    if match is None:
        if re.fullmatch(r"\d{4}", value.strip()):
            return "has 4 digits: a spreadsheet may have dropped its leading zero (format the column as text)"
        if re.fullmatch(r"\d{4,5}\.0+", value.strip()):
            return "is a number a spreadsheet stored (94607.0): format the column as text and export again"
        return "is not a US ZIP (5 digits, or ZIP+4)"
    return None if _real_zip(match.group(1)) else "is not a US ZIP the bundled ZIP data knows"


def load_zip_data() -> None:
    """Read the bundled ZIP data now: its first use reads all of it (0.3-0.6 s), which inside a
    request's handler would hold up the web app's event loop."""
    _real_zip("94607")
    us_regions()


@lru_cache(maxsize=1)
def us_regions() -> frozenset[str]:
    """The state and territory codes of the bundled ZIP data (CA, DC, PR, ...): what an action's
    target ``regions`` can match (``agents.outreach.eligibility.in_area``)."""
    return frozenset(z["state"] for z in zipcodes.list_all() if z.get("state"))


@lru_cache(maxsize=None)  # bounded by the ~42k US ZIPs
def _real_zip(code: str) -> bool:
    return zipcodes.is_real(code)
