"""What one viewer may see of the tallies: the dashboard's read model, counts only.

An organizer sees every partner. A partner sees its own rows in full and the rest of the
coalition folded into one aggregate row ("Rest of the coalition"), never another partner's
name or figures, and no aggregate that would give one partner's figures away (``disclosure``:
fewer than 3 other partners, not shown). Nothing here has a person in it: the tallies hold
counts, not people.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from contracts.tallies import TallyBook, add_action, production_ratio, ratio, summed

from ..pages.words import when
from .disclosure import NOT_SHOWN, Figures, figures, others, plus, rest_line, shown_sum

Trend = Literal["rising", "falling", "steady", "too few actions"]
REST = "Rest of the coalition"


class Viewer(BaseModel, frozen=True):
    role: Literal["organizer", "partner"]
    partner: str | None = None
    email: str | None = None  # the signed-in account; None for the organizer token
    admin: bool = False  # may invite and remove accounts: its partner's, or (organizers) anyone's

    def sees(self, partner: str) -> bool:
        return self.role == "organizer" or partner == self.partner


class PartnerRow(BaseModel):
    partner: str | None  # None: an aggregate of other partners
    name: str
    own: bool = False
    partners: int | None = 1  # how many partners the row covers (None: not shown, with the aggregate it counts)
    note: str | None = None  # why some figures are missing (None: not shown, fewer than 3 partners)


class Row(PartnerRow):
    pledged: int | None = 0
    rsvp_yes: int | None = 0
    attended: int | None = 0
    production_ratio: float | None = None
    sent: int | None = 0
    delivered: int | None = 0
    failed: int | None = 0
    sending: int | None = 0  # of "sent": handed over, no answer from the provider yet
    in_doubt: int | None = 0  # of "sent": the provider may have them, with no answer (never resent)
    deferred: int | None = 0  # not sent yet: waiting for an allowed hour (quiet hours) or room in the provider's queue
    expired: int | None = 0  # never sent: no allowed hour was left before the action (or the provider's queue held it past its window)
    cancelled: int | None = 0  # never sent: decided against at the moment of sending (opted out, consent withdrawn, erased, ...)
    opted_out: int | None = 0
    show_rate: float | None = None  # of the people who said yes through the partner, the share who came (own rows; organizers: all)
    no_show: bool = False  # pledged, the action has started, and nobody attended


class Series(BaseModel):
    partner: str | None
    name: str
    points: list[tuple[datetime, int]] | None  # cumulative check-ins at each minute that had any; None: not shown (the rest's, to a partner)
    style: int = 0  # the line's look (colour, dash, marker): the partner's place in the coalition, so it never changes
    note: str | None = None  # why ``points`` is None


class ActionView(BaseModel):
    action_id: str
    title: str | None
    starts_at: datetime | None
    time_zone: str | None
    starts_local: str | None = None  # the start in the action's own zone, as its texts write it
    started: bool = True  # False: "turned out" is only "so far"
    has_pledges: bool = False  # any partner pledged for it (otherwise there is nothing to measure production against)
    rows: list[Row]
    totals: Row
    checkins: list[Series]


class ActionSummary(BaseModel):
    action_id: str
    title: str | None
    starts_at: datetime | None
    time_zone: str | None = None
    starts_local: str | None = None
    pledged: int | None
    attended: int | None


class CapacityRow(PartnerRow):
    actions: int | None = 0  # actions pledged to (the rest of the coalition: those whose pledged figure is shown)
    pledged: int | None = 0
    attended: int | None = 0
    production_ratio: float | None = None
    show_rate: float | None = None  # own rows (organizers: every row): of its RSVP yeses across actions, the share who came
    recent: list[float] = []  # production ratio of each of the last actions pledged to, oldest first
    trend: Trend | None = None


class Header(BaseModel):
    active_actions: int
    pledged: int
    rsvp_yes: int
    attended: int
    sent: int
    delivered: int
    note: str | None = None  # a partner's header leaves out figures it may not see


class People(BaseModel):
    """For organizers only: the people behind the figures, each counted once however many
    partners know them, and how records became people (no partner sees this: overlap and
    merges are about other partners' people)."""

    rsvp_yes: int  # across the active actions, like the header
    attended: int
    rsvp_yes_all: int  # across every posted action
    attended_all: int
    merges: int
    overlap: int


class DashboardView(BaseModel):
    viewer: Viewer
    version: int
    generated_at: datetime
    header: Header
    actions: list[ActionSummary]
    action: ActionView | None
    capacity: list[CapacityRow]
    people: People | None = None


HEADER = ("pledged", "rsvp_yes", "attended", "sent", "delivered")
LEFT_OUT = "count only what you may see: figures of fewer than 3 other partners are left out"
PARTIAL = "only actions with 3 or more other partners in a figure"


def build_view(book: TallyBook, names: dict[str, str], viewer: Viewer, action_id: str | None, now: datetime, active_days: int) -> DashboardView:
    ordered = newest_first(book)
    starts = {a: _starts(book, a) for a in ordered}
    started = {a for a, at in starts.items() if at is None or at <= now}
    active = [a for a, at in starts.items() if at is None or at >= now - timedelta(days=active_days)]
    split = {a: _split(book.counts(a), viewer) for a in ordered}
    totals = {a: plus(seen, rest) for a, (seen, rest, _) in split.items()}
    header, left_out = shown_sum([split[a][0] for a in active] + [split[a][1] for a in active], HEADER)
    summaries = [
        ActionSummary(action_id=a, title=_title(book, a), starts_at=starts[a], time_zone=_zone(book, a), starts_local=_local(book, a),
                      pledged=totals[a]["pledged"], attended=totals[a]["attended"])
        for a in ordered
    ]
    action_id = shown_action(ordered, action_id)
    return DashboardView(
        viewer=viewer,
        version=book.records,
        generated_at=now,
        header=Header(active_actions=len(active), **header, note=LEFT_OUT if left_out else None),
        actions=summaries,
        action=None if action_id is None else _action(book, names, viewer, action_id, action_id in started, split[action_id]),
        capacity=_capacity(book, names, viewer, ordered, started, split),
        people=_people(book, active) if viewer.role == "organizer" else None,
    )


def _people(book: TallyBook, active: list[str]) -> People:
    coalition = book.coalition()
    now = book.people.across(active)
    return People(rsvp_yes=now["rsvp_yes"], attended=now["attended"], rsvp_yes_all=coalition.totals.unique_rsvp_yes,
                  attended_all=coalition.totals.unique_attended, merges=coalition.identity.merges, overlap=coalition.identity.overlap)


Split = tuple[Figures, Figures, int]


def _split(counts: dict[str, Counter[str]], viewer: Viewer) -> Split:
    """One action's figures as the viewer may see them: (its own, the rest of the coalition
    with withheld figures as None, how many other partners the rest covers). An organizer's
    own is everyone's."""
    if viewer.partner is None:
        return figures(summed(counts.values())), dict.fromkeys(figures(Counter()), 0), 0
    rest, covered = others(counts, viewer.partner)
    return figures(counts.get(viewer.partner, Counter())), rest, covered


def shown_action(ordered: list[str], action_id: str | None) -> str | None:
    """The action the dashboard shows: the one asked for if the tallies know it, else the newest
    (``ordered``: ``newest_first``)."""
    return action_id if action_id in ordered else (ordered[0] if ordered else None)


def newest_first(book: TallyBook) -> list[str]:
    """Actions by start time, newest first; actions known only from pledges or check-ins last."""
    timed = sorted((a for a in book.action_ids() if _starts(book, a)), key=lambda a: (_starts(book, a), a), reverse=True)
    return timed + sorted(a for a in book.action_ids() if not _starts(book, a))


def _action(book: TallyBook, names: dict[str, str], viewer: Viewer, action_id: str, started: bool, split: Split) -> ActionView:
    counts = {p: c for p, c in book.counts(action_id).items() if any(c.values())}
    if viewer.partner is not None:
        counts.setdefault(viewer.partner, Counter())
    seen, rest, covered = split
    rows = [_row(p, names, c, viewer, started) for p, c in sorted(counts.items()) if viewer.sees(p)]
    if covered:
        rows.append(_aggregate(rest, covered))
    record = book.action_record(action_id)
    checkins = book.checkins(action_id)
    lines = {p: _cumulative(per_minute) for p, per_minute in checkins.items() if viewer.sees(p)}
    rest_points = rest_line({p: per_minute for p, per_minute in checkins.items() if not viewer.sees(p)})
    if rest_points:
        lines[None] = rest_points
    hidden = viewer.partner is not None and not rest_points  # fewer than 3 other partners checked anyone in
    styles = line_styles(names, checkins, viewer)
    return ActionView(
        action_id=action_id,
        title=record.action.title if record else None,
        starts_at=record.action.starts_at if record else None,
        time_zone=record.action.time_zone if record else None,
        starts_local=_local(book, action_id),
        started=started,
        has_pledges=any(row.pledged for row in rows),  # as far as the viewer may see: a hidden partner's pledge adds no column
        rows=rows,
        totals=_aggregate(plus(seen, rest), len(counts), name="All partners").model_copy(
            update={"show_rate": _show_rate(summed(counts.values())) if viewer.role == "organizer" else None}),
        checkins=[
            Series(partner=p, name=names.get(p, p) if p else REST, points=points, style=styles.get(p, REST_STYLE))
            for p, points in sorted(lines.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
        ] + ([Series(partner=None, name=REST, points=None, style=REST_STYLE, note=NOT_SHOWN)] if hidden else []),
    )


#: The style of the "Rest of the coalition" line a partner sees (the page draws it grey and dotted).
REST_STYLE = -1


def line_styles(names: dict[str, str], checkins: dict[str, object], viewer: Viewer) -> dict[str | None, int]:
    """Each partner's chart style: its place in the coalition file (``names`` keeps its order;
    then partners only the facts know, by id), so a line keeps its look when another partner
    gets its first check-in, or joins the coalition at the end of the file. A partner viewer's
    own line is style 0 (its place would say how many partners come before it)."""
    if viewer.role != "organizer":
        return {viewer.partner: 0}
    every = list(names) + sorted(p for p in checkins if p not in names)
    return {p: i for i, p in enumerate(every)}


def _capacity(book: TallyBook, names: dict[str, str], viewer: Viewer, ordered: list[str], started: set[str], split: dict[str, Split]) -> list[CapacityRow]:
    """Per partner across every action: pledged vs attended, and the ratio's trend over time."""
    ratios: dict[str, list[float]] = {}
    totals: dict[str, Counter[str]] = {}
    actions: Counter[str] = Counter()
    for a in reversed(ordered):  # oldest first
        for partner, c in book.counts(a).items():
            add_action(totals.setdefault(partner, Counter()), c)
            if c["pledged"]:
                actions[partner] += 1
                if a in started:
                    ratios.setdefault(partner, []).append(production_ratio(c) or 0.0)
    if viewer.partner is not None:
        totals.setdefault(viewer.partner, Counter())
    rows = []
    for partner, c in sorted(totals.items()):
        if viewer.sees(partner) and (c["pledged"] or c["attended"] or partner == viewer.partner):
            recent = ratios.get(partner, [])[-5:]
            rows.append(CapacityRow(
                partner=partner, name=names.get(partner, partner), own=partner == viewer.partner, actions=actions[partner],
                pledged=c["pledged"], attended=c["attended"], production_ratio=production_ratio(c),
                show_rate=_show_rate(c), recent=recent, trend=trend(recent),
            ))
    covered = sum(1 for p, c in totals.items() if not viewer.sees(p) and (c["pledged"] or c["attended"]))
    if covered:
        rows.append(_rest_capacity([split[a][1] for a in ordered if split[a][2]], covered))
    return rows


def _rest_capacity(cells: list[Figures], covered: int) -> CapacityRow:
    """The rest of the coalition across actions: the sum of the per-action figures that were
    shown (the production ratio over the actions pledged to where both of its figures were)."""
    total, left_out = shown_sum(cells, ("pledged", "attended"))
    both, _ = shown_sum([c for c in cells if c["pledged"] and c["attended"] is not None], ("pledged", "attended"))
    shown = {f: total[f] if any(c[f] is not None for c in cells) else None for f in total}
    note = NOT_SHOWN if None in shown.values() else PARTIAL if left_out else None
    # Counted over the same cells as its pledged figure, so "actions pledged" and "pledged" agree.
    actions = sum(1 for c in cells if c["pledged"]) if shown["pledged"] is not None else None
    # Withheld whole, it does not say how many partners it covers either (as ``_aggregate``).
    partners = None if all(v is None for v in shown.values()) else covered
    return CapacityRow(partner=None, name=REST, partners=partners, actions=actions, **shown,
                       production_ratio=ratio(both["attended"], both["pledged"]), note=note)


def trend(ratios: list[float]) -> Trend:
    """The latest action's production ratio against the mean of the ones before it: a move of
    10 percentage points or more either way is a trend."""
    if len(ratios) < 2:
        return "too few actions"
    change = round(ratios[-1] - sum(ratios[:-1]) / (len(ratios) - 1), 4)
    return "rising" if change >= 0.1 else "falling" if change <= -0.1 else "steady"


def _row(partner: str, names: dict[str, str], c: Counter[str], viewer: Viewer, started: bool) -> Row:
    return Row(partner=partner, name=names.get(partner, partner), own=partner == viewer.partner, **_figures(c), show_rate=_show_rate(c),
               no_show=started and c["pledged"] > 0 and c["attended"] == 0)


def _show_rate(c: Counter[str]) -> float | None:
    """Of the people whose RSVP yes is credited to the partner, the share who attended."""
    return ratio(c["showed"], c["rsvp_yes"])


def _aggregate(f: Figures, partners: int, name: str = REST) -> Row:
    """A row summing several partners; an aggregate withheld whole does not say how many either
    ("(1 partner)" would say exactly one other worked on the action)."""
    withheld = None in f.values()
    production = None if f["attended"] is None or f["pledged"] is None else ratio(f["attended"], f["pledged"])
    count = None if all(v is None for v in f.values()) else partners
    note = (NOT_SHOWN if count is None else SOME_NOT_SHOWN) if withheld else None
    return Row(partner=None, name=name, partners=count, **f, production_ratio=production, note=note)


#: The note of an aggregate shown with some figures withheld: "(3 partners) (not shown: fewer
#: than 3 partners)" read as a contradiction (an outside probe).
SOME_NOT_SHOWN = "some figures not shown: fewer than 3 of them made each"


def _figures(c: Counter[str]) -> dict[str, int | float | None]:
    return {**figures(c), "production_ratio": production_ratio(c)}


def _cumulative(per_minute: Counter[datetime]) -> list[tuple[datetime, int]]:
    total, points = 0, []
    for minute in sorted(m for m, n in per_minute.items() if n):
        total += per_minute[minute]
        points.append((minute, total))
    return points


def _starts(book: TallyBook, action_id: str) -> datetime | None:
    record = book.action_record(action_id)
    return record.action.starts_at if record else None


def _zone(book: TallyBook, action_id: str) -> str | None:
    record = book.action_record(action_id)
    return record.action.time_zone if record else None


def _local(book: TallyBook, action_id: str) -> str | None:
    """The start as the action's texts write it, in its own zone (never the viewer's)."""
    record = book.action_record(action_id)
    return when(record.action.starts_at, record.action.time_zone, "en") if record else None


def _title(book: TallyBook, action_id: str) -> str | None:
    record = book.action_record(action_id)
    return record.action.title if record else None
