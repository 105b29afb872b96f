"""The running stack: how other `turnout` commands find what `turnout up` started.

`turnout up` writes ``.turnout/stack.json`` in its working directory once everything listens,
and removes it when it stops (a stack killed outright leaves it behind; its dead pid marks
it stale, and the next `turnout up` replaces it). Mode 0600: it holds the secrets `turnout up`
generated (organizer token, person-key secret, sandbox credentials)::

    {"version": 1, "pid": 4242, "started_at": "2026-11-24T18:00:00+00:00",
     "web_url": "http://127.0.0.1:8000", "broker": "127.0.0.1:40123",
     "coalition": "/home/ana/turnout/.turnout/demo-coalition.toml", "logs": "/home/ana/turnout/.turnout/logs",
     "demo": true, "settings": {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:40123", "TURNOUT_BROKER_FLAVOR": "tansu", …}}

``settings`` is the environment the stack's processes run with. A command run from that
directory (or below it) takes every setting it was not given explicitly from there, so
`turnout export`, `turnout tallies` or an extra `turnout worker` talk to the stack as it is.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from .settings import Settings

STATE = Path(".turnout") / "stack.json"


class StackState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = 1
    pid: int
    started_at: str
    web_url: str
    broker: str
    coalition: str
    logs: str
    demo: bool = False
    settings: dict[str, str]


#: Settings of the stack's own processes that no other command may take: the look-up itself, and
#: the metrics port its workers hold (one more `turnout worker` would find it taken).
PER_PROCESS = frozenset({"TURNOUT_FIND_STACK", "TURNOUT_METRICS_PORT"})


def new_state(s: Settings, env: dict[str, str], web_url: str, logs: Path, demo: bool) -> StackState:
    """What this process (`turnout up`) tells other commands about the stack it runs."""
    return StackState(
        pid=os.getpid(), started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), web_url=web_url,
        broker=s.bootstrap, coalition=str(s.coalition.absolute()), logs=str(logs.absolute()), demo=demo,
        settings={k: v for k, v in env.items() if (k.startswith("TURNOUT_") or k == "KAFKA_BOOTSTRAP_SERVERS") and k not in PER_PROCESS},
    )


def write(state: StackState, directory: Path) -> Path:
    path = directory / STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(state.model_dump_json(indent=2))
    tmp.replace(path)
    return path


def remove(directory: Path) -> None:
    """Remove the state file if it is this process's (never another stack's)."""
    path = directory / STATE
    state = _read(path)
    if state is not None and state.pid == os.getpid():
        path.unlink(missing_ok=True)


def running_in(directory: Path) -> StackState | None:
    """The live stack whose state file is in ``directory``, if any."""
    state = _read(directory / STATE)
    return state if state is not None and alive(state.pid) else None


def find(start: Path) -> StackState | None:
    """The live stack started from ``start`` or the nearest parent that has one."""
    for directory in (start.absolute(), *start.absolute().parents):
        state = running_in(directory)
        if state is not None:
            return state
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, though not ours to signal
    return True


def with_stack(s: Settings, state: StackState) -> Settings:
    """``s`` with every setting not given explicitly (environment) taken from the stack's."""
    fields = {_field(name): value for name, value in state.settings.items()}
    given: dict[str, Any] = {f: v for f, v in fields.items() if f in Settings.model_fields and f not in s.model_fields_set}
    return Settings(**given) if given else s


def _field(env_name: str) -> str:
    return "kafka_bootstrap_servers" if env_name == "KAFKA_BOOTSTRAP_SERVERS" else env_name.removeprefix("TURNOUT_").lower()


def _read(path: Path) -> StackState | None:
    try:
        return StackState.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None  # missing, half-written or from another version: as if nothing ran
