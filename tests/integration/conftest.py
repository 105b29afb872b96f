"""Integration fixtures: the embedded broker, and a stack (worker + web subprocesses) per test
with unique topic and app names. Everything started here is stopped here, pass or fail."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.signing import headers
from streams.admin import ensure_topics
from streams.broker import EmbeddedBroker, free_port, wait_for_port
from streams.clock import run_file_clock, set_file_clock
from streams.coalition import add_partner
from streams.processes import stop_process
from streams.settings import Settings
from streams.stack import child_env, sandbox_settings, spawn
from tests.factories import action

from .browsers import chromium
from .sandboxes import Receiver, Served

TOKEN = "integration-organizer-token"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def broker():
    with EmbeddedBroker() as b:
        yield b


class Stack:
    def __init__(self, bootstrap: str, tmp: Path, name: str, partners=("union-a", "faith-b"), outreach: bool = False, **overrides) -> None:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower())[-30:] + "-" + uuid.uuid4().hex[:6]
        self.tmp = tmp
        config = dict(
            kafka_bootstrap_servers=bootstrap, broker_flavor="tansu", coalition=tmp / "coalition.toml",
            organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("integration-secret"), master_key=SecretStr("integration-master-key"),
            app_id=f"t-{slug}", topic_prefix=f"t-{slug}.", partitions=4,
        )
        self.web_port = free_port()
        config["public_url"] = f"http://127.0.0.1:{self.web_port}"  # the web app's address, as `turnout up` sets it
        self.sandbox_port = free_port() if outreach else None
        self.clock_file = tmp / "clock.txt"
        if outreach:
            self.set_clock("2026-11-24T19:00:00+00:00")  # 11:00 in California: no quiet hours
            base = Settings(**config)
            config.update(sandbox_settings(base, self.web_port, self.sandbox_port), clock=f"file:{self.clock_file}")
        self.settings = Settings(**{**config, **overrides})
        ensure_topics(self.settings)
        roles = {p: "backbone" if p == "backbone" else "member" for p in partners}
        self.secrets = {p: add_partner(self.settings.coalition, p, p, "community", roles[p]).secret.get_secret_value() for p in partners}
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.http = httpx.Client(timeout=30)
        self.clock_stopped = threading.Event()

    def set_clock(self, iso: str) -> None:
        """Move the workers' clock (a file clock: see streams/clock.py)."""
        set_file_clock(self.clock_file, iso)

    def run_clock(self) -> None:
        """Let the workers' clock run with real time from where it stands, until the stack closes."""
        run_file_clock(self.clock_file, self.clock_stopped)

    def start_sandbox(self, faults: str = "{}", sms_mps: float = 0) -> subprocess.Popen:
        args = ["sandbox", "--port", str(self.sandbox_port), "--faults", faults, "--sms-mps", str(sms_mps)]
        proc = self._spawn(args, "sandbox")
        wait_for_port(self.sandbox_port, 60, proc)
        return proc

    def inbox(self, channel: str | None = None) -> list[dict]:
        r = self.http.get(f"{self.settings.sandbox_url}/_sandbox/inbox", params={"channel": channel} if channel else None)
        r.raise_for_status()
        return r.json()

    def inbox_count(self, channel: str | None = None) -> int:
        r = self.http.get(f"{self.settings.sandbox_url}/_sandbox/inbox/count", params={"channel": channel} if channel else None)
        r.raise_for_status()
        return r.json()["count"]

    def reply(self, phone: str, body: str) -> None:
        self.http.post(f"{self.settings.sandbox_url}/_sandbox/reply", json={"from": phone, "body": body}).raise_for_status()

    def _spawn(self, args: list[str], name: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.tmp / f"{name}-{len(self.logs)}.log"
        proc = spawn(args, {**child_env(self.settings), **(env or {})}, log)
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def start_worker(self, **env: str) -> subprocess.Popen:
        return self._spawn(["worker"], "worker", env)

    def start_web(self) -> subprocess.Popen:
        proc = self._spawn(["web", "--port", str(self.web_port)], "web")
        wait_for_port(self.web_port, 60, proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
        if sig == signal.SIGKILL:
            proc.kill()
            proc.wait(10)
        else:
            assert stop_process(proc, timeout=30) is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def post(self, partner: str, events, secret: str | None = None) -> httpx.Response:
        body = json.dumps(events).encode()
        h = headers(partner, secret or self.secrets[partner], body, time.time())
        return self.http.post(f"{self.url}/v1/events", content=body, headers=h)

    def announce(self, *action_ids: str, partner: str | None = None) -> None:
        """Post these actions (events for an action nobody posted are not counted until it is)."""
        self.post_all(partner or next(iter(self.secrets)), [action(a) for a in action_ids])

    def post_all(self, partner: str, events: list, batch: int = 500) -> None:
        for i in range(0, len(events), batch):
            r = self.post(partner, events[i : i + batch])
            assert r.status_code == 202, r.text
            assert r.json()["rejected"] == []

    def get(self, path: str) -> httpx.Response:
        return self.http.get(f"{self.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"})

    def action_rows(self, action_id: str) -> dict[str, dict]:
        r = self.get(f"/v1/actions/{action_id}/tallies")
        assert r.status_code == 200, r.text
        return {row["partner"]: {k: row[k] for k in ("pledged", "rsvp_yes", "attended")} for row in r.json()["partners"]}

    def close(self, failed: bool) -> None:
        self.clock_stopped.set()
        for proc in reversed(self.procs):
            stop_process(proc, timeout=20)
        self.http.close()
        if failed:
            for log in self.logs:
                lines = log.read_text(errors="replace").splitlines() if log.exists() else []
                print(f"--- warnings and errors in {log}, by count ---", *warnings(lines), sep="\n")
                print(f"--- last lines of {log} ---", *lines[-40:], sep="\n")


def warnings(lines: list[str]) -> list[str]:
    """A log's WARNING and ERROR records, one line per distinct message with its count (the
    last lines of a long run seldom show what went wrong early in it)."""
    seen: Counter[str] = Counter()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            seen[f'{record["level"]} {record.get("logger")}: {str(record.get("message"))[:200]}'] += 1
    return [f"{n:6d} × {message}" for message, n in seen.most_common(30)]


@pytest.fixture
def own_broker():
    """A broker of the test's own, for tests that freeze or stop it. Request it before make_stack."""
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def make_stack(broker, tmp_path, request):
    stacks: list[Stack] = []

    def make(bootstrap: str | None = None, **overrides) -> Stack:
        stack = Stack(bootstrap or broker.bootstrap, tmp_path, request.node.name, **overrides)
        stacks.append(stack)
        return stack

    yield make
    failed = getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed
    for stack in stacks:
        stack.close(failed)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for the browser tests of one module (``tests/integration/browsers.py``)."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def receiver():
    """A webhook receiver for the sandbox tests of one module (``tests/integration/sandboxes.py``)."""
    r = Receiver()
    yield r
    r.served.stop()


@pytest.fixture
def serve(receiver):
    """``serve(app)`` → the URL of ``app`` served on a loopback port until the test ends; the
    receiver starts the test with nothing recorded."""
    started: list[Served] = []
    receiver.requests.clear()

    def start(app) -> str:
        started.append(Served(app))
        return started[-1].url

    yield start
    for served in started:
        served.stop()
