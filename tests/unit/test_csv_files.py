"""Partners' CSV files as they really arrive: Windows encodings, semicolons and tabs, dates
without an offset, stray quotes, ragged rows and ZIPs that lost their leading zero."""

import csv
import io
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from connectors.csv_files import decode, open_sheet, parse_when, sniff_delimiter, zip_problem
from connectors.csv_import import CsvError, read
from streams.cli import main

AT = datetime(2026, 11, 20, 18, 0, tzinfo=timezone.utc)
LA = ZoneInfo("America/Los_Angeles")


def load(data: bytes, kind="signup", action=None, **kw):
    sheet = open_sheet(data)
    return read(io.StringIO(sheet.text, newline=""), kind, partner="union-a", secret="s", action=action, default_at=AT,
                delimiter=sheet.delimiter, **kw)


def test_encodings_are_tried_in_the_documented_order():
    name = "José Muñoz"
    assert decode(name.encode("utf-8")) == (name, "UTF-8")
    assert decode(b"\xef\xbb\xbf" + name.encode("utf-8")) == (name, "UTF-8 (with BOM)")
    assert decode(name.encode("cp1252")) == (name, "Windows-1252")
    assert decode(name.encode("utf-16")) == (name, "UTF-16")
    assert decode(b"caf\xe9 \x81") == ("café \x81", "Latin-1")  # 0x81 is undefined in cp1252


def test_a_utf8_sheet_with_a_windows_row_keeps_every_accent_and_names_the_row():
    # Someone pasted a row from a Windows file into a UTF-8 sheet: read whole as Windows-1252,
    # every UTF-8 name became mojibake (JosÃ©) and nothing said which row was different.
    data = "First Name,Phone\nJosé,5105550123\n".encode() + "Zoë,5105550124\n".encode("cp1252") + "Ñandú,5105550125\n".encode()
    text, encoding = decode(data)
    assert text == "First Name,Phone\nJosé,5105550123\nZoë,5105550124\nÑandú,5105550125\n"
    assert encoding == "UTF-8 (line 3 read as Windows-1252)"
    rows, problems = load(data)
    assert problems == [] and [r.event["person"]["given_name"] for r in rows] == ["José", "Zoë", "Ñandú"]
    many = "a\n".encode() + b"\xe9\n" * 7 + "é\n".encode()
    assert decode(many)[1] == "UTF-8 (lines 2-8 read as Windows-1252)"
    assert decode(b"a\n\xe9\n\xe9\nb\n\xe9 \x81\n" + "é\n".encode())[1] == "UTF-8 (lines 2-3 read as Windows-1252, line 5 as Latin-1)"


def test_a_windows_sheet_keeps_its_accents():
    # ’ (0x92) is where Windows-1252 and Latin-1 differ.
    rows, problems = load("First Name,Last Name,Phone\r\nJosé,Muñoz O’Neil,5105550123\r\n".encode("cp1252"))
    assert problems == [] and rows[0].event["person"] == {"given_name": "José", "family_name": "Muñoz O’Neil", "phone": "5105550123"}


def test_the_delimiter_is_sniffed_from_the_header():
    assert sniff_delimiter("First Name;Phone;ZIP\nAna;510;94607\n") == ";"
    assert sniff_delimiter("First Name\tPhone\nAna\t510\n") == "\t"
    assert sniff_delimiter('"Name, full",Phone\n') == ","  # a quoted comma is not a column
    assert sniff_delimiter("phone\n5105550123\n") == ","
    rows, problems = load(b"First Name;Phone;ZIP\nAna;5105550123;94607\nBen;5105550124;94612\n")
    assert problems == [] and [r.event["person"]["given_name"] for r in rows] == ["Ana", "Ben"]


def test_dates_without_an_offset_are_read_in_the_zone_given():
    assert parse_when("2026-12-01T18:05:00-05:00", None) == "2026-12-01T18:05:00-05:00"
    assert parse_when("2026-12-01T18:05:00Z", None) == "2026-12-01T18:05:00+00:00"
    assert parse_when("2026-12-01", LA) == "2026-12-01T00:00:00-08:00"
    assert parse_when("2026-12-01 18:05", LA) == "2026-12-01T18:05:00-08:00"
    assert parse_when("12/1/2026 6:05 PM", LA) == "2026-12-01T18:05:00-08:00"
    assert parse_when("7/4/2026", LA) == "2026-07-04T00:00:00-07:00"
    with pytest.raises(ValueError, match="not a date"):
        parse_when("next tuesday", LA)
    # A time the clocks skip in that zone is refused, not moved an hour (an outside probe).
    with pytest.raises(ValueError, match=r"^2026-03-08 02:30 does not exist in America/Los_Angeles: the clocks go forward an hour then$"):
        parse_when("3/8/2026 2:30 AM", LA)
    assert parse_when("12/31/9999 11:59 PM", LA) == "9999-12-31T23:59:00-08:00"  # the calendar's edge: not an OverflowError
    rows, problems = load(b"phone,date\n5105550123,2026-12-01\n5105550124,soon\n", kind="checkin", action="rally-1", zone=LA)
    assert rows[0].event["occurred_at"] == "2026-12-01T00:00:00-08:00"
    assert problems[0].line == 3 and problems[0].reason.startswith("occurred_at: not a date")
    with pytest.raises(CsvError, match="line 2: the date has no UTC offset: give --tz"):
        load(b"phone,date\n5105550123,2026-12-01\n", kind="checkin", action="rally-1")


def test_an_unbalanced_quote_is_reported_with_its_line_not_swallowed():
    rows, problems = load(b'First,Last,Phone\n"Ana,Diaz,5105550123\nBen,Okafor,5105550124\n')
    assert rows == [] and len(problems) == 1
    assert problems[0].line == 2 and "lines 2-3 were read as one row" in problems[0].reason
    # A quote closed on a later line merges rows too.
    rows, problems = load(b'First,Last,Phone\nAna,"Diaz,5105550123\nBen",Okafor,5105550124\nCy,Li,5105550125\n')
    assert [p.line for p in problems] == [2] and [r.line for r in rows] == [4]


def test_an_unbalanced_quote_in_a_column_nobody_reads_is_reported_not_swallowing_rows():
    """The probe's finding: the stray quote in Notes swallowed the rows after it (or gave Ida
    Kim's phone), with 0 bad rows reported; the lines it ran over read as rows of their own."""
    rows, problems = load(b'First Name,Phone,Notes\nIda,5105550140,"stray quote\nJon,5105550141,ok\nKim,5105550142,ok\n')
    assert rows == [] and [p.line for p in problems] == [2] and "lines 2-4 were read as one row" in problems[0].reason
    rows, problems = load(b'First Name,Notes,Phone\nIda,"stray,5105550140\nJon,ok,5105550141\nKim,ok",5105550142\nLou,ok,5105550143\n')
    assert [p.line for p in problems] == [2] and [r.line for r in rows] == [5]
    assert rows[0].event["person"]["phone"] == "5105550143"


def test_a_value_over_several_lines_in_a_column_nobody_reads_is_fine():
    rows, problems = load(b'Phone,Notes\n5105550123,"came late,\nleft early"\n5105550124,\n')
    assert problems == [] and [r.line for r in rows] == [2, 4]


def test_rows_with_more_or_fewer_values_than_columns_are_reported():
    rows, problems = load(b"First,Last,Phone\nAna,Diaz,5105550123\nBen,Okafor,5105550124,extra\nCy,5105550125\n")
    assert [r.line for r in rows] == [2]
    assert [(p.line, p.reason.split(",")[0]) for p in problems] == [(3, "4 values"), (4, "2 values")]


def test_zips_are_checked_against_the_bundled_data():
    assert zip_problem("94607") is None and zip_problem("94607-1234") is None and zip_problem("02134") is None
    assert "leading zero" in zip_problem("2134")
    assert "not a US ZIP" in zip_problem("946") and "not a US ZIP" in zip_problem("ABCDE")
    assert "bundled ZIP data" in zip_problem("00000")
    assert zip_problem("94607.0") == zip_problem("2139.0") == "is a number a spreadsheet stored (94607.0): format the column as text and export again"
    rows, problems = load(b"Phone,ZIP\n5105550123,2134\n5105550124,94612\n")
    assert [r.line for r in rows] == [3] and problems[0].line == 2 and "person.postal_code has 4 digits" in problems[0].reason
    rows, problems = load(b"Phone,ZIP\n+442079460000,2134\n", region="GB")
    assert problems == []  # only US ZIPs are checked


def test_a_cell_too_long_for_the_csv_module_is_a_bad_row_on_its_line():
    long = b"B" * 140_000  # over the csv module's default field limit (131072)
    rows, problems = load(b"First Name,Phone,ZIP,Notes\nAlpha,5105550240,94607,\n" + long + b",5105550241,94607,\n"
                          b"Gamma,5105550242,94607," + long + b"\n")
    assert [r.line for r in rows] == [2, 4]  # a long value no field reads is no problem
    assert [p.line for p in problems] == [3] and problems[0].reason.startswith("person.given_name: String should have at most 100")
    assert len(problems[0].reason) < 200  # the value is never echoed
    assert csv.field_size_limit() == 131072  # the csv module's limit is as it was


# The same files through `turnout import --dry-run`, as a partner's organizer would run it.

BAD_SHEETS = {
    "cp1252": ("First Name,Last Name,Phone,ZIP\r\nJosé,Muñoz,5105550123,94607\r\n".encode("cp1252"), [],
               "read sheet.csv as Windows-1252, separated by commas; columns: 'First Name' → given_name, 'Last Name' → family_name, 'Phone' → phone, 'ZIP' → postal_code",
               "1 row would be imported, 0 bad rows"),
    "semicolons": (b"First Name;Phone;ZIP\nAna;5105550123;94607\nBen;5105550124;94612\n", [],
                   "separated by semicolons", "2 rows would be imported, 0 bad rows"),
    "tabs": (b"First Name\tPhone\tZIP\tNotes\nAna\t5105550123\t94607\t\n", [],
             "separated by tabs; columns: 'First Name' → given_name, 'Phone' → phone, 'ZIP' → postal_code; not used: 'Notes'",
             "1 row would be imported, 0 bad rows"),
    "plain dates": (b"phone,date\n5105550123,2026-12-01\n", ["--tz", "America/Los_Angeles"], "'date' → occurred_at",
                    "1 row would be imported, 0 bad rows"),
    "unbalanced quote": (b'First,Last,Phone\n"Ana,Diaz,5105550123\nBen,Okafor,5105550124\n', [],
                         "line 2: a quote opened on this line is not closed", "0 rows would be imported, 1 bad row"),
    "extra columns": (b"First,Phone\nAna,5105550123\nBen,5105550124,oops\n", [],
                      "line 3: 3 values, but the header has 2 columns", "1 row would be imported, 1 bad row"),
    "a value short": (b"First,Phone\nAna,5105550123\n5105550124\n", [],
                      "line 3: 1 value, but the header has 2 columns", "1 row would be imported, 1 bad row"),
    "over-long cell": (b"First Name,Phone\nAlpha,5105550123\n" + b"B" * 140_000 + b",5105550124\nGamma,5105550125\n", [],
                       "line 3: person.given_name: String should have at most 100 characters", "2 rows would be imported, 1 bad row"),
    "future date": (b"First Name,Phone,Date\nRay,5105550123,2999-01-01T10:00:00Z\n", [],
                    "line 2: occurred_at: is more than 5 minutes in the future", "0 rows would be imported, 1 bad row"),
    "4-digit ZIP": (b"Phone,ZIP\n5105550123,2134\n", [], "line 2: person.postal_code has 4 digits", "0 rows would be imported, 1 bad row"),
}


def partner_cli(tmp_path, monkeypatch) -> tuple[CliRunner, dict[str, str]]:
    """The CLI in ``tmp_path``, with a coalition file holding partner union-local-1 and no default zone."""
    monkeypatch.chdir(tmp_path)
    env = {"TURNOUT_COALITION": str(tmp_path / "c.toml"), "TURNOUT_TIME_ZONE": ""}
    runner = CliRunner()
    assert runner.invoke(main, ["partners", "add", "union-local-1", "--name", "U", "--kind", "union"], env=env).exit_code == 0
    return runner, env


@pytest.mark.parametrize("name", BAD_SHEETS)
def test_turnout_import_dry_run_reads_real_world_sheets(tmp_path, monkeypatch, name):
    data, args, says, summary = BAD_SHEETS[name]
    runner, env = partner_cli(tmp_path, monkeypatch)
    (tmp_path / "sheet.csv").write_bytes(data)
    kind = ["--type", "checkin", "--action", "rally-1"] if name == "plain dates" else ["--type", "signup"]
    r = runner.invoke(main, ["import", "union-local-1", "sheet.csv", *kind, "--dry-run", *args], env=env)
    assert says in r.output and f"dry run: {summary}" in r.output, r.output
    assert r.exit_code == (1 if "1 bad" in summary else 0), r.output
    assert "Traceback" not in r.output and "5105550123" not in r.output


def test_turnout_import_without_a_zone_says_how_to_give_one(tmp_path, monkeypatch):
    runner, env = partner_cli(tmp_path, monkeypatch)
    (tmp_path / "sheet.csv").write_bytes(b"phone,date\n5105550123,2026-12-01\n")
    r = runner.invoke(main, ["import", "union-local-1", "sheet.csv", "--type", "checkin", "--action", "rally-1", "--dry-run"], env=env)
    assert r.exit_code == 1 and "line 2: the date has no UTC offset: give --tz ZONE" in r.output, r.output
    r = runner.invoke(main, ["import", "union-local-1", "sheet.csv", "--type", "checkin", "--action", "rally-1", "--dry-run"],
                      env={**env, "TURNOUT_TIME_ZONE": "America/New_York"})
    assert r.exit_code == 0, r.output
    # A zone that is a directory of the zone database, not a zone: a usage error, not a traceback.
    r = runner.invoke(main, ["import", "union-local-1", "sheet.csv", "--type", "checkin", "--action", "rally-1", "--dry-run", "--tz", "America"],
                      env=env)
    assert r.exit_code == 2 and "'America' is not an IANA time zone" in r.output, r.output
    r = runner.invoke(main, ["import", "union-local-1", "sheet.csv", "--type", "checkin", "--action", "rally-1", "--dry-run"],
                      env={**env, "TURNOUT_TIME_ZONE": "America"})
    assert r.exit_code != 0 and "is not an IANA time zone" in r.output and "Traceback" not in r.output, r.output


def test_turnout_import_refuses_a_column_named_twice_before_posting(tmp_path, monkeypatch):
    runner, env = partner_cli(tmp_path, monkeypatch)
    (tmp_path / "sheet.csv").write_bytes(b"Phone,Phone,First Name\n5105550124,5105550125,Tia\n")
    # No web app runs: had it tried to post, the error would be a connection's.
    r = runner.invoke(main, ["import", "union-local-1", "sheet.csv", "--type", "signup", "--url", "http://127.0.0.1:9"], env=env)
    assert r.exit_code == 1 and "sheet.csv: the header has 2 columns named 'Phone'" in r.output, r.output
    assert "Traceback" not in r.output and "5105550124" not in r.output


def test_excels_separator_line_names_the_delimiter_and_is_no_header():
    """An outside probe: a sheet starting "sep=;" (Excel's note of its separator) got "no phone or
    email column among ['sep=']"."""
    rows, problems = load(b"sep=;\r\nFirst Name;Phone\r\nAna;510-555-0123\r\n;not-a-phone\r\n")
    assert [r.event["person"] for r in rows] == [{"given_name": "Ana", "phone": "510-555-0123"}]
    assert [p.line for p in problems] == [4]  # lines as the file numbers them
    assert open_sheet(b"SEP=,\nphone\n5105550123\n").delimiter == ","
