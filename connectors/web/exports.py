"""CSV exports of the tallies: counts only, never a person.

- ``tallies_csv``: one row per (action, partner) with every figure, for the coalition's organizers.
- ``unique_csv``: one row per action and one for the coalition: the people behind the figures,
  each counted once however many partners know them, and the show rate; for organizers.
- ``aggregate_csv``: one row per action, no partner names, every count from 1 to 10 suppressed
  (the CMS cell-size suppression rule), for funders and legislators. There is deliberately no
  total row: a total next to suppressed cells would give them away by subtraction.

Each is plain UTF-8; for Excel, the web app (``?bom=true``) and ``turnout export --bom`` put
``BOM`` first.
"""

from __future__ import annotations

import csv
import io
import itertools
from typing import Iterable, Iterator

from zoneinfo import ZoneInfo

from contracts.events import ActionEvent
from contracts.tallies import ACTION_METRICS, TallyBook, asks_sent, ratio, summed

from .dashboard.view import newest_first

SUPPRESSED = "<11"
#: What a CSV for Excel starts with: without it Excel reads UTF-8 as the system's code page ("JosÃ©").
BOM = "\ufeff"
SUPPRESSION_NOTE = (
    "Aggregate turnout counts. Every count from 1 to 10 is suppressed and shown as <11 "
    "(CMS cell-size suppression policy); a ratio is left blank when either of its counts is suppressed. "
    "Counts of 0 are shown. No personal data."
)
TALLY_COLUMNS = ("action_id", "title", "starts_at", "partner", "partner_name", *ACTION_METRICS, "production_ratio", "conversion", "show_rate")
UNIQUE_COLUMNS = ("action_id", "title", "starts_at", "unique_rsvp_yes", "unique_attended", "show_rate")
COALITION = "(coalition)"
AGGREGATE_COLUMNS = ("action_id", "title", "starts_at", "partners", "pledged", "rsvp_yes", "attended", "asks_sent", "delivered", "opted_out", "production_ratio")


def tallies_rows(book: TallyBook, names: dict[str, str]) -> Iterator[list[object]]:
    for action_id in newest_first(book):
        record = book.action_record(action_id)
        title, starts = (record.action.title, local_start(record.action)) if record else ("", "")
        for partner, c in sorted(book.counts(action_id).items()):
            if any(c.values()):
                yield [action_id, _text(title), starts, partner, _text(names.get(partner, "")), *(c[m] for m in ACTION_METRICS),
                       _blank(ratio(c["attended"], c["pledged"])), _blank(ratio(c["rsvp_yes"], asks_sent(c))), _blank(ratio(c["showed"], c["rsvp_yes"]))]


def unique_rows(book: TallyBook) -> Iterator[list[object]]:
    """Per action the people with an RSVP yes and who attended, each once, and the show rate
    (attended ÷ RSVP yes, of those who said yes); then the coalition: people across every
    posted action."""
    for action_id in newest_first(book):
        record = book.action_record(action_id)
        people, total = book.people.in_action(action_id), summed(book.counts(action_id).values())
        yield [action_id, _text(record.action.title) if record else "", local_start(record.action) if record else "",
               people["rsvp_yes"], people["attended"], _blank(ratio(total["showed"], total["rsvp_yes"]))]
    totals = book.coalition().totals
    yield [COALITION, "every posted action", "", totals.unique_rsvp_yes, totals.unique_attended, _blank(totals.show_rate)]


def aggregate_rows(book: TallyBook) -> Iterator[list[object]]:
    for action_id in newest_first(book):
        record = book.action_record(action_id)
        per_partner = [c for c in book.counts(action_id).values() if any(c.values())]
        total = summed(per_partner)
        counts = [len(per_partner), total["pledged"], total["rsvp_yes"], total["attended"], asks_sent(total), total["delivered"], total["opted_out"]]
        production = "" if suppressed(total["attended"]) or suppressed(total["pledged"]) else _blank(ratio(total["attended"], total["pledged"]))
        yield [action_id, _text(record.action.title) if record else "", local_start(record.action) if record else "",
               *(suppress(n) for n in counts), production]


def local_start(action: ActionEvent) -> str:
    """When the action starts, in its own zone, ISO 8601 to the second (``2026-12-01T18:00:00-08:00``)."""
    return action.starts_at.astimezone(ZoneInfo(action.time_zone)).isoformat(timespec="seconds")


def suppressed(n: int) -> bool:
    return 1 <= n <= 10


def suppress(n: int) -> int | str:
    return SUPPRESSED if suppressed(n) else n


def tallies_csv(book: TallyBook, names: dict[str, str]) -> Iterator[str]:
    return _csv(TALLY_COLUMNS, tallies_rows(book, names))


def aggregate_csv(book: TallyBook, note_line: bool = False) -> Iterator[str]:
    """The aggregate CSV: a header row and data, so it loads as is in pandas and spreadsheets.
    ``note_line`` puts ``SUPPRESSION_NOTE`` first, as a ``#`` line (``pandas.read_csv(comment="#")``);
    otherwise the note travels beside the file (the CLI writes it next to it, HTTP in a header)."""
    return _csv(AGGREGATE_COLUMNS, aggregate_rows(book), note=f"# {SUPPRESSION_NOTE}" if note_line else None)


def unique_csv(book: TallyBook) -> Iterator[str]:
    """People per action and coalition-wide, each counted once: a header row and data."""
    return _csv(UNIQUE_COLUMNS, unique_rows(book))


def for_excel(chunks: Iterable[str], bom: bool) -> Iterable[str]:
    """``chunks``, after ``BOM`` when ``bom``."""
    return itertools.chain([BOM], chunks) if bom else chunks


def _csv(columns: Iterable[str], rows: Iterable[list[object]], note: str | None = None) -> Iterator[str]:
    """CSV text in chunks of about 64 KiB, so a large export streams. Text in the rows is always
    quoted (numbers never): a reader told that ``#`` starts a comment, as the note line asks
    pandas to be, does not cut a title such as "Rally #5" short."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    if note:
        buf.write(note + "\n")
    csv.writer(buf, lineterminator="\n").writerow(columns)
    for row in rows:
        writer.writerow(row)
        if buf.tell() > 65536:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _text(value: str) -> str:
    """Free text that a spreadsheet would run as a formula is quoted (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _blank(value: float | None) -> float | str:
    return "" if value is None else value
