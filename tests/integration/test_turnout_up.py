"""`turnout up --demo` as a new user runs it: other commands find it with no settings, the demo
keeps out of the real coalition file, a second stack is refused, a dead web app stops the
stack with exit 1 and the reason, and Ctrl-C stops it cleanly however it was started. Every
process is stopped by pid, pass or fail."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streams.broker import free_port
from streams.coalition import add_partner, load
from tests.polling import eventually

pytestmark = pytest.mark.integration

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
DEMO_PARTNERS = {"coalition-backbone", "union-local-1", "grace-congregation", "eastside-tenants", "oak-valley-seniors"}


def turnout(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=cwd, env=CLEAN_ENV, capture_output=True, text=True, timeout=timeout)


def children(pid: int) -> set[int]:
    """The direct children of ``pid`` (Linux)."""
    try:
        return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")


@pytest.fixture
def up(tmp_path):
    """Start `turnout up --demo` in ``tmp_path/stack``; stop it and everything it started, by pid."""
    started: list[subprocess.Popen] = []
    seen: set[int] = set()

    def start(port: int, sigint_ignored: bool = False) -> subprocess.Popen:
        home = tmp_path / "stack"
        home.mkdir(exist_ok=True)
        out, err = (home / "up.out").open("w"), (home / "up.err").open("w")
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None  # as a script's `make run &`
        proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "up", "--demo", "--port", str(port)], cwd=home, env=CLEAN_ENV,
                                stdout=out, stderr=err, start_new_session=True, preexec_fn=ignore)
        started.append(proc)
        return proc

    def track(proc: subprocess.Popen) -> set[int]:
        seen.update(children(proc.pid))
        return seen

    yield start, track
    for proc in started:
        seen.update(children(proc.pid))
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    for pid in seen:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_turnout_up_demo_is_found_by_other_commands_keeps_out_of_coalition_toml_and_stops_when_the_web_app_dies(up, tmp_path):
    start, track = up
    home = tmp_path / "stack"
    home.mkdir()
    add_partner(home / "coalition.toml", "real-union", "A Real Union", "union")
    real = (home / "coalition.toml").read_bytes()
    port = free_port()
    proc = start(port)

    state_file = home / ".turnout" / "stack.json"
    def started() -> dict | None:
        assert proc.poll() is None or pytest.fail(f"turnout up exited: {(home / 'up.err').read_text()}")
        return json.loads(state_file.read_text()) if state_file.exists() else None  # written atomically

    state = eventually(started, timeout=120)
    assert (state["pid"], state["web_url"], state["demo"]) == (proc.pid, f"http://127.0.0.1:{port}", True)
    assert state["coalition"] == str(home / ".turnout" / "demo-coalition.toml") and state["broker"] == state["settings"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"
    banner = (home / "up.out").read_text()
    assert "demo-coalition.toml" in banner and "SANDBOX" in banner and "Twilio auth token" in banner
    # Into a file, each line whole (rich cut them at 80 columns: "… on ⏎127.0.0.1:35661"; a newcomer probe).
    assert re.search(r"^embedded broker \(.*\) on 127\.0\.0\.1:\d+$", banner, re.M) and re.search(r"logs in /\S+/$", banner, re.M), banner

    # Other commands, with no setting at all, from the stack's directory or below it.
    (home / "sub").mkdir()

    def tallied() -> set[str]:
        r = turnout(home / "sub", "tallies", "--action", "rally-1201", "--json")
        assert r.returncode == 0, r.stderr
        return {row["partner"] for row in json.loads(r.stdout)["partners"]} & DEMO_PARTNERS

    eventually(tallied, timeout=60)
    # The web app's log says where it listens (it said nothing at all: an outside probe).
    assert f"running on http://127.0.0.1:{port}" in (home / ".turnout" / "logs" / "web.log").read_text()
    # Its output goes to a file: the figures are printed there while it runs, not only when it stops.
    eventually(lambda: re.search(r"^ union-local-1 +\d+", (home / "up.out").read_text(), re.M), timeout=30)
    export = turnout(home, "export")
    assert export.returncode == 0 and export.stdout.startswith("action_id,title,starts_at,partner,"), export.stderr
    assert "rally-1201" in export.stdout

    # The banner's command for partners' staff accounts works as printed, from the stack's directory.
    printed = next(line.strip() for line in banner.splitlines() if "turnout accounts invite" in line)
    args = shlex.split(printed.replace("EMAIL", "staff@example.org").replace("PARTNER", "union-local-1"))
    assert args[0] == "turnout", printed
    invited = turnout(home, *args[1:])
    assert invited.returncode == 0 and "/dashboard/welcome#" in invited.stdout, invited.stderr

    # The demo's partners are in its own file; the real one is untouched.
    assert (home / "coalition.toml").read_bytes() == real
    assert set(load(home / ".turnout" / "demo-coalition.toml").partners) == DEMO_PARTNERS

    # A second stack: refused in the same directory, and on the same port from anywhere.
    again = turnout(home, "up", "--port", str(free_port()), timeout=60)
    assert again.returncode == 1 and "a turnout stack is already running from" in again.stderr, again.stderr
    (tmp_path / "elsewhere").mkdir()
    taken = turnout(tmp_path / "elsewhere", "up", "--port", str(port), timeout=60)
    assert taken.returncode == 1 and f"port {port} is taken" in taken.stderr and "--port" in taken.stderr, taken.stderr
    assert not (tmp_path / "elsewhere" / ".turnout").exists()

    # The web app dies: the stack stops, with exit 1 and the reason, and leaves nothing behind.
    kids = track(proc)
    (web,) = [pid for pid in kids if " web " in cmdline(pid)]
    os.kill(web, signal.SIGKILL)
    assert proc.wait(90) == 1
    err = (home / "up.err").read_text()
    assert "Error: stopped: the web app exited (code -9)" in err and "web.log" in err, err
    assert not state_file.exists()
    eventually(lambda: not any(alive(pid) for pid in kids), timeout=30)
    r = turnout(home, "export")
    assert r.returncode == 1 and "no `turnout up` is running" in r.stderr


def test_ctrl_c_stops_the_stack_cleanly_even_when_it_was_started_with_sigint_ignored(up, tmp_path):
    """A shell script's background job (`make run &`) starts with SIGINT ignored, and Python
    leaves it so: `kill -INT` (or Ctrl-C on the job brought forward) did nothing."""
    start, track = up
    home = tmp_path / "stack"
    proc = start(free_port(), sigint_ignored=True)
    state_file = home / ".turnout" / "stack.json"

    def started() -> bool:
        assert proc.poll() is None or pytest.fail(f"turnout up exited: {(home / 'up.err').read_text()}")
        return state_file.exists()

    eventually(started, timeout=120)
    kids = track(proc)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(90) == 0, (home / "up.err").read_text()
    assert "stopping" in (home / "up.out").read_text() and not state_file.exists()
    eventually(lambda: not any(alive(pid) for pid in kids), timeout=30)


def test_turnout_broker_started_where_sigint_is_ignored_stops_on_ctrl_c(tmp_path):
    """An outside probe: started as a script's background job (SIGINT ignored), it said "Ctrl-C
    to stop" and went on at Ctrl-C; `turnout up` already took Ctrl-C back."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "broker", "--port", str(port)], cwd=tmp_path, env=CLEAN_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert "Ctrl-C to stop" in proc.stdout.readline()
        broker = children(proc.pid)
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0
        eventually(lambda: not any(alive(pid) for pid in broker), timeout=30)  # its broker stopped with it
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
