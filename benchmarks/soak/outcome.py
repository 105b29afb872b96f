"""What a scenario found, and the summary table of a soak run."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.table import Table


@dataclass
class Outcome:
    """One scenario's figures. ``problems`` is empty when every check held (PASS)."""

    scenario: str
    size: str
    seconds: float = 0.0
    rate: str = ""
    lost: int | None = None
    double: int | None = None
    in_doubt: int | None = None
    got_503: int | None = None
    problems: list[str] = field(default_factory=list)
    #: Further figures worth printing (kills and when, recovery times, attempt counts…).
    figures: dict[str, object] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems


def _n(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def summary(outcomes: list[Outcome], console: Console) -> None:
    table = Table("scenario", "size", "seconds", "rate", "lost", "double", "in doubt", "503s seen", "result",
                  title="turnout soak: load and faults")
    for o in outcomes:
        result = "[green]PASS[/]" if o.passed else "[red]FAIL[/]"
        table.add_row(o.scenario, o.size, f"{o.seconds:,.1f}", o.rate, _n(o.lost), _n(o.double), _n(o.in_doubt), _n(o.got_503), result)
    console.print(table)
    for o in outcomes:
        if o.figures:
            console.print(f"[bold]{o.scenario}[/]: " + escape("; ".join(f"{k} {v}" for k, v in o.figures.items())))
        for problem in o.problems:
            console.print(f"[red]{o.scenario}: {escape(problem)}[/]", highlight=False)
