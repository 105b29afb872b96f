"""Aggregates never reveal one partner: what a partner sees of the others, table by table."""

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from connectors.web.dashboard.disclosure import NOT_SHOWN, others, rest_line
from connectors.web.dashboard.view import REST, Viewer, build_view
from contracts.events import ActionEvent
from contracts.facts import ActionRecord, Attendance, Pledge
from contracts.tallies import TallyBook
from tests.factories import action

NOW = datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)
ALL = ("pledged", "rsvp_yes", "attended", "sent", "delivered", "failed", "sending", "in_doubt", "deferred", "expired", "cancelled", "opted_out")


def c(**counts: int) -> Counter:
    return Counter(counts)


# (others' counts, what "union-a" may see of them, how many partners the aggregate covers)
CASES = {
    "nobody else: nothing to hide": ({}, dict.fromkeys(ALL, 0), 0),
    "one other partner is never shown (the issue's partners: 1)": (
        {"faith-b": c(pledged=90, attended=12)}, dict.fromkeys(ALL, None), 1),
    "two others are not shown, not even their zeros": (
        {"faith-b": c(pledged=90), "seniors-c": c(pledged=10)}, dict.fromkeys(ALL, None), 2),
    "three others who all pledged: the pledge sum and the zeros are shown": (
        {"faith-b": c(pledged=90), "seniors-c": c(pledged=10), "tenants-d": c(pledged=5)},
        {**dict.fromkeys(ALL, 0), "pledged": 105}, 3),
    "three others, but one made every check-in: attended is that partner's, not shown": (
        {"faith-b": c(pledged=90, attended=40), "seniors-c": c(pledged=10), "tenants-d": c(pledged=5)},
        {**dict.fromkeys(ALL, 0), "pledged": 105, "attended": None}, 3),
    "texts from two of four others: sent and delivered withheld": (
        {"faith-b": c(pledged=1, asked_sms=50, delivered=48), "seniors-c": c(pledged=1, asked_email=7, delivered=7),
         "tenants-d": c(pledged=1), "student-e": c(pledged=1)},
        {**dict.fromkeys(ALL, 0), "pledged": 4, "sent": None, "delivered": None}, 4),
    "sms and email asks of three partners add up to one shown figure": (
        {"faith-b": c(asked_sms=5), "seniors-c": c(asked_email=6), "tenants-d": c(asked_sms=1, asked_email=1)},
        {**dict.fromkeys(ALL, 0), "sent": 13}, 3),
    "partners with only counts the dashboard does not show are not covered": (
        {"faith-b": c(pledged=90), "seniors-c": c(rsvp_via_sms=3), "tenants-d": c(showed=1)}, dict.fromkeys(ALL, None), 1),
    "expired and cancelled asks are figures like the others": (
        {"faith-b": c(cancelled=3), "seniors-c": c(expired=1, cancelled=1), "tenants-d": c(expired=2)},
        {**dict.fromkeys(ALL, 0), "expired": None, "cancelled": None}, 3),
    "the viewer's own counts never make up the three": (
        {"union-a": c(pledged=500, attended=300), "faith-b": c(pledged=9, attended=2), "seniors-c": c(pledged=1, attended=1)},
        dict.fromkeys(ALL, None), 2),
}


@pytest.mark.parametrize("counts, expected, covered", CASES.values(), ids=CASES.keys())
def test_a_partner_sees_others_only_summed_over_three_or_more(counts, expected, covered):
    assert others(counts, "union-a") == (expected, covered)


def record(action_id: str, starts: datetime) -> ActionRecord:
    return ActionRecord(partner="union-a", action=ActionEvent.model_validate({**action(action_id), "starts_at": starts.isoformat()}))


def book_with(pledges: dict[str, dict[str, int]], attended: dict[str, dict[str, int]]) -> TallyBook:
    """Actions started an hour ago: {action: {partner: count}} of pledges and of check-ins."""
    book = TallyBook()
    for a in {*pledges, *attended}:
        book.apply("action", a, record(a, NOW - timedelta(hours=1)))
    for a, by in pledges.items():
        for p, n in by.items():
            book.apply("pledge", f"{a}|{p}", Pledge(action_id=a, partner=p, count=n, occurred_at=NOW, event_id=f"{a}-{p}"))
    for a, by in attended.items():
        for p, n in by.items():
            for i in range(n):
                at = NOW - timedelta(minutes=i)
                book.apply("attendance", f"{a}|{p}{i}", Attendance(action_id=a, person_key=f"{p}{i}", attended_at=at, attended_by=p))
    return book


def view_of(book: TallyBook, viewer: str, action_id: str):
    return build_view(book, {}, Viewer(role="partner", partner=viewer), action_id, NOW, 14)


def test_the_rest_of_a_one_partner_coalition_is_not_shown_anywhere_on_the_page():
    """The issue's case: union-a and faith-b only, and an action only faith-b worked on."""
    book = book_with({"lock-x": {"union-a": 20, "faith-b": 90}, "b-only": {"faith-b": 30}},
                     {"lock-x": {"union-a": 2, "faith-b": 7}, "b-only": {"faith-b": 11}})
    view = view_of(book, "union-a", "lock-x")

    own, rest = view.action.rows
    assert (own.partner, own.pledged, own.attended) == ("union-a", 20, 2)
    # Not even how many: "(1 partner)" told union-a that exactly one other partner worked on it (an outside probe).
    assert (rest.name, rest.partners, rest.note) == (REST, None, NOT_SHOWN)
    assert [getattr(rest, f) for f in ALL] == [None] * len(ALL) and rest.production_ratio is None
    totals = view.action.totals
    assert (totals.pledged, totals.attended, totals.partners, totals.note) == (None, None, None, NOT_SHOWN)  # 110 - 20 would be faith-b's 90
    # Nor whether a partner it may not see pledged: no production column for faith-b's pledge alone.
    assert view.action.has_pledges and not view_of(book, "union-a", "b-only").action.has_pledges
    # No line of faith-b's check-ins: the rest's line reads "not shown" (null points), as every
    # rest figure does, not nothing (an outside probe: the chart said "No check-ins yet.").
    assert [(s.partner, s.name, s.points is None) for s in view.action.checkins] == [("union-a", "union-a", False), (None, REST, True)]
    summaries = {a.action_id: (a.pledged, a.attended) for a in view.actions}
    assert summaries == {"lock-x": (None, None), "b-only": (None, None)}
    # The header adds only what union-a may see: its own figures.
    assert (view.header.pledged, view.header.attended) == (20, 2) and view.header.note
    rest_capacity = view.capacity[-1]
    assert (rest_capacity.partner, rest_capacity.pledged, rest_capacity.attended, rest_capacity.note) == (None, None, None, NOT_SHOWN)
    assert "faith-b" not in view.model_dump_json()


def test_with_three_other_partners_the_rest_and_the_totals_are_shown():
    book = book_with({"rally": {"union-a": 20, "faith-b": 90, "seniors-c": 10, "tenants-d": 5}},
                     {"rally": {"union-a": 2, "faith-b": 7, "seniors-c": 3, "tenants-d": 1}})
    view = view_of(book, "union-a", "rally")
    rest = view.action.rows[-1]
    assert (rest.partners, rest.pledged, rest.attended, rest.production_ratio, rest.note) == (3, 105, 11, round(11 / 105, 4), None)
    assert (view.action.totals.pledged, view.action.totals.attended) == (125, 13)
    assert [s.partner for s in view.action.checkins] == ["union-a", None]
    assert (view.header.pledged, view.header.attended, view.header.note) == (125, 13, None)
    assert [(a.pledged, a.attended) for a in view.actions] == [(125, 13)]
    assert (view.capacity[-1].pledged, view.capacity[-1].attended, view.capacity[-1].note) == (105, 11, None)


def test_sums_across_actions_leave_out_what_was_withheld_so_nothing_can_be_subtracted():
    """rally has three other partners, b-only one: neither the header nor the rest of the
    coalition across actions may include b-only's figures (the header minus rally's totals
    would otherwise be faith-b's b-only pledge)."""
    book = book_with({"rally": {"union-a": 20, "faith-b": 90, "seniors-c": 10, "tenants-d": 5}, "b-only": {"faith-b": 30}}, {})
    view = view_of(book, "union-a", "rally")
    assert view.header.pledged == 125 and view.header.note
    assert {a.action_id: a.pledged for a in view.actions} == {"rally": 125, "b-only": None}
    rest = view.capacity[-1]
    assert (rest.pledged, rest.note) == (105, "only actions with 3 or more other partners in a figure")


T = [NOW + timedelta(minutes=10 * i) for i in range(6)]
LINES = {
    "each partner alone at its own minute: one point, the total, at the last": (
        {"grace": {T[0]: 7}, "eastside": {T[1]: 1}, "oak": {T[2]: 2}}, [(T[2], 10)]),
    "three partners in each step: a point per step": (
        {"a": {T[0]: 1, T[1]: 2}, "b": {T[0]: 1, T[1]: 1}, "c": {T[0]: 4, T[1]: 1}}, [(T[0], 6), (T[1], 10)]),
    "a last step of one partner is added to the point before it, which moves to its minute": (
        {"a": {T[0]: 1}, "b": {T[0]: 1}, "c": {T[0]: 1}, "d": {T[1]: 5}}, [(T[1], 8)]),
    "steps of fewer than three wait until three have added to them": (
        {"a": {T[0]: 2, T[3]: 1}, "b": {T[1]: 3}, "c": {T[2]: 1, T[3]: 2}, "d": {T[4]: 1}, "e": {T[5]: 1}}, [(T[2], 6), (T[5], 11)]),
}


@pytest.mark.parametrize("per_partner, expected", LINES.values(), ids=LINES.keys())
def test_the_rests_check_in_line_steps_only_where_three_partners_added(per_partner, expected):
    """An outside probe: the line's steps were each partner's own count (7, +1, +2), however many
    partners the line covers. Every step of it (from nothing to the first point, from one point
    to the next) must be made by at least 3 partners, and the last point is the line's total."""
    assert rest_line(per_partner) == expected


def test_a_partner_reads_no_other_partners_count_off_the_rests_check_in_line():
    book = book_with({}, {})
    book.apply("action", "rally", record("rally", NOW - timedelta(hours=1)))
    for partner, n, minute in (("grace", 7, 10), ("eastside", 1, 20), ("oak", 2, 30), ("union-a", 1, 5)):
        for i in range(n):
            book.apply("attendance", f"rally|{partner}{i}", Attendance(action_id="rally", person_key=f"{partner}{i}",
                                                                       attended_at=NOW + timedelta(minutes=minute), attended_by=partner))
    lines = {s.partner: s.points for s in view_of(book, "union-a", "rally").action.checkins}
    assert lines == {"union-a": [(NOW + timedelta(minutes=5), 1)], None: [(NOW + timedelta(minutes=30), 10)]}


def test_organizers_see_every_figure_whatever_the_group_size():
    book = book_with({"b-only": {"faith-b": 30}}, {"b-only": {"faith-b": 11}})
    view = build_view(book, {}, Viewer(role="organizer"), "b-only", NOW, 14)
    assert [(r.partner, r.pledged, r.attended) for r in view.action.rows] == [("faith-b", 30, 11)]
    assert (view.action.totals.pledged, view.header.pledged, view.header.note) == (30, 30, None)


def test_a_rest_row_shown_with_some_figures_withheld_says_so_without_contradicting_its_count():
    """An outside probe: "Rest of the coalition (3 partners) (not shown: fewer than 3 partners)"."""
    from connectors.web.dashboard.view import SOME_NOT_SHOWN

    book = book_with({"rally": {"union-a": 20, "faith-b": 90, "seniors-c": 10, "tenants-d": 5}}, {"rally": {"faith-b": 7}})
    rest = view_of(book, "union-a", "rally").action.rows[-1]
    assert (rest.partners, rest.pledged, rest.attended, rest.note) == (3, 105, None, SOME_NOT_SHOWN)
