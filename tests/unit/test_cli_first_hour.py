"""The CLI in a new user's first hour: it finds the running stack, refuses what `turnout up`
cannot do before starting anything, and says what is wrong in one line."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.sandbox.signing import EventSigner
from streams import running
from streams.broker import free_port
from streams.cli import main
from streams.settings import Settings
from tests.cli import bare, turnout, turnout_process

SENDGRID_KEY = EventSigner().public_key


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A directory of our own: no stack runs from it or its parents, no setting is given."""
    bare(monkeypatch, tmp_path)
    return tmp_path


def turnout_up(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return turnout_process(cwd, "up", *args, env=env)


def fake_stack(directory: Path, pid: int, **settings: str) -> None:
    """A state file as `turnout up` (process ``pid``) writes it."""
    state = running.StackState(pid=pid, started_at="2026-11-24T18:00:00+00:00", web_url=settings.get("TURNOUT_URL", ""),
                               broker=settings.get("KAFKA_BOOTSTRAP_SERVERS", ""), coalition=str(directory / "c.toml"),
                               logs=str(directory / ".turnout" / "logs"), settings=settings)
    running.write(state, directory)


def test_version_and_examples_in_help():
    assert turnout("--version").output.startswith("turnout, version ")
    assert "turnout up --demo" in turnout("--help").output


def test_commands_say_in_one_line_that_nothing_is_running(here):
    for args in (["export"], ["topics", "ensure"], ["worker"], ["mobilize", "poll", "--once"]):
        r = turnout(*args)
        assert r.exit_code == 1, (args, r.output)
        assert f"no `turnout up` is running from {here}" in r.output and "KAFKA_BOOTSTRAP_SERVERS" in r.output, r.output
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    r = turnout("tallies")
    assert r.exit_code == 1 and "no `turnout up` is running" in r.output and "--url" in r.output


def test_commands_use_the_stack_running_from_here_or_a_parent(here):
    broker, web = socket.socket(), socket.socket()  # bound, never listening: nothing answers there
    broker.bind(("127.0.0.1", 0))
    web.bind(("127.0.0.1", 0))
    try:
        b, w = (f"127.0.0.1:{s.getsockname()[1]}" for s in (broker, web))
        fake_stack(here, os.getpid(), KAFKA_BOOTSTRAP_SERVERS=b, TURNOUT_BROKER_FLAVOR="tansu", TURNOUT_URL=f"http://{w}",
                   TURNOUT_ORGANIZER_TOKEN="from-the-stack")
        (here / "sub").mkdir()
        os.chdir(here / "sub")
        r = turnout("export")
        assert r.exit_code == 1 and f"cannot reach the Kafka broker at {b}" in r.output, r.output
        r = turnout("tallies")
        assert r.exit_code == 1 and f"cannot reach http://{w}/" in r.output, r.output
        assert Settings().organizer_token is None and running.with_stack(Settings(), running.find(Path.cwd())).organizer_token.get_secret_value() == "from-the-stack"
        # An explicit setting wins over the stack's; the look-up can be turned off.
        r = turnout("export", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
        assert "at 127.0.0.1:1" in r.output, r.output
        r = turnout("export", env={"TURNOUT_FIND_STACK": "false"})
        assert r.exit_code == 1 and "TURNOUT_FIND_STACK is off" in r.output, r.output
    finally:
        broker.close()
        web.close()


def test_processes_given_a_whole_environment_do_not_look_for_a_stack():
    from streams.stack import child_env

    assert child_env(Settings())["TURNOUT_FIND_STACK"] == "false"


def test_a_stale_state_file_is_ignored(here):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(10)
    fake_stack(here, dead.pid, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert running.find(here) is None
    assert "no `turnout up` is running" in turnout("export").output


def test_up_refuses_a_taken_port_before_starting_anything(here):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = turnout_up(here, "--port", str(port))
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip() == f"Error: port {port} is taken (another turnout up, or another program); choose another with --port (make run PORT=…)"
    assert r.stdout == "" and not (here / ".turnout").exists()  # no broker, no logs, no state file


def test_up_refuses_a_partial_set_of_provider_credentials(here):
    r = turnout_up(here, "--port", str(free_port()), env={"TURNOUT_TWILIO_ACCOUNT_SID": "AC123", "TURNOUT_SENDGRID_API_KEY": "SG.x"})
    assert r.returncode == 1, r.stderr
    line = r.stderr.strip()
    assert line.startswith("Error: provider credentials are only partly set: missing ") and "\n" not in line
    for name in ("TURNOUT_TWILIO_AUTH_TOKEN", "TURNOUT_SENDGRID_PUBLIC_KEY", "TURNOUT_TWILIO_FROM"):
        assert name in line
    assert "TURNOUT_TWILIO_ACCOUNT_SID" not in line and not (here / ".turnout").exists()


def test_up_refuses_a_second_stack_in_the_same_directory_and_zero_workers(here):
    fake_stack(here, os.getpid(), TURNOUT_URL="http://127.0.0.1:8000")
    r = turnout_up(here, "--port", str(free_port()))
    assert r.returncode == 1 and f"a turnout stack is already running from {here} (pid {os.getpid()}" in r.stderr
    r = turnout("up", "--workers", "0")
    assert r.exit_code == 2 and "--workers" in r.output


def test_provider_credentials_are_all_or_nothing():
    assert Settings().sandbox_providers and Settings().provider_settings_missing() == []
    partial = Settings(twilio_auth_token="t", sendgrid_public_key=SENDGRID_KEY)
    assert not partial.sandbox_providers
    assert partial.provider_settings_missing() == ["TURNOUT_TWILIO_ACCOUNT_SID", "TURNOUT_SENDGRID_API_KEY",
                                                   "TURNOUT_TWILIO_FROM (or TURNOUT_TWILIO_MESSAGING_SERVICE_SID)", "TURNOUT_SENDGRID_FROM"]
    full = Settings(twilio_account_sid="AC1", twilio_auth_token="t", twilio_messaging_service_sid="MG1", sendgrid_api_key="SG.x", sendgrid_public_key=SENDGRID_KEY)
    # Every credential but the sender's address: the emails would come from the example's (an outside probe).
    assert full.provider_settings_missing() == ["TURNOUT_SENDGRID_FROM"]
    full = full.model_copy(update={"sendgrid_from": "turnout@coalition.example"})
    assert Settings(**full.model_dump(exclude_unset=True)).provider_settings_missing() == [] and not full.sandbox_providers
    assert Settings(sendgrid_from="me@coalition.example").provider_settings_missing() == []  # the sandbox shows it
    sandbox = Settings(**full.model_dump(exclude_unset=True, exclude={"sendgrid_from"}), sendgrid_base_url="http://127.0.0.1:8099")
    assert sandbox.provider_settings_missing() == []  # what `turnout up` gives its workers
    # Sending for real with plain-HTTP unsubscribe links: said at start (an outside probe; RFC 8058 asks for HTTPS).
    real = Settings(**full.model_dump(exclude_unset=True))
    [warning] = real.sending_warnings()
    assert "http://127.0.0.1:8000/unsubscribe" in warning and "TURNOUT_PUBLIC_URL" in warning
    assert Settings(**full.model_dump(exclude_unset=True), public_url="https://turnout.coalition.example").sending_warnings() == []
    assert sandbox.sending_warnings() == [] == Settings().sending_warnings()


def test_a_missing_coalition_file_is_an_error_that_names_it(here):
    env = {"TURNOUT_COALITION": "/nope.toml"}
    for args in (["partners", "list"], ["sign", "union-local-1", "--data", "{}"], ["action-network", "map", "union-local-1", "e1", "rally-1"]):
        r = turnout(*args, env=env)
        assert r.exit_code == 1, (args, r.output)
        assert r.output.startswith("Error: no coalition file at /nope.toml: create it with `turnout partners add"), r.output
    (here / "sheet.csv").write_text("phone\n5105550123\n")
    r = turnout("import", "union-local-1", "sheet.csv", "--type", "signup", "--dry-run", env=env)
    assert r.exit_code == 1 and "no coalition file at /nope.toml" in r.output, r.output
    r = turnout("partners", "list")  # the default, relative to where the command runs
    assert f"no coalition file at {here / 'coalition.toml'}" in r.output
    # No file given and no `turnout up` running here: most likely run away from the stack it means.
    r = turnout("import", "union-local-1", "sheet.csv", "--type", "signup", "--dry-run")
    assert r.exit_code == 1 and f"no coalition file at {here / 'coalition.toml'}, and no `turnout up` is running from {here}" in r.output, r.output


@pytest.mark.parametrize("text, says", [
    ("partners = 3\n", "`partners` must be a list of [[partners]] tables"),
    ('[[partners]]\nid = "union-a"\nname = "U"\nkind = "union"\n', "partner 1 (union-a): secret: missing; fix that entry"),
    ('[[partners]]\nid = "Union A"\nname = "U"\nkind = "union"\nsecret = "s"\n', "partner 1 (Union A): id: 'Union A' is not a valid id (use lower-case"),
    ('[[partners]]\nid = "union-a"\nname = "U"\nkind = "church"\nsecret = "s"\n', "partner 1 (union-a): kind: 'church' is not one of"),
    ("[[partners]\n", "not a readable TOML file"),
])
def test_coalition_file_problems_are_one_line_naming_the_file_and_partner(here, text, says):
    (here / "coalition.toml").write_text(text)
    r = turnout("partners", "list")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
    assert r.output.startswith("Error: coalition.toml: ") and says in r.output, r.output
    assert "https://" not in r.output and "Traceback" not in r.output


def test_a_bad_partner_id_and_a_bad_setting_are_explained(here):
    # A value given on the command line is a usage error (2), as a --kind that is none is (an outside probe: 1 and 2).
    r = turnout("partners", "add", "Bad Id", "--name", "X", "--kind", "union")
    assert r.exit_code == 2 and "'Bad Id' is not a valid id (use lower-case letters, digits and dashes" in r.output, r.output
    r = turnout("people", "forget", "--phone", "510-555-CALL")
    assert r.exit_code == 2 and "Invalid value for --phone: not a phone number: it has letters" in r.output, r.output
    assert "should match pattern" not in r.output
    r = turnout("partners", "list", env={"TURNOUT_PARTITIONS": "many"})
    assert r.exit_code == 1 and r.output.startswith("Error: bad configuration: TURNOUT_PARTITIONS: should be a valid integer"), r.output


def test_unexpected_failures_are_one_line_and_debug_shows_the_traceback(here, monkeypatch):
    import streams.coalition

    def broken(*a, **kw):
        raise KeyError("boom")

    monkeypatch.setattr(streams.coalition, "load", broken)
    r = CliRunner().invoke(main, ["partners", "list"])
    assert r.exit_code == 1 and r.output == "Error: KeyError: 'boom' (a bug? `turnout --debug …` shows where)\n"
    r = CliRunner().invoke(main, ["--debug", "partners", "list"])
    assert isinstance(r.exception, KeyError)


def test_people_forget_reports_the_refusal_not_the_json(here):
    from streams.cli import refusal

    class Answer:
        status_code = 422
        text = '{"detail":"phone: not a valid phone number for region US"}'

        def json(self):
            return json.loads(self.text)

    assert refusal(Answer()) == "the web app refused (422): phone: not a valid phone number for region US"


def test_people_forget_with_workers_yet_to_report_says_what_is_done_so_far(here, monkeypatch):
    """An outside probe: with no worker running it said "removed 0 person records", as if nobody
    had been found, and claimed every copy unreadable when no data key had been deleted."""
    import httpx

    answers = iter([{"complete": False, "people_removed": 0, "asks_cancelled": 0, "data_keys_erased": 1, "partners": [],
                     "partitions_reported": 0, "partitions": 8, "request_id": "r1"},
                    {"complete": False, "people_removed": 0, "asks_cancelled": 0, "data_keys_erased": 0, "partners": [],
                     "partitions_reported": 3, "partitions": 8, "request_id": "r2"}])

    class Answer:
        status_code = 202

        def json(self):
            return next(answers)

    monkeypatch.setattr(httpx, "post", lambda *a, **kw: Answer())
    env = {"TURNOUT_URL": "http://127.0.0.1:9", "TURNOUT_ORGANIZER_TOKEN": "t"}
    r = turnout("people", "forget", "--phone", "+15105550100", env=env)
    assert r.exit_code == 2 and r.output.startswith("so far: removed 0 person records") and "deleted 1 data key, so every copy" in r.output
    assert "only 0 of 8 partitions have reported so far (are workers running?)" in r.output
    r = turnout("people", "forget", "--phone", "+15105550100", env=env)
    assert r.exit_code == 2 and "deleted no data key (none is known for them)" in r.output and "is unreadable" not in r.output


def test_plurals():
    from streams.friendly import plural

    assert (plural(1, "bad row"), plural(0, "bad row"), plural(2, "person record")) == ("1 bad row", "0 bad rows", "2 person records")


def test_addresses_follow_the_port_unless_given_explicitly():
    from streams.startup import local_urls

    base = "http://127.0.0.1:8123"
    assert local_urls(Settings(), 8123) == {"url": base, "public_url": base, "rsvp_base_url": f"{base}/r",
                                            "unsubscribe_url": f"{base}/unsubscribe", "web_port": 8123}
    assert "public_url" not in local_urls(Settings(public_url="https://turnout.example.org"), 8123)


def test_the_banner_says_sandbox_and_prints_what_signs_callbacks(tmp_path):
    from streams.stack import sandbox_settings
    from streams.startup import stack_notes

    s = Settings(coalition=tmp_path / "c.toml", **sandbox_settings(Settings(), 8000, 9000))
    notes = "\n".join(stack_notes(s, tmp_path / "stack.json", demo=False))
    assert "SANDBOX: no text or email leaves this machine" in notes
    assert s.twilio_auth_token.get_secret_value() in notes and s.sendgrid_public_key in notes
    assert f"{tmp_path / 'c.toml'}" in notes and "does not exist yet" in notes
    real = Settings(coalition=tmp_path / "c.toml", twilio_account_sid="AC1", twilio_auth_token="secret-token", twilio_from="+15005550006",
                    sendgrid_api_key="SG.x", sendgrid_public_key=SENDGRID_KEY)
    notes = "\n".join(stack_notes(real, tmp_path / "stack.json", demo=False))
    assert "for real" in notes and "secret-token" not in notes


def test_a_long_sheet_shows_how_far_its_check_has_got_on_a_terminal(here, monkeypatch):
    """A sheet of 100,000 rows takes a minute to check: on a terminal a progress bar says so (an
    outside probe waited 68 s at a silent prompt); in a pipe nothing extra is written."""
    import io

    from rich.console import Console

    from streams import cli
    from streams.coalition import add_partner

    add_partner(here / "coalition.toml", "union-a", "Union A", "union")
    (here / "sheet.csv").write_text("phone\n" + "".join(f"+1510555{i:04d}\n" for i in range(300)))
    screen = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=screen, force_terminal=True, width=100))
    partner = cli.enabled_partner(cli.settings(), "union-a")
    rows, problems = cli.read_sheet(cli.settings(), here / "sheet.csv", "signup", partner, None, {}, (), None, None)
    assert len(rows) == 300 and not problems and "checking sheet.csv" in screen.getvalue()


def test_a_ctrl_c_lost_where_python_ignores_exceptions_still_stops_the_stack(monkeypatch):
    """Seen once in CI, under load: the Ctrl-C reached `turnout up` while an object's __del__ ran
    (asyncio's loop being collected), where a KeyboardInterrupt is printed and dropped, and the
    stack went on running. The handler also remembers it, for the loops that wait on the stack."""
    import signal

    from streams import stack

    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_type))
    previous = signal.signal(signal.SIGINT, stack._interrupt), signal.signal(signal.SIGTERM, stack._interrupt)
    stack.STOP.clear()
    try:
        class Collected:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10_000):  # the handler runs between these bytecodes, inside __del__
                    pass

        Collected()
        # From then on the stack is stopping: a second Ctrl-C or SIGTERM would cut its stop short.
        ignored = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    assert dropped == [KeyboardInterrupt] and stack.STOP.is_set()
    assert ignored == (signal.SIG_IGN, signal.SIG_IGN)
    stack.STOP.clear()


SERVER_ENV = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TURNOUT_MASTER_KEY": "a master key for this test only",
              "TURNOUT_PERSON_KEY_SECRET": "k", "TURNOUT_ORGANIZER_TOKEN": "t"}


@pytest.mark.parametrize("command", ["worker", "web"])
def test_a_server_refuses_a_garbled_coalition_file_and_names_a_missing_one_before_anything_else(here, command):
    garbled = here / "garbled.toml"
    garbled.write_text("partners = [ broken")
    r = turnout(command, env={**SERVER_ENV, "TURNOUT_COALITION": str(garbled)})
    assert r.exit_code == 1 and r.output.strip().splitlines() == [f"Error: {garbled}: not a readable TOML file (Invalid value (at line 1, column 14)); fix it or restore a copy"]

    missing = here / "nowhere.toml"
    r = turnout(command, env={**SERVER_ENV, "TURNOUT_COALITION": str(missing)})  # then it stops at the unreachable broker
    assert r.exit_code == 1 and "Error: cannot reach the Kafka broker" in r.output
    assert f"coalition file {missing} does not exist yet: no partner can post until you add one (turnout partners add)" in r.output
