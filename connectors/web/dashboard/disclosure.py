"""What a partner may see of other partners' figures (DESIGN invariant 6: aggregates never
reveal one partner).

A partner sees its own figures in full. Figures of other partners reach it only summed, and
only when the sum hides who made it:

- an aggregate of fewer than ``MIN_OTHERS`` (3) other partners is not shown at all: with one
  other partner it *is* that partner's figures, with two each can be had by subtracting the
  other's own knowledge of itself;
- inside an aggregate of 3 or more, a figure that fewer than 3 of them contribute to (a
  non-zero count) is not shown either: "Rest of the coalition: 57 texts sent" from one partner
  that sends texts is that partner's count. A zero is shown: nobody made it.

A withheld figure is ``None``, read as "not shown: fewer than 3 partners". Anything summed
across actions (the coalition header, the rest of the coalition across actions) adds only
figures that were shown, so no subtraction between two numbers on the page recovers a
withheld one. Organizers see everything and never pass through here.

Pure functions: counts in, figures out.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Callable, Iterable, Mapping

from contracts.tallies import asks_sent

MIN_OTHERS = 3
NOT_SHOWN = "not shown: fewer than 3 partners"

Figures = dict[str, int | None]

#: The figures the dashboard shows, each read from one partner's raw counts.
FIGURES: dict[str, Callable[[Counter[str]], int]] = {
    "pledged": lambda c: c["pledged"],
    "rsvp_yes": lambda c: c["rsvp_yes"],
    "attended": lambda c: c["attended"],
    "sent": asks_sent,
    "delivered": lambda c: c["delivered"],
    "failed": lambda c: c["failed"],
    "sending": lambda c: c["sending"],
    "in_doubt": lambda c: c["in_doubt"],
    "deferred": lambda c: c["deferred"],
    "expired": lambda c: c["expired"],
    "cancelled": lambda c: c["cancelled"],
    "opted_out": lambda c: c["opted_out"],
}


def figures(counts: Counter[str], names: Iterable[str] = FIGURES) -> dict[str, int]:
    """One partner's (or an organizer's sum's) figures, in full."""
    return {f: FIGURES[f](counts) for f in names}


def others(per_partner: Mapping[str, Counter[str]], viewer: str, names: Iterable[str] = FIGURES) -> tuple[Figures, int]:
    """The figures of every partner but ``viewer``, summed, each withheld (``None``) unless the
    small-group rule lets it through; and how many other partners the aggregate covers (those
    with a non-zero figure among ``names``)."""
    names = tuple(names)
    covered = [fs for p, c in per_partner.items() if p != viewer and any((fs := figures(c, names)).values())]
    if not covered:
        return {f: 0 for f in names}, 0
    out: Figures = {}
    for f in names:
        contributors = sum(1 for fs in covered if fs[f])
        total = sum(fs[f] for fs in covered)
        out[f] = total if len(covered) >= MIN_OTHERS and (total == 0 or contributors >= MIN_OTHERS) else None
    return out, len(covered)


def plus(a: Figures, b: Figures) -> Figures:
    """Figure by figure; withheld in either is withheld in the sum."""
    return {f: None if a[f] is None or b.get(f) is None else a[f] + b[f] for f in a}


def shown_sum(cells: Iterable[Figures], names: Iterable[str] = FIGURES) -> tuple[dict[str, int], bool]:
    """Cells added up figure by figure, leaving out the withheld ones; and whether any was left out."""
    total, left_out = dict.fromkeys(names, 0), False
    for cell in cells:
        for f in total:
            if cell[f] is None:
                left_out = True
            else:
                total[f] += cell[f]
    return total, left_out


def rest_line(per_partner: Mapping[str, Mapping[datetime, int]]) -> list[tuple[datetime, int]]:
    """The check-in chart's "Rest of the coalition" line, cumulative, with a point only where at
    least ``MIN_OTHERS`` partners added to it since the point before (the first: since nothing):
    any step of the line is a sum of three or more partners' check-ins, never one partner's. A
    last step of fewer is added to the point before it, which moves to its minute: the last point
    is the line's total. Empty if the partners are fewer (the line is not shown then)."""
    points: list[tuple[datetime, int]] = []
    total, adding = 0, set()
    minutes = sorted({m for counts in per_partner.values() for m, n in counts.items() if n})
    for minute in minutes:
        for partner, counts in per_partner.items():
            if n := counts.get(minute, 0):
                total += n
                adding.add(partner)
        if len(adding) >= MIN_OTHERS:
            points.append((minute, total))
            adding = set()
    if adding and points:
        points[-1] = (minutes[-1], total)
    return points
