"""The stack a benchmark runs against: one embedded broker, one worker, one web app, with an
app id and topics of this run only. Everything started is stopped, and on failure the last log
lines are printed."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Iterator

from pydantic import SecretStr
from rich.console import Console

from streams.admin import ensure_topics
from streams.broker import EmbeddedBroker, free_port, wait_for_port
from streams.coalition import add_partner
from streams.processes import stop_process
from streams.settings import Settings
from streams.stack import child_env, spawn

TOKEN, PARTNER = "bench-organizer-token", "bench-partner"


@dataclass
class BenchStack:
    settings: Settings
    url: str
    secret: str  # PARTNER's webhook secret
    broker: EmbeddedBroker
    tmp: Path
    procs: list[Popen] = field(default_factory=list)


@contextmanager
def bench_stack(name: str, console: Console, worker_env: dict[str, str] | None = None, partitions: int = 8) -> Iterator[BenchStack]:
    run_id = f"{name}-{uuid.uuid4().hex[:8]}"
    tmp, broker, procs, ok = Path(tempfile.mkdtemp(prefix=f"turnout-{run_id}-")), EmbeddedBroker(), [], False
    try:
        broker.start()
        s = Settings(kafka_bootstrap_servers=broker.bootstrap, broker_flavor="tansu", coalition=tmp / "coalition.toml",
                     organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("bench-person-secret"),
                     app_id=run_id, topic_prefix=f"{run_id}.", partitions=partitions)
        ensure_topics(s)
        secret = add_partner(s.coalition, PARTNER, "Benchmark partner", "community").secret.get_secret_value()
        procs.append(spawn(["worker"], {**child_env(s), **(worker_env or {})}, tmp / "worker.log"))
        port = free_port()
        procs.append(spawn(["web", "--port", str(port)], child_env(s), tmp / "web.log"))
        wait_for_port(port, 60, procs[1])
        yield BenchStack(s, f"http://127.0.0.1:{port}", secret, broker, tmp, procs)
        ok = True
    finally:
        for proc in reversed(procs):
            stop_process(proc, timeout=20)
        broker.stop()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            for log in sorted(tmp.glob("*.log")):
                console.print(f"--- last lines of {log} ---", *log.read_text(errors="replace").splitlines()[-30:], sep="\n", markup=False)
