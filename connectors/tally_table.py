"""Tallies as terminal tables (`turnout tallies`, the demo's live table) that fit 80 columns.

They take the tally API's JSON (``ActionTallies`` or ``CoalitionTallies``). Nothing is cut: the
figures get short two-line headers and no vertical rules, each figure column is as wide as its
widest figure, and a partner id too long for what is left runs on over more lines.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from contracts.people import CONTROL

#: (header, how to read it from a row of figures)
ACTION_COLUMNS = (
    ("pledged", lambda r: r["pledged"]),
    ("RSVP\nyes", lambda r: r["rsvp_yes"]),
    ("turned\nout", lambda r: r["attended"]),
    ("prod-\nuction", lambda r: _percent(r.get("production_ratio"))),
    ("show\nrate", lambda r: _percent(r.get("show_rate"))),
    ("asked", lambda r: r["asked_sms"] + r["asked_email"]),
    ("deliv-\nered", lambda r: r["delivered"]),
    ("opted\nout", lambda r: r["opted_out"]),
)
COALITION_COLUMNS = (("sign-\nups", lambda r: r["signups"]), *ACTION_COLUMNS[:6], ("deliv-\nered", lambda r: r["delivered"]))


#: The asks not delivered, said under an action's table when there are any: (figure, in words).
NOT_DELIVERED = (("deferred", "waiting for an allowed hour (deferred)"), ("expired", "expired"), ("cancelled", "cancelled"),
                 ("failed", "failed"), ("in_doubt", "in doubt"), ("sending", "being handed over"))


def action_table(data: dict[str, Any]) -> Table:
    """One action's figures per partner, and the total, and under them the asks not delivered
    (the columns would not fit 80). The title is a partner's words: shown as text (never rich
    markup), any control character as "?" (never a terminal code)."""
    title = f"{data.get('title') or data['action_id']} ({data['action_id']})" if data.get("title") else data["action_id"]
    table = _table(Text(CONTROL.sub("?", title)), ACTION_COLUMNS, data["partners"], data["totals"])
    said = [f"{n} {words}" for key, words in NOT_DELIVERED if (n := data["totals"].get(key, 0))]
    if said:
        table.caption, table.caption_justify = "Not delivered: " + ", ".join(said), "left"
    return table


def coalition_table(data: dict[str, Any]) -> Table:
    """Every partner's figures across actions, and the coalition's."""
    actions = data["totals"].get("actions", 0)
    title = f"the coalition: {actions} action{'' if actions == 1 else 's'}"
    return _table(title, COALITION_COLUMNS, data["partners"], data["totals"])


def _table(title: str | Text, columns: tuple, rows: list[dict[str, Any]], totals: dict[str, Any]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left", padding=(0, 0, 0, 1))  # one space between columns
    table.add_column("partner", overflow="fold")  # the one column that gives way: an id runs on, never cut
    cells = [[str(read(r)) for _, read in columns] for r in (*rows, totals)]
    for i, (header, _) in enumerate(columns):
        table.add_column(header, justify="right", no_wrap=True, min_width=max(len(line) for line in (*header.split("\n"), *(c[i] for c in cells))))
    for row, figures in zip(rows, cells):
        table.add_row(row["partner"], *figures)
    table.add_section()
    table.add_row("total", *cells[-1], style="bold")
    return table


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def natural_width(renderable: RenderableType) -> int:
    """How wide ``renderable`` is printed whole: into a file or a pipe rich would cut it at 80
    columns ("turnout.even…")."""
    return Console(width=100_000).measure(renderable).maximum
