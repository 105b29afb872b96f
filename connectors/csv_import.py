"""Sign-in sheets (CSV) → partner events, for ``turnout import``.

Pure: rows in, events and per-line problems out; the CLI posts the events through the signed
ingress like any other partner. Headers are matched case-insensitively, ignoring spaces,
dashes and underscores, against the aliases in ``DEFAULT_HEADERS`` (``--map COLUMN=FIELD``
adds more); a column a field would be read from is never guessed at (one named twice, or two
that could both be the field, stop the import). Each row passes the ingress's own checks
(``validate_events``), so a dry run passes only the rows the import will post. Each event's id
is a keyed hash (the partner's secret, or the one it had before a rotation: ``Partner.import_key``) of the partner, the event type, the action and the
row's mapped values, never of its line number: the same file imported twice, or re-sorted,
yields the same ids, and the facts they make count once.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import re
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Literal
from zoneinfo import ZoneInfo

from contracts.people import normalize_email, normalize_phone
from streams.friendly import plural

from . import csv_files
from .web.ingress import Authority, validate_events

ImportType = Literal["signup", "rsvp", "checkin", "opt_out"]

#: field → header aliases (normalized: lower case, letters and digits only).
DEFAULT_HEADERS: dict[str, tuple[str, ...]] = {
    "given_name": ("givenname", "firstname", "first", "fname"),
    "family_name": ("familyname", "lastname", "last", "lname", "surname"),
    "phone": ("phone", "phonenumber", "mobile", "mobilephone", "cell", "cellphone", "tel", "telephone"),
    "email": ("email", "emailaddress", "mail"),
    "postal_code": ("postalcode", "zip", "zipcode", "postcode"),
    "language": ("language", "lang"),
    "occurred_at": ("occurredat", "date", "datetime", "timestamp", "signedinat", "time"),
    "status": ("status", "rsvp", "rsvpstatus"),
    "sms_consent": ("smsconsent", "smsoptin", "textoptin", "oktotext", "textok", "sms"),
    "email_consent": ("emailconsent", "emailoptin", "oktoemail", "emailok"),
}
FIELDS = tuple(DEFAULT_HEADERS)
PERSON = ("given_name", "family_name", "phone", "email", "postal_code", "language")
YES = {"y", "yes", "true", "1", "x", "si", "sí"}
NO = {"", "n", "no", "false", "0"}


class CsvError(Exception):
    """The file as a whole cannot be imported (no usable header, unknown mapping)."""


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str


@dataclass(frozen=True)
class Row:
    line: int
    event: dict[str, Any]


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def column_map(headers: list[str], extra: dict[str, str] | None = None) -> dict[str, str]:
    """field → the column it is read from. ``extra`` (column → field) wins over the defaults.

    Never a guess: a column named twice that a field would be read from, or two columns that
    could both be a field (``Phone`` and ``phone``, ``Date`` and ``Time``) are a ``CsvError``
    naming them; ``--map`` settles the second.
    """
    mapping: dict[str, str] = {}
    for column, field in (extra or {}).items():
        if field not in FIELDS:
            raise CsvError(f"--map {column}={field}: unknown field (known: {', '.join(FIELDS)})")
        if column not in headers:
            raise CsvError(f"--map {column}={field}: the file has no column {column!r}")
        if field in mapping:
            raise CsvError(f"--map {mapping[field]}={field} and --map {column}={field}: one column per field")
        mapping[field] = _once(headers, column, field)
    for field, aliases in DEFAULT_HEADERS.items():
        if field not in mapping:
            found = list(dict.fromkeys(h for h in headers if _norm(h) in aliases and h not in mapping.values()))
            if len(found) > 1:
                raise CsvError(f"columns {found[0]!r} and {found[1]!r} could both be {field}: "
                               f"say which with --map (e.g. --map {shlex.quote(f'{found[0]}={field}')})")
            if found:
                mapping[field] = _once(headers, found[0], field)
    if "phone" not in mapping and "email" not in mapping:
        raise CsvError(f"no phone or email column among {headers} (use --map COLUMN=phone)")
    return mapping


def _once(headers: list[str], column: str, field: str) -> str:
    count = headers.count(column)
    if count > 1:  # which of them holds the field cannot be said, not even with --map
        raise CsvError(f"the header has {count} columns named {column!r}: rename all but one, so it is clear which is {field}")
    return column


def event_id(secret: str, partner: str, kind: ImportType, action: str | None, values: dict[str, str], region: str) -> str:
    """The row's event id, from its content: a phone or an email as the event carries it (E.164,
    lower-cased), so a copy of the sheet re-typed or re-saved otherwise ("(415) 555-0120" for
    "415-555-0120") is the same rows, and checks nobody in again whose check-in was undone."""
    values = {k: v for k, v in values.items() if v}
    for field, normalize in (("phone", lambda v: normalize_phone(v, region)), ("email", normalize_email)):
        try:
            values[field] = normalize(values[field])
        except (KeyError, ValueError):  # none, or refused on its line
            pass
    content = "\x1f".join([partner, kind, action or ""] + [f"{k}={values[k]}" for k in sorted(values)])
    return "csv-" + hmac.new(secret.encode(), content.encode(), hashlib.sha256).hexdigest()[:32]


@csv_files.long_values_read()  # any length: the field a value is for refuses it, on its line
def read(
    lines: Iterable[str], kind: ImportType, *, partner: str, secret: str, action: str | None,
    default_at: datetime, region: str = "US", extra: dict[str, str] | None = None, consent: frozenset[str] = frozenset(),
    delimiter: str = ",", zone: ZoneInfo | None = None, now: datetime | None = None, stop: frozenset[str] = frozenset(),
) -> tuple[list[Row], list[Problem]]:
    """The file's events, each with its line number, and every bad row with its line and reason.

    ``default_at`` is when rows without a date column happened (the CLI uses the file's
    modification time, so a re-run gives identical events). ``consent`` lists the channels the
    sheet itself collected consent for; a row's own consent column wins. Dates without a UTC
    offset are read in ``zone`` (``CsvError`` when there is none); US ZIPs are checked when
    ``region`` is US. A row whose quotes run it into the next lines, or with more or fewer values
    than the header has columns, is reported, never guessed at. Each event then passes the
    ingress's checks as received at ``now`` (by default the clock's time), which refuse, for
    one, a date more than 5 minutes after it. A value of any length is read: the field it is
    for refuses it if it is too long. An ``opt_out`` sheet (a partner's "do not contact" list)
    stops the channels in ``stop`` for each row's phone or email; its other columns are unused.
    """
    if kind in ("rsvp", "checkin") and not action:
        raise CsvError(f"--action is required for --type {kind}")
    if kind == "opt_out" and not stop:
        raise CsvError("--stop sms and/or --stop email is required for --type opt_out (the channels to stop)")
    # A sheet posts no actions and overrides no quiet hours: the partner's role changes nothing.
    ingress = Authority(partner, received_at=now or datetime.now(timezone.utc))
    rows, problems = [], []
    reader = csv.reader(lines, delimiter=delimiter)
    header = next((r for r in reader if r), None)
    if not header:
        raise CsvError("the file is empty (no header row)")
    mapping = read_columns(column_map([h for h in header if h], extra), kind)
    index = {f: header.index(c) for f, c in mapping.items()}
    line = reader.line_num  # the header's last line
    for fields in reader:
        start, line = line + 1, reader.line_num
        if not any(v.strip() for v in fields):
            continue  # blank line
        shape = _shape(fields, len(header), [fields[i] for i in index.values() if i < len(fields)], start, line, delimiter)
        if shape:
            problems.append(Problem(start, shape))
            continue
        values = {f: cell(fields[i]) for f, i in index.items()}
        found: list[str] = []  # every problem of the row, said at once: a sheet is fixed in one pass
        event = _event(kind, action, _checked(values, region, zone, start, found), default_at, consent, stop, found)
        event["event_id"] = event_id(secret, partner, kind, action, values, region)
        reason = _refused(event, region, ingress)
        if reason and reason.startswith("occurred_at:") and not values.get("occurred_at"):
            # No date in the row: it is the file's own (the CLI's: when it was last saved), not a column's.
            reason = f"occurred_at (no date in the row, so the file's, {default_at.isoformat()}):" + reason.removeprefix("occurred_at:")
        if found or reason:
            problems.append(Problem(start, "; ".join([*found, *([reason] if reason else [])])))
        else:
            rows.append(Row(start, event))
    return rows, problems


def read_columns(mapping: dict[str, str], kind: ImportType) -> dict[str, str]:
    """The columns the import reads: an opt-out sheet only its phone and email (a ZIP or a date
    a do-not-contact list also has must not make a row bad, and so the person texted)."""
    return {f: c for f, c in mapping.items() if f in ("phone", "email")} if kind == "opt_out" else mapping


def _shape(fields: list[str], columns: int, used: list[str], start: int, end: int, delimiter: str = ",") -> str | None:
    """Why a row's shape is wrong: an unbalanced quote ran it into the next lines (the row has the
    wrong number of values, a value the import reads spans lines, or a line a value spans reads
    as a row of its own), or it has more or fewer values than the header has columns."""
    if end > start and (len(fields) != columns or any("\n" in v or "\r" in v for v in used) or _swallows_rows(fields, columns, delimiter)):
        return (f"a quote opened on this line is not closed where the line ends, so lines {start}-{end} were read as one row "
                "(remove the stray quote, or close it)")
    if len(fields) != columns:
        return (f"{plural(len(fields), 'value')}, but the header has {plural(columns, 'column')} "
                "(a value with the delimiter in it needs quotes)")
    return None


def _swallows_rows(fields: list[str], columns: int, delimiter: str) -> bool:
    """Whether a value over several lines holds a line with as many values as the header has
    columns: a row swallowed by a stray quote, not a note written over two lines."""
    return any(len(next(csv.reader([line], delimiter=delimiter), [])) == columns
               for v in fields if "\n" in v or "\r" in v for line in v.splitlines()[1:])


def cell(text: str) -> str:
    """A cell's value: without the spaces around it, nor a spreadsheet's leading apostrophe (its
    mark for "keep as text", which some exports keep: "'02139", "'ann@example.org" would be
    another ZIP, another person)."""
    text = text.strip()
    return text[1:].strip() if text.startswith("'") else text


def _checked(values: dict[str, str], region: str, zone: ZoneInfo | None, line: int, found: list[str]) -> dict[str, str]:
    """``values`` with the date read (in ``zone`` when it has no offset) and the ZIP checked; a
    value found bad is left out (so the rest is still checked) and said in ``found``."""
    out = dict(values)
    if values.get("occurred_at"):
        try:
            out["occurred_at"] = csv_files.parse_when(values["occurred_at"], zone)
        except csv_files.NeedsZone:
            raise CsvError(f"line {line}: the date has no UTC offset: give --tz ZONE (e.g. --tz America/Los_Angeles), "
                           "or set TURNOUT_TIME_ZONE to the coalition's zone") from None
        except ValueError as exc:
            found.append(f"occurred_at: {exc}")
            del out["occurred_at"]
    if region == "US" and values.get("postal_code") and (problem := csv_files.zip_problem(values["postal_code"])):
        found.append(f"person.postal_code {problem}")
        del out["postal_code"]
    return out


def _event(kind: ImportType, action: str | None, v: dict[str, str], default_at: datetime, consent: frozenset[str],
           stop: frozenset[str], found: list[str]) -> dict[str, Any]:
    at = v.get("occurred_at") or default_at.isoformat()
    if kind == "opt_out":  # how to reach them, nothing else: the opt-out keeps only their key
        return {"type": "opt_out", "occurred_at": at, "person": {f: v[f] for f in ("phone", "email") if v.get(f)}, "channels": sorted(stop)}
    # RSVP and check-in sheets carry the person too (names, ZIP, consent): they may introduce someone.
    person = {f: v[f] for f in PERSON if v.get(f)}
    common = {"occurred_at": at, "person": person, "consent": {
        c: {"granted": _consent(v, c, consent, found), "method": "sign-in sheet (CSV import)"} for c in ("sms", "email")}}
    if kind == "signup":
        return {"type": "signup", **common}
    if kind == "rsvp":
        status = (v.get("status") or "yes").lower()
        status = "yes" if status in YES else "no" if status in NO - {""} else status
        return {"type": "rsvp", **common, "action_id": action, "status": status}
    return {"type": "checkin", **common, "action_id": action}


def _consent(v: dict[str, str], channel: str, sheet: frozenset[str], found: list[str]) -> bool:
    """Whether the row grants consent on ``channel``; a value that is neither yes nor no grants
    none and is said in ``found``."""
    column = v.get(f"{channel}_consent", "")
    if column.lower() in YES:
        granted = True
    elif column.lower() in NO - {""}:
        granted = False
    elif column:
        found.append(f"{channel}_consent: neither yes nor no (yes: y, yes, true, 1, x, sí; no: n, no, false, 0 or empty)")
        granted = False
    else:
        granted = channel in sheet
    # Consent for a channel the row has no address for is not an error: there is nothing to grant.
    return granted and bool(v.get("phone" if channel == "sms" else "email"))


def _refused(event: dict[str, Any], region: str, ingress: Authority) -> str | None:
    """Why the ingress would refuse ``event``, from its own checks (the contract, then what a
    partner may claim, such as a time in the future), or ``None``."""
    checked = validate_events([event], region, ingress)
    return "; ".join(f"{e.field}: {e.message}" for r in checked.rejected for e in r.errors) or None
