"""The processes a benchmark or soak scenario runs against: an embedded broker of its own (so it
can be frozen), optionally the sandbox providers, any number of workers and one web app, all
with an app id and topics of this run only. ``bench_stack`` stops everything it started, pass
or fail, and prints the last log lines when the run failed."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from datetime import datetime, timezone
from typing import Any, Iterator

from pydantic import SecretStr
from rich.console import Console

from connectors.web.ingress import envelopes
from connectors.web.publisher import KafkaPublisher
from streams.admin import ensure_topics
from streams.data_keys import KafkaDataKeys
from streams.broker import EmbeddedBroker, free_port, wait_for_port
from streams.clock import run_file_clock, set_file_clock
from streams.coalition import add_partner
from streams.processes import stop_process
from streams.settings import Settings
from streams.stack import child_env, sandbox_settings, spawn
from streams.topology import events_topic

TOKEN = "bench-organizer-token"
PARTNERS = ("union-a", "faith-b", "seniors-c", "tenants-d")
PARTNER = PARTNERS[0]
#: 11:00 in Oakland: no quiet hours for the outreach scenarios (the clock runs from there).
CLOCK = "2026-11-24T19:00:00+00:00"


async def sealed_envelopes(s: Settings, items: list, partner: str) -> tuple[list, Any]:
    """The ingress's own ``envelopes()``: every person's fields sealed with a data key that is
    written to the data-keys topic first, as the web app does."""
    publisher = KafkaPublisher(s.bootstrap, events_topic(s), 30, s.idempotent_producer)
    await publisher.start()
    keys = KafkaDataKeys(s, publisher.publish)
    try:
        return await envelopes(items, partner, datetime.now(timezone.utc), s.person_key_bytes(), s.default_region, keys)
    finally:
        await keys.stop()
        await publisher.stop()


class BenchStack:
    """Start with ``start(workers=…)``; ``kill_worker`` and ``pause_broker`` are the faults."""

    def __init__(self, name: str, tmp: Path, *, outreach: bool = False, partitions: int = 8, **overrides: object) -> None:
        run = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        self.tmp, self.name = tmp, name
        self.broker = EmbeddedBroker()
        self.procs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.worker_env: dict[str, str] = {}
        self.web_port, self.sandbox_port = free_port(), free_port() if outreach else None
        self.failed = False  # a scenario that finds a problem sets it: the logs are then kept and shown
        self.clock_stopped = threading.Event()
        self.broker.start()
        try:
            self._configure(run, outreach, partitions, overrides)
        except BaseException:
            self.broker.stop()
            raise

    def _configure(self, run: str, outreach: bool, partitions: int, overrides: dict[str, object]) -> None:
        tmp = self.tmp
        config: dict[str, object] = dict(
            kafka_bootstrap_servers=self.broker.bootstrap, broker_flavor="tansu", coalition=tmp / "coalition.toml",
            organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("bench-person-secret"), master_key=SecretStr("bench-master-key"), app_id=run,
            topic_prefix=f"{run}.", partitions=partitions,
        )
        if outreach:
            set_file_clock(tmp / "clock.txt", CLOCK)
            run_file_clock(tmp / "clock.txt", self.clock_stopped)  # a deferred ask comes due, as in production
            config.update(sandbox_settings(Settings(**config), self.web_port, self.sandbox_port), sms_rate=0,
                          frequency_cap=100, clock=f"file:{tmp / 'clock.txt'}")
        self.settings = Settings(**{**config, **overrides})
        ensure_topics(self.settings)
        self.secrets = {p: add_partner(self.settings.coalition, p, p, "community").secret.get_secret_value() for p in PARTNERS}
        self.env = {**child_env(self.settings), "APP_DATADIR": str(tmp / "faust-data")}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def sandbox_url(self) -> str:
        assert self.settings.sandbox_url, "not an outreach stack"
        return self.settings.sandbox_url

    def start(self, workers: int = 1, faults: str = "{}", worker_env: dict[str, str] | None = None) -> None:
        """The sandbox (outreach stacks), the web app and ``workers`` workers; ``worker_env``
        is extra environment for every worker started from now on (e.g. Faust settings)."""
        self.worker_env = worker_env or {}
        if self.sandbox_port:
            self.sandbox = self._spawn(["sandbox", "--port", str(self.sandbox_port), "--faults", faults], "sandbox", self.sandbox_port)
        self.web = self._spawn(["web", "--port", str(self.web_port)], "web", self.web_port)
        for _ in range(workers):
            self.start_worker()

    def start_worker(self) -> subprocess.Popen:
        proc = self._spawn(["worker"], f"worker-{len(self.procs)}", env=self.worker_env)
        self.workers.append(proc)
        return proc

    def kill_worker(self) -> int:
        """SIGKILL the longest-running worker and start a new one; return the killed pid."""
        victim = self.workers.pop(0)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        self.start_worker()
        return victim.pid

    def restart_worker(self, env: dict[str, str]) -> subprocess.Popen:
        """Stop the longest-running worker (SIGTERM) and start another with ``env`` from now on."""
        proc = self.workers.pop(0)
        stop_process(proc, timeout=30)
        self.procs.remove(proc)  # stopped on purpose: not "dead"
        self.worker_env = env
        return self.start_worker()

    def pause_broker(self) -> None:
        self.broker.pause()

    def resume_broker(self) -> None:
        self.broker.resume()

    def dead(self) -> list[int]:
        """Pids of processes that exited although nobody stopped them."""
        return [p.pid for p in self.procs if p.poll() is not None and p.returncode != -signal.SIGKILL]

    def logs(self) -> list[Path]:
        return sorted(self.tmp.glob("*.log"))

    def _spawn(self, args: list[str], name: str, port: int | None = None, env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = spawn(args, {**self.env, **(env or {})}, self.tmp / f"{name}.log")
        self.procs.append(proc)
        if port:
            wait_for_port(port, 60, proc)
        return proc

    def close(self) -> None:
        self.clock_stopped.set()
        for proc in reversed(self.procs):
            stop_process(proc, timeout=20)
        self.broker.stop()


@contextmanager
def bench_stack(name: str, console: Console, workdir: Path | None = None, **kwargs: object) -> Iterator[BenchStack]:
    """A ``BenchStack`` in ``workdir`` (a temporary directory, removed on success, when not given)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"turnout-{name}-", dir=workdir))
    stack, ok = None, False
    try:
        stack = BenchStack(name, tmp, **kwargs)  # type: ignore[arg-type]
        yield stack
        ok = True
    finally:
        if stack is not None:
            stack.close()
        ok = ok and stack is not None and not stack.failed
        if ok and workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
        elif not ok:
            for log in sorted(tmp.glob("*.log")):
                console.print(f"--- last lines of {log} ---", *log.read_text(errors="replace").splitlines()[-30:], sep="\n", markup=False)


async def until(stack: BenchStack, check, deadline: float, what: str, interval: float = 0.5):
    """Await ``check()`` until it returns something truthy, and return that; fail on a process of
    ``stack`` that exited or at ``deadline`` (``time.monotonic()``)."""
    while not (got := await check()):
        if dead := stack.dead():
            raise RuntimeError(f"process(es) {dead} exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached in time")
        await asyncio.sleep(interval)
    return got
