"""Tables for people: `turnout tallies` prints a table (JSON on request), the demo's live table
fits 80 columns without cutting a partner's name, exports give times in the action's zone."""

import csv
import io
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from click.testing import CliRunner
from rich.console import Console

from connectors.demo import PARTNERS
from connectors.tally_table import action_table
from connectors.web.exports import aggregate_csv, tallies_csv
from contracts.events import ActionEvent
from contracts.facts import ActionRecord, Pledge
from contracts.tallies import TallyBook
from streams.cli import main
from tests.factories import action

FIGURES = {"pledged": 40, "rsvp_yes": 1234, "attended": 987, "production_ratio": 0.7512, "show_rate": 0.6401, "asked_sms": 20000, "asked_email": 31000,
           "delivered": 45678, "opted_out": 321, "signups": 23456}
ACTION = {"action_id": "rally-1201", "title": "Rally for Fair Care Funding",
          "partners": [{"partner": pid, **FIGURES} for pid, *_ in PARTNERS], "totals": FIGURES}
COALITION = {"partners": ACTION["partners"], "totals": {**FIGURES, "actions": 2}}


def rendered(table, width: int = 80) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.file.getvalue()


def test_a_title_is_printed_as_text_never_as_markup_or_terminal_codes():
    """Titles come from partners (a record older than the ingress's refusal of control characters)."""
    text = rendered(action_table({**ACTION, "title": "ctl\x00\x1b[31mred [bold]loud[/bold]"}))
    assert "\x1b" not in text and "\x00" not in text and "[bold]loud[/bold]" in text


def test_the_live_table_fits_80_columns_and_keeps_every_name_and_figure():
    text = rendered(action_table(ACTION))
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    for pid, *_ in PARTNERS:
        row = next(line for line in text.splitlines() if line.strip().startswith(pid))
        assert row.split() == [pid, "40", "1234", "987", "75%", "64%", "51000", "45678", "321"], row  # the show rate: the figure Mobilize users read first
    assert "…" not in text


def test_asks_not_delivered_are_said_under_the_table():
    # An outside probe at the default settings: `turnout tallies` printed "asked 186, delivered 83"
    # and nothing of the 113 that expired (nor, for a later alert, of 79 waiting for the morning).
    figures = {**FIGURES, "asked_sms": 300, "asked_email": 0, "delivered": 83, "sending": 0, "in_doubt": 0, "deferred": 79,
               "expired": 113, "cancelled": 1, "failed": 2}
    text = rendered(action_table({**ACTION, "totals": figures}))
    assert "Not delivered: 79 waiting for an allowed hour (deferred), 113 expired, 1 cancelled, 2 failed" in " ".join(text.split())
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    assert "Not delivered" not in rendered(action_table({**ACTION, "totals": {**figures, "deferred": 0, "expired": 0, "cancelled": 0, "failed": 0}}))


@contextmanager
def tally_api(token: str):
    """A stand-in for the web app's tally API (the real one needs a broker): the same paths and JSON."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = {"/v1/tallies": COALITION, "/v1/actions/rally-1201/tallies": ACTION}.get(self.path)
            status = 401 if self.headers.get("Authorization") != f"Bearer {token}" else 200 if body else 404
            payload = json.dumps(body if status == 200 else {"detail": "no partner has posted action 'x' (yet)"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_turnout_tallies_prints_a_table_or_json_and_refusals_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    with tally_api("t0k") as url:
        env = {"TURNOUT_URL": url, "TURNOUT_ORGANIZER_TOKEN": "t0k", "COLUMNS": "80"}
        r = runner.invoke(main, ["tallies"], env=env)
        assert r.exit_code == 0 and "the coalition: 2 actions" in r.output and "{" not in r.output, r.output
        assert all(pid in r.output for pid, *_ in PARTNERS) and "23456" in r.output
        assert max(len(line) for line in r.stdout.splitlines()) <= 80  # in a pipe too (README: fits 80 columns)
        r = runner.invoke(main, ["tallies", "--action", "rally-1201", "--json"], env=env)
        assert r.exit_code == 0 and json.loads(r.stdout) == ACTION
        r = runner.invoke(main, ["tallies", "--action", "x"], env=env)
        # (the last line: a test that ran before may have left a log handler on a closed stream)
        assert r.exit_code == 1 and r.stderr.splitlines()[-1] == "Error: the web app refused (404): no partner has posted action 'x' (yet)"
        r = runner.invoke(main, ["tallies", "--url", url + "/"], env={**env, "TURNOUT_ORGANIZER_TOKEN": "wrong"})
        assert r.exit_code == 1 and "refused (401)" in r.output and "TURNOUT_ORGANIZER_TOKEN" in r.output


def test_exports_give_start_times_in_the_actions_zone_to_the_second():
    raw = {**action("rally-1"), "starts_at": "2026-12-02T02:00:00.123456+00:00"}
    book = TallyBook()
    book.apply("action", "rally-1", ActionRecord(partner="union-a", action=ActionEvent.model_validate(raw)))
    book.apply("pledge", "rally-1|union-a", Pledge(action_id="rally-1", partner="union-a", count=40, occurred_at=ActionEvent.model_validate(raw).occurred_at, event_id="p"))
    (row,) = csv.DictReader(io.StringIO("".join(tallies_csv(book, {}))))
    assert row["starts_at"] == "2026-12-01T18:00:00-08:00"  # Los Angeles, no microseconds
    (agg,) = csv.DictReader(io.StringIO("".join(aggregate_csv(book))))
    assert agg["starts_at"] == "2026-12-01T18:00:00-08:00" and agg["pledged"] == "40"


def test_a_long_partner_id_and_large_figures_still_fit_80_columns_with_nothing_cut():
    """An outside probe: a 58-character id (a valid one) pushed the table to 119 columns, and an
    80-column terminal cut the figures ("4…") and dropped the show rate."""
    long_id = "east-bay-neighborhood-tenants-and-seniors-alliance-oakland"
    data = {**ACTION, "partners": [{"partner": long_id, **FIGURES, "pledged": 1_000_000}, *ACTION["partners"]],
            "totals": {**FIGURES, "pledged": 1_000_040}}
    text = rendered(action_table(data))
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80 and "…" not in text
    assert "".join(line.split()[0] for line in text.splitlines() if line.strip() and line.split()[0] in long_id) == long_id
    first = next(line for line in text.splitlines() if line.strip().startswith("east-bay"))
    assert first.split()[1:] == ["1000000", "1234", "987", "75%", "64%", "51000", "45678", "321"], first
