"""CSV sign-in sheets → partner events: header mapping, line-numbered problems, stable ids."""

import io
from datetime import datetime, timedelta, timezone

import pytest

from connectors.csv_import import CsvError, column_map, read
from contracts.events import partner_event

AT = datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc)
SHEET = (__import__("pathlib").Path(__file__).parents[1] / "fixtures" / "signin-sheet.csv").read_text()


def load(text=SHEET, kind="signup", action=None, **kw):
    return read(io.StringIO(text), kind, partner="union-a", secret="s3cret", action=action, default_at=AT, **kw)


def test_common_headers_are_recognized():
    m = column_map(["First Name", "Last Name", "Phone", "E-mail", "ZIP", "Text OK"])
    assert m == {"given_name": "First Name", "family_name": "Last Name", "phone": "Phone", "email": "E-mail", "postal_code": "ZIP", "sms_consent": "Text OK"}


def test_good_rows_become_valid_events_and_bad_rows_are_reported_by_line():
    rows, problems = load()
    assert [r.line for r in rows] == [2, 3, 8]
    for r in rows:
        partner_event.validate_python(r.event)
    assert rows[0].event["person"]["phone"] == "(510) 555-0123" and rows[0].event["consent"]["sms"]["granted"] is True
    assert rows[1].event["consent"]["sms"]["granted"] is False  # no phone, nothing to grant
    by_line = {p.line: p.reason for p in problems}
    assert set(by_line) == {4, 6, 7}
    assert "person.phone" in by_line[4]
    assert "person.email" in by_line[6]
    assert by_line[7].startswith("sms_consent: neither yes nor no") and "maybe" not in by_line[7]  # errors never echo the value


def test_ids_depend_on_content_not_on_position_or_run():
    rows, _ = load()
    again, _ = load()
    assert [r.event["event_id"] for r in rows] == [r.event["event_id"] for r in again]
    header, *lines = SHEET.splitlines()
    shuffled, _ = load("\n".join([header, *reversed(lines)]))
    assert {r.event["event_id"] for r in shuffled} == {r.event["event_id"] for r in rows}
    other_partner, _ = read(io.StringIO(SHEET), "signup", partner="faith-b", secret="s3cret", action=None, default_at=AT)
    assert not {r.event["event_id"] for r in other_partner} & {r.event["event_id"] for r in rows}
    assert all("5550123" not in r.event["event_id"] for r in rows)


def test_a_copy_of_a_sheet_with_its_phones_and_emails_written_otherwise_is_the_same_rows():
    # An outside probe: a check-in sheet re-saved with "(415) 555-0120" for "415-555-0120" checked
    # back in someone whose check-in had been undone (a new event id: a new check-in).
    sheet = "phone,email,date\n415-555-0120,Ana@Example.org,2026-11-20T09:00:00-08:00\n"
    rows, _ = load(sheet, kind="checkin", action="rally-1")
    for copy in ("(415) 555-0120,ana@example.org,2026-11-20T09:00:00-08:00", "+1 415 555 0120,ANA@EXAMPLE.ORG,2026-11-20T09:00:00-08:00"):
        again, _ = load("phone,email,date\n" + copy + "\n", kind="checkin", action="rally-1")
        assert again[0].event["event_id"] == rows[0].event["event_id"]
    other, _ = load("phone,email,date\n415-555-0121,ana@example.org,2026-11-20T09:00:00-08:00\n", kind="checkin", action="rally-1")
    assert other[0].event["event_id"] != rows[0].event["event_id"]


def test_rsvp_and_checkin_need_an_action_and_read_status():
    with pytest.raises(CsvError, match="--action"):
        load(kind="rsvp")
    rows, problems = load("phone,status\n5105550123,no\n5105550124,\n5105550125,later\n", kind="rsvp", action="rally-1")
    assert [r.event["status"] for r in rows] == ["no", "yes"]
    assert problems[0].line == 4 and "status" in problems[0].reason
    rows, _ = load("email,date\nana@example.org,2026-12-01T18:05:00-08:00\n", kind="checkin", action="rally-1")
    assert rows[0].event["occurred_at"] == "2026-12-01T18:05:00-08:00" and rows[0].event["action_id"] == "rally-1"


def test_mapping_overrides_and_missing_contact_columns():
    rows, _ = load("Cell #,Nom\n5105550123,Zoé\n", extra={"Cell #": "phone", "Nom": "given_name"})
    assert rows[0].event["person"] == {"phone": "5105550123", "given_name": "Zoé"}
    with pytest.raises(CsvError, match="no phone or email"):
        load("name,zip\nAna,94607\n")
    with pytest.raises(CsvError, match="unknown field"):
        load("phone\n5105550123\n", extra={"phone": "mobile"})


def test_sheet_level_consent_applies_to_rows_without_their_own():
    rows, _ = load("phone,email\n5105550123,ana@example.org\n", consent=frozenset({"email"}))
    assert rows[0].event["consent"]["email"]["granted"] is True and rows[0].event["consent"]["sms"]["granted"] is False


def test_a_do_not_contact_list_becomes_opt_outs_of_the_channels_given():
    # A partner's own "do not text" list: each row an opt-out (names and consent columns unused).
    sheet = "First Name,Phone,Email,Text OK\nAna,5105550123,,yes\nBen,,ben@example.org,\nCy,555,,\n"
    rows, problems = load(sheet, kind="opt_out", stop=frozenset({"sms", "email"}))
    events = [partner_event.validate_python(r.event) for r in rows]
    assert [(e.type, e.person.phone, e.person.email, e.channels) for e in events] == [
        ("opt_out", "+15105550123", None, ("email", "sms")), ("opt_out", None, "ben@example.org", ("email", "sms"))]
    assert [p.line for p in problems] == [4] and "person.phone" in problems[0].reason
    with pytest.raises(CsvError, match="--stop"):
        load(sheet, kind="opt_out")
    # Only the phone and email are read: a ZIP, a date or a consent column that would make a
    # sign-up's row bad does not leave the person texted (an outside probe).
    rows, problems = load("First Name,Zip,Phone,Date,Language,SMS Consent\nAna,1234,5105550123,notadate,xx-notalang,maybe\n",
                          kind="opt_out", stop=frozenset({"sms"}))
    assert problems == [] and rows[0].event["person"] == {"phone": "5105550123"}


def test_a_column_named_twice_is_refused_naming_it_never_guessed():
    with pytest.raises(CsvError, match="the header has 2 columns named 'Phone': rename all but one"):
        column_map(["Phone", "Phone", "First Name"])
    with pytest.raises(CsvError, match="columns 'Phone' and 'phone' could both be phone"):
        column_map(["Phone", "phone"])
    with pytest.raises(CsvError, match="columns 'Phone' and 'Mobile' could both be phone: say which with --map"):
        column_map(["Phone", "Mobile"])
    with pytest.raises(CsvError, match="2 columns named 'Cell #'"):
        column_map(["Cell #", "Cell #"], {"Cell #": "phone"})
    with pytest.raises(CsvError, match="--map Cell=phone and --map Tel #=phone: one column per field"):
        column_map(["Cell", "Tel #"], {"Cell": "phone", "Tel #": "phone"})
    # --map settles it, and a repeated column no field reads is not a question.
    assert column_map(["Phone", "Mobile"], {"Mobile": "phone"}) == {"phone": "Mobile"}
    assert column_map(["Phone", "phone"], {"phone": "phone"}) == {"phone": "phone"}
    assert column_map(["Notes", "Phone", "Notes"]) == {"phone": "Phone"}
    with pytest.raises(CsvError, match="'Phone'"):
        load("Phone,Phone,First Name\n5105550124,5105550125,Tia\n")


def test_a_date_the_ingress_would_call_future_is_a_bad_row_already():
    soon, late = (AT + timedelta(minutes=4)).isoformat(), (AT + timedelta(minutes=6)).isoformat()
    rows, problems = load(f"phone,date\n5105550123,{late}\n5105550124,{soon}\n", kind="checkin", action="rally-1", now=AT)
    assert [r.line for r in rows] == [3] and rows[0].event["occurred_at"] == soon
    assert [(p.line, p.reason) for p in problems] == [(2, "occurred_at: is more than 5 minutes in the future")]
    rows, problems = load(f"phone,date\n5105550123,{late}\n", kind="checkin", action="rally-1", now=AT + timedelta(minutes=2))
    assert problems == [] and [r.line for r in rows] == [2]


def test_a_row_without_a_date_in_the_future_names_the_files_time_not_a_column():
    """A sheet saved with a clock in the future: its rows, which have no date column, were said
    to have an occurred_at in the future (an outside probe looked for the column)."""
    future = datetime.now(timezone.utc) + timedelta(days=30)
    rows, problems = read(io.StringIO("phone\n5105550160\n"), "signup", partner="union-a", secret="s3cret", action=None, default_at=future)
    assert rows == [] and [p.line for p in problems] == [2]
    assert problems[0].reason.startswith("occurred_at (no date in the row, so the file's, ") and "in the future" in problems[0].reason


def test_every_problem_of_a_bad_row_is_reported_at_once():
    # An outside probe: a row with a bad phone, a bad email and a 4-digit ZIP was reported for the
    # ZIP alone, so fixing a sheet took a pass per problem.
    sheet = "First Name,Phone,Email,ZIP,Text OK,Date\nAna,555-CALL,ana@@example,9460,maybe,yesterday\n"
    rows, [problem] = load(sheet)
    assert rows == [] and problem.line == 2
    for field in ("person.phone", "person.email", "person.postal_code", "sms_consent", "occurred_at"):
        assert field in problem.reason, (field, problem.reason)


def test_rows_are_posted_in_requests_of_at_most_so_many_events_and_bytes():
    from connectors.ingress_client import encoded, requests

    events = [{"event_id": f"e{i}", "name": "😀" * (i % 7) * 40} for i in range(300)] + [{"event_id": "huge", "name": "x" * 5000}]
    runs = list(requests(events, 50, 4096))
    assert [i for run in runs for i in run] == list(range(len(events)))  # every event once, in order
    assert all(len(run) <= 50 for run in runs)
    assert all(len(encoded(events[run.start : run.stop])) <= 4096 for run in runs[:-1])
    assert runs[-1] == range(300, 301)  # larger than any request: alone, for the caller to report
    # Each run as full as it may be: one event more would break a limit.
    assert all(len(a) == 50 or len(encoded(events[a.start : b.start + 1])) > 4096 for a, b in zip(runs, runs[1:]))
    assert list(requests(events[:10], 500, 1 << 20)) == [range(0, 10)]


def test_the_readme_lists_every_column_name_an_import_reads():
    # A newcomer's "Mail" and "Time" columns were read as fields the README did not name.
    import re
    from pathlib import Path

    from connectors.csv_import import DEFAULT_HEADERS

    readme = Path(__file__).parents[2].joinpath("README.md").read_text()
    section = " ".join(readme[readme.index("- **Columns** are matched"):readme.index('`--map "Cell #=phone"`')].split())
    listed = {re.sub(r"[^a-z0-9]", "", name.lower()) for name in re.findall(r"`([^`]+)`", section)}
    assert {alias for aliases in DEFAULT_HEADERS.values() for alias in aliases} <= listed


def test_a_spreadsheets_leading_apostrophe_is_no_part_of_a_value():
    """An outside probe: "'ann2@example.org" (a spreadsheet's mark for "keep as text") was a
    second person beside "ann2@example.org"; a phone's was already read through, a ZIP's refused."""
    rows, problems = load("email,phone,zip\n'ann2@example.org,,'02139\nann2@example.org,,02139\n,'5105550311,\n", kind="checkin", action="rally-1")
    assert problems == []
    assert rows[0].event["person"] == rows[1].event["person"] == {"email": "ann2@example.org", "postal_code": "02139"}
    assert rows[0].event["event_id"] == rows[1].event["event_id"]  # the same check-in, imported once
    assert rows[2].event["person"]["phone"] == "'5105550311".lstrip("'")
