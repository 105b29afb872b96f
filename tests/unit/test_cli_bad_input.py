"""Bad input from a coalition's data staff: every mistake is one line, a usage error (2) or a
failure (1), said before anything is read, posted or started, and never a traceback."""

import time

import pytest

from connectors.sandbox.signing import EventSigner
from streams.broker import free_port
from streams.settings import Settings
from tests.cli import bare, turnout, turnout_process


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A directory of our own with one partner: no stack runs from it, no setting is given."""
    bare(monkeypatch, tmp_path)
    assert turnout("partners", "add", "union-a", "--name", "Local 1 [east]", "--kind", "union").exit_code == 0
    return tmp_path


@pytest.mark.parametrize("name, value", [("TURNOUT_QUIET_START", "25:00"), ("TURNOUT_QUIET_END", "9pm"), ("TURNOUT_CLOCK", "bogus"),
                                         ("TURNOUT_DEFAULT_REGION", "USA"),
                                         # An outside probe: these passed `turnout settings`, then stopped the worker.
                                         ("TURNOUT_QUIET_START", "21:00+02:00"), ("TURNOUT_QUIET_END", "21:00"),
                                         # And these started, then refused every SendGrid event (403) / every text.
                                         ("TURNOUT_SENDGRID_PUBLIC_KEY", "garbage"), ("TURNOUT_TWILIO_FROM", "5551234")])
def test_a_setting_no_worker_or_import_could_use_is_refused_naming_the_variable(here, name, value):
    r = turnout("partners", "list", env={name: value})
    assert r.exit_code == 1 and r.output.startswith(f"Error: bad configuration: {name}: '{value}' is "), r.output
    assert len(r.output.strip().splitlines()) == 1
    fine = Settings(quiet_start="21:30", quiet_end="08:00", clock="file:/tmp/now", default_region="ca")
    assert (fine.quiet_start, fine.clock, fine.default_region) == ("21:30", "file:/tmp/now", "CA")
    for sender in ("+15105550123", "12345", "898211"):  # a number in E.164, a short code
        assert Settings(twilio_from=sender).twilio_from == sender
    key = EventSigner().public_key  # as SendGrid shows it: base64 of the DER
    assert Settings(sendgrid_public_key=key).sendgrid_public_key == key


def test_a_master_key_too_short_to_guard_anything_is_refused_without_being_shown(here):
    r = turnout("partners", "list", env={"TURNOUT_MASTER_KEY": "x7"})
    assert r.exit_code == 1 and r.output.startswith("Error: bad configuration: TURNOUT_MASTER_KEY: 2 characters, fewer than 16"), r.output
    assert "x7" not in r.output and len(r.output.strip().splitlines()) == 1
    assert Settings(master_key="k" * 16).master_key_bytes() == [b"k" * 16]


@pytest.mark.parametrize("name, value", [
    ("TURNOUT_MAX_BATCH", "0"), ("TURNOUT_MAX_BATCH", "-1"), ("TURNOUT_MAX_BODY_BYTES", "0"), ("TURNOUT_SIGNATURE_TOLERANCE", "-10"),
    ("TURNOUT_COMMIT_INTERVAL", "-1"), ("TURNOUT_SESSION_TIMEOUT", "0"), ("TURNOUT_HEARTBEAT_INTERVAL", "100"), ("TURNOUT_ACK_TIMEOUT", "inf"),
    ("TURNOUT_ACK_TIMEOUT", "nan"), ("TURNOUT_REBALANCE_TIMEOUT", "0")])
def test_a_number_no_process_could_run_with_is_refused_naming_the_variable(here, name, value):
    # An outside probe: TURNOUT_SIGNATURE_TOLERANCE=-10 started, then refused every signed post.
    r = turnout("settings", env={name: value})
    assert r.exit_code == 1 and r.output.startswith("Error: bad configuration: ") and name in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_a_misspelt_setting_is_named_with_the_one_it_looks_like_not_ignored_without_a_word(here):
    r = turnout("settings", env={"TURNOUT_PARTITONS": "4", "TURNOUT_QUIET_STRAT": "22:00", "TURNOUT_WHATEVER": "1"})
    assert r.exit_code == 0, r.output
    assert "warning: TURNOUT_PARTITONS is no setting (did you mean TURNOUT_PARTITIONS?): it is ignored" in r.output
    assert "warning: TURNOUT_QUIET_STRAT is no setting (did you mean TURNOUT_QUIET_START?)" in r.output
    assert "warning: TURNOUT_WHATEVER is no setting: it is ignored" in r.output


def test_commands_that_read_the_broker_say_in_one_line_that_it_cannot_be_reached(here):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {"KAFKA_BOOTSTRAP_SERVERS": address, "TURNOUT_MASTER_KEY": "k" * 32, "TURNOUT_FIND_STACK": "false",
           "TURNOUT_PERSON_KEY_SECRET": "p" * 32, "TURNOUT_ORGANIZER_TOKEN": "t"}
    # The servers too (an outside probe: the web app exited 3 with a traceback, a worker 1 with Faust's).
    for args in (["accounts", "list"], ["accounts", "invite", "lead@example.org", "--organizer"], ["keys", "rewrap"], ["topics", "ensure"],
                 ["worker"], ["web", "--port", str(free_port())]):
        started = time.monotonic()
        r = turnout_process(here, *args, env=env)
        assert time.monotonic() - started < 15, args  # `topics ensure` waited 30 s for a broker that is not starting
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.strip() == (f"Error: cannot reach the Kafka broker at {address}: is `turnout up` still running, "
                                    "or is KAFKA_BOOTSTRAP_SERVERS right?"), (args, r.stderr)


def test_a_broker_address_that_is_no_address_is_named_as_given(here):
    """An outside probe: `not a url` got "cannot reach the Kafka broker" naming nothing."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": "not a url", "TURNOUT_MASTER_KEY": "k" * 32, "TURNOUT_FIND_STACK": "false",
           "TURNOUT_PERSON_KEY_SECRET": "p" * 32}
    r = turnout_process(here, "topics", "ensure", env=env)
    assert r.returncode == 1 and "Error: cannot reach the Kafka broker at 'not a url'" in r.stderr, r.stderr


def test_sign_refuses_a_body_that_is_not_utf8(here):
    (here / "body.json").write_bytes(b'{"given_name": "Jos\xe9"}')
    r = turnout("sign", "union-a", "--file", "body.json")
    assert r.exit_code == 2 and "body.json is not UTF-8 (byte 20)" in r.output, r.output
    assert "a bug?" not in r.output and "curl" not in r.output


def test_sign_reads_a_file_saved_with_a_byte_order_mark(here):
    """An outside probe: a body saved by Notepad (a UTF-8 BOM) got Python's "decode using utf-8-sig"."""
    (here / "body.json").write_bytes(b'\xef\xbb\xbf{"type": "signup"}')
    r = turnout("sign", "union-a", "--file", "body.json", "--url", "http://127.0.0.1:8000")
    assert r.exit_code == 0 and r.output.rstrip().endswith("""--data-binary '{"type": "signup"}'"""), r.output


@pytest.mark.parametrize("body, says", [("notjson", "not JSON (line 1, column 1: Expecting value)"),
                                        ('{"type": "signup",}', "not JSON (line 1, column 19: Expecting property name"),
                                        ('"signup"', "not an event (a JSON object) or a list of events")])
def test_sign_refuses_a_body_the_web_app_would_refuse_as_unreadable(here, body, says):
    r = turnout("sign", "union-a", "--data", body)
    assert r.exit_code == 2 and f"Invalid value for --data: {says}" in r.output, r.output
    assert "curl" not in r.output


@pytest.mark.parametrize("args, says", [
    (["sandbox", "--faults", "{share_429: 0.3}"], "Invalid value for '--faults': not JSON"),
    (["sandbox", "--port", "99999"], "99999 is not in the range 1<=x<=65535"),
    (["broker", "--port", "70000"], "70000 is not in the range 1<=x<=65535"),
    (["web", "--port", "0"], "0 is not in the range 1<=x<=65535"),
])
def test_servers_refuse_bad_options_before_starting(here, args, says):
    r = turnout_process(here, *args)
    assert r.returncode == 2 and says in r.stderr, r.stderr
    assert "a bug?" not in r.stderr


@pytest.mark.parametrize("args, says", [
    (["--aggregate", "--unique"], "give at most one of --aggregate or --unique"),
    (["--note-line"], "--note-line goes with --aggregate"),
    (["--out", "no-such-dir/tallies.csv"], "no-such-dir is not a directory"),
])
def test_export_refuses_options_it_cannot_honour_before_reading_anything(here, args, says):
    r = turnout("export", *args)  # no broker anywhere: the options are checked first
    assert r.exit_code == 2 and says in r.output, r.output


def test_an_action_id_that_is_not_one_is_refused_before_any_row_or_request(here):
    (here / "rsvps.csv").write_text("First Name,Phone\nAna,+15105550123\n")
    for args in (["tallies", "--action", "a/b"], ["import", "union-a", "rsvps.csv", "--type", "rsvp", "--action", "Rally 1", "--dry-run"]):
        r = turnout(*args)
        assert r.exit_code == 2 and "is not a valid id (use lower-case letters, digits and dashes" in r.output, (args, r.output)
        assert "line 2" not in r.output and "no `turnout up`" not in r.output


@pytest.mark.parametrize("args", [["up", "--organizer", "notanemail", "--port", "1"], ["accounts", "invite", "bad email", "--organizer"]])
def test_an_email_that_is_not_one_is_a_usage_error_before_anything_starts(here, args):
    # An outside probe: `turnout up --organizer notanemail` started the broker, the sandbox and the
    # web app, then stopped them and exited 1; `accounts invite` exited 1 where `people forget` exits 2.
    r = turnout(*args)
    assert r.exit_code == 2 and "Invalid value for" in r.output and "email address" in r.output, r.output
    assert not (here / ".turnout").exists()  # nothing started


@pytest.mark.parametrize("kind", ["rsvp", "checkin"])
def test_an_rsvp_or_checkin_import_without_its_action_is_a_usage_error_before_the_sheet_is_read(here, kind):
    (here / "rsvps.csv").write_text("First Name,Phone\nAna,not a phone\n")
    r = turnout("import", "union-a", "rsvps.csv", "--type", kind, "--dry-run")
    assert r.exit_code == 2, r.output  # a usage error, as `turnout import --help` says (it exited 1, as a failure)
    assert f"Error: --action is required with --type {kind}" in r.output and "import --help' for help" in r.output, r.output
    assert "line 2" not in r.output and "read rsvps.csv" not in r.output, r.output


@pytest.mark.parametrize("args", [["--type", "opt_out"], ["--type", "signup", "--stop", "sms"], ["--type", "opt_out", "--stop", "sms", "--consent", "sms"]])
def test_an_opt_out_sheet_needs_its_channels_and_nothing_else_before_the_sheet_is_read(here, args):
    (here / "stop.csv").write_text("Phone\nnot a phone\n")
    r = turnout("import", "union-a", "stop.csv", *args, "--dry-run")
    assert r.exit_code == 2 and "Error: " in r.output and "line 2" not in r.output, r.output


def test_an_empty_sheet_is_said_to_be_empty(here):
    (here / "sheet.csv").write_bytes(b"")
    r = turnout("import", "union-a", "sheet.csv", "--type", "signup", "--dry-run")
    assert r.exit_code == 1 and r.output == "Error: sheet.csv: the file is empty (no header row)\n", r.output


def test_headers_names_and_settings_are_shown_as_written_never_read_as_markup(here):
    (here / "sheet [v2].csv").write_text("First Name,Phone,Notes [/internal]\nAna,+15105550123,x\n")
    r = turnout("import", "union-a", "sheet [v2].csv", "--type", "signup", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "read sheet [v2].csv as UTF-8" in r.output and "not used: 'Notes [/internal]'" in r.output
    assert "Local 1 [east]" in turnout("partners", "list").output
    shown = turnout("settings", env={"TURNOUT_SMS_FOOTER": "Reply [/STOP]"}).output
    assert "Reply [/STOP]" in shown
    assert "TURNOUT_SIGNIN_FAILURES_PER_ACCOUNT " in shown  # whole at 80 columns, to copy into a .env


def test_mobilize_connect_names_an_unknown_partner_before_asking_for_its_key(here):
    r = turnout("mobilize", "connect", "nobody", "101", input="")
    assert r.exit_code == 1 and "no partner 'nobody'" in r.output and "API key" not in r.output, r.output


def test_mobilize_poll_says_when_no_partner_is_connected(here):
    env = {"KAFKA_BOOTSTRAP_SERVERS": "unused:9092", "TURNOUT_MASTER_KEY": "k" * 32}
    r = turnout("mobilize", "poll", "--once", env=env)
    assert r.exit_code == 1 and "is connected to Mobilize, so there is nothing to poll" in r.output, r.output


def test_a_column_mapped_twice_is_named_not_called_malformed(here):
    (here / "sheet.csv").write_text("First Name,Phone\nAna,+15105550123\n")
    r = turnout("import", "union-a", "sheet.csv", "--type", "signup", "--map", "Phone=phone", "--map", "Phone=email", "--dry-run")
    assert r.exit_code == 2 and "--map names column 'Phone' more than once" in r.output, r.output
    assert turnout("import", "union-a", "sheet.csv", "--type", "signup", "--map", "Phone", "--dry-run").exit_code == 2


def test_an_import_the_web_app_refuses_says_why_in_its_words_not_its_json(here):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Refuses(BaseHTTPRequestHandler):  # a web app that reads another coalition file
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"detail":"unknown or disabled partner (X-Turnout-Partner)","errors":[]}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    (here / "sheet.csv").write_text("First Name,Phone\nAna,+15105550123\n")
    with ThreadingHTTPServer(("127.0.0.1", 0), Refuses) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        r = turnout("import", "union-a", "sheet.csv", "--type", "signup", "--url", f"http://127.0.0.1:{server.server_port}")
        server.shutdown()
    assert r.exit_code == 1, r.output
    assert ("Error: stopped after 0 of 1 row (re-running is safe): the web app refused (401): unknown or disabled partner "
            "(X-Turnout-Partner) (is the coalition file the one that web app reads?)") in r.output, r.output
    assert '{"detail"' not in r.output


@pytest.mark.parametrize("demo", [False, True])
def test_up_refuses_a_broken_coalition_file_before_starting_anything(here, demo):
    broken = here / (".turnout/demo-coalition.toml" if demo else "coalition.toml")
    broken.parent.mkdir(exist_ok=True)
    broken.write_bytes(b"\xff\xfe[partners]")
    r = turnout_process(here, "up", "--port", str(free_port()), *(["--demo"] if demo else []))
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().startswith("Error: ") and "not a readable TOML file" in r.stderr and "\n" not in r.stderr.strip(), r.stderr
    assert "a bug?" not in r.stderr and r.stdout == "" and not (here / ".turnout" / "logs").exists()  # no broker, no logs


@pytest.mark.parametrize("command", [["worker"], ["web"]])
def test_a_server_without_the_person_key_secret_says_so_not_a_bug(here, command):
    env = {"KAFKA_BOOTSTRAP_SERVERS": "unused:9092", "TURNOUT_MASTER_KEY": "k" * 32, "TURNOUT_ORGANIZER_TOKEN": "t", "TURNOUT_FIND_STACK": "false"}
    r = turnout_process(here, *command, env=env)
    assert r.returncode == 1 and r.stderr.startswith("Error: TURNOUT_PERSON_KEY_SECRET is not set: ") and "a bug?" not in r.stderr, r.stderr


@pytest.mark.parametrize("clock, says", [("missing.txt", "missing.txt: No such file or directory"),
                                         ("garbage.txt", "Invalid isoformat string: 'garbage'")])
def test_a_worker_refuses_a_file_clock_that_tells_no_time(here, clock, says):
    (here / "garbage.txt").write_text("garbage\n")
    env = {"KAFKA_BOOTSTRAP_SERVERS": "unused:9092", "TURNOUT_MASTER_KEY": "k" * 32, "TURNOUT_PERSON_KEY_SECRET": "p" * 32,
           "TURNOUT_CLOCK": f"file:{clock}"}
    r = turnout("worker", env=env)
    assert r.exit_code == 1 and r.output.startswith(f"Error: TURNOUT_CLOCK=file:{clock} tells no time: {says} "), r.output


def test_an_unknown_partner_kind_is_a_usage_error_listing_the_kinds(here):
    r = turnout("partners", "add", "faith-b", "--name", "Grace", "--kind", "church")
    assert r.exit_code == 2 and "'church' is not one of 'backbone', 'union', 'faith'" in r.output, r.output
    assert "faith-b" not in (here / "coalition.toml").read_text()


def test_an_organizer_invitation_refuses_a_role_rather_than_ignoring_it(here):
    r = turnout("accounts", "invite", "lead@example.org", "--organizer", "--role", "admin")
    assert r.exit_code == 2 and "--role is for a partner's accounts" in r.output, r.output


def test_a_sheet_in_utf16_without_its_byte_order_mark_is_refused_not_read_as_nul_ridden_utf8(here):
    (here / "sheet.csv").write_bytes("First Name,Phone\nAna,+15105550123\n".encode("utf-16-le"))
    r = turnout("import", "union-a", "sheet.csv", "--type", "signup", "--dry-run")
    assert r.exit_code == 1 and r.output.startswith("Error: sheet.csv: its header row has NUL bytes: UTF-16 without a byte-order mark"), r.output
    (here / "sheet.csv").write_bytes("First Name,Phone\nAna,+15105550123\n".encode("utf-16"))  # with its BOM, as Excel writes it
    assert turnout("import", "union-a", "sheet.csv", "--type", "signup", "--dry-run").exit_code == 0


def test_a_web_address_without_its_scheme_is_refused_before_it_is_used(here):
    r = turnout("action-network", "token", "union-a", env={"TURNOUT_PUBLIC_URL": "turnout.example.org"})
    assert r.exit_code == 1 and "TURNOUT_PUBLIC_URL: 'turnout.example.org' is not a web address (http:// or https://" in r.output, r.output
    assert "action-network/" not in r.output  # no URL a partner could not use is printed (nor the token rotated)
    (here / "sheet.csv").write_text("First Name,Phone\nAna,+15105550123\n")
    r = turnout("import", "union-a", "sheet.csv", "--type", "signup", "--url", "127.0.0.1:8000")
    assert r.exit_code == 2 and "'127.0.0.1:8000' is not a web address" in r.output, r.output


def test_up_refuses_a_file_clock_that_tells_no_time_before_starting_anything(here):
    r = turnout_process(here, "up", "--port", str(free_port()), env={"TURNOUT_CLOCK": "file:missing.txt"})
    assert r.returncode == 1 and r.stderr.startswith("Error: TURNOUT_CLOCK=file:missing.txt tells no time: missing.txt: No such file"), r.stderr
    assert not (here / ".turnout" / "logs").exists()  # no broker, no worker started


@pytest.mark.parametrize("command", ["web", "sandbox"])
def test_a_server_whose_port_is_taken_says_so_in_one_line(here, command):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"KAFKA_BOOTSTRAP_SERVERS": "unused:9092", "TURNOUT_MASTER_KEY": "k" * 32, "TURNOUT_ORGANIZER_TOKEN": "t" * 32,
               "TURNOUT_PERSON_KEY_SECRET": "p" * 32, "TURNOUT_WEB_HOST": "127.0.0.1"}
        r = turnout_process(here, command, "--port", str(port), env=env)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert r.stderr.strip() == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use (another turnout web app or sandbox? --port picks another)"



@pytest.mark.parametrize("columns", ["80", "120", ""])
def test_the_privacy_report_is_whole_and_fits_the_width_it_is_read_at(here, columns):
    """Rich cut a table to 80 columns when its output was not a terminal ("turnout.even…"), and
    an 80-column terminal cut every topic's name; in a pipe, lines were 1,935 characters wide (an
    outside probe). One block per place, wrapped to the terminal (100 columns in a pipe)."""
    from streams.privacy import inventory

    r = turnout_process(here, "privacy", "report", env={"COLUMNS": columns} if columns else None)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "…" not in r.stdout and max(map(len, lines)) <= int(columns or 100), max(lines, key=len)
    assert all(f"{place.where} ({place.kind})" in lines for place in inventory(Settings(_env_file=None)))
    assert "1 days" not in r.stdout


def test_a_broker_on_a_taken_port_says_so_in_one_line(here):
    """It printed the address of whatever held the port as its own, and exited 0 (an outside probe)."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        r = turnout("broker", "--port", str(held.getsockname()[1]))
    assert r.exit_code == 1 and r.output.startswith("Error: cannot listen on 127.0.0.1:") and "KAFKA_BOOTSTRAP_SERVERS" not in r.output, r.output


@pytest.mark.parametrize("out", ["", "tallies/"])
def test_an_export_to_no_file_name_is_refused_before_the_read(here, out):
    """'' failed after the whole read with an internal error, and 'x/' wrote a file x (an outside probe)."""
    r = turnout("export", "--out", out)
    assert r.exit_code == 2 and f"{out!r} names no file" in r.output, r.output
    assert not (here / "tallies").exists()


def test_output_cut_short_by_its_reader_is_no_error(here):
    # `turnout privacy report | head` printed "Error: [Errno 32] Broken pipe" once head had its lines.
    import subprocess
    import sys

    from tests.cli import CLEAN_ENV

    r = subprocess.run(["bash", "-o", "pipefail", "-c", f"{sys.executable} -m streams.cli privacy report | head -1"], cwd=here,
                       capture_output=True, text=True, timeout=60, env=CLEAN_ENV)
    assert (r.returncode, r.stdout, r.stderr) == (0, "Personal data in this deployment\n", "")
