"""What `turnout up` decides around starting the stack: what it refuses before anything
starts, the addresses that follow its port, its log folder, and what its banner says beyond
the addresses."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import IO

from . import running
from .broker import port_free
from .clock import from_setting
from .coalition import NOT_YET, CoalitionError
from .coalition import load as load_coalition
from .settings import Settings


class StackError(Exception):
    """`turnout up` cannot start, or had to stop: the message says why and what to do."""


def metrics_ports(s: Settings, workers: int) -> list[int]:
    """Where each of `turnout up`'s workers serves /metrics: ``TURNOUT_METRICS_PORT`` and the
    ports after it, one a worker (none when it is 0)."""
    return [s.metrics_port + i for i in range(workers)] if s.metrics_port else []


def preflight(s: Settings, port: int, here: Path, coalition: Path, workers: int = 1) -> None:
    """Refuse, before anything starts, what `turnout up` could not do (``coalition``: the file
    it will run with; it may be missing, not broken)."""
    other = running.running_in(here)
    if other is not None and other.pid != os.getpid():
        raise StackError(f"a turnout stack is already running from {here} (pid {other.pid}, {other.web_url}); "
                         "stop it first (Ctrl-C there), or start this one from another directory")
    if not port_free(port):
        raise StackError(f"port {port} is taken (another turnout up, or another program); "
                         f"choose another with --port (make run PORT=…)")
    for i, taken in enumerate(metrics_ports(s, workers)):
        if taken == port:
            raise StackError(f"port {taken} (TURNOUT_METRICS_PORT{f' + {i}' if i else ''}, worker {i}'s /metrics) is the web app's (--port); "
                             "set TURNOUT_METRICS_PORT to a range apart from it")
        if not port_free(taken):
            raise StackError(f"port {taken} (TURNOUT_METRICS_PORT{f' + {i}' if i else ''}, worker {i}'s /metrics) is taken; "
                             "set TURNOUT_METRICS_PORT to a free range")
    missing = s.provider_settings_missing()
    if missing:
        raise StackError(f"provider credentials are only partly set: missing {', '.join(missing)}; "
                         "set all of them to send for real, or none to use the sandbox providers")
    try:
        load_coalition(coalition, missing_ok=True)
    except CoalitionError as exc:
        raise StackError(str(exc)) from None
    if problem := clock_problem(s):  # else the workers die asking the time, one after another
        raise StackError(problem)


def claim(here: Path) -> IO[str]:
    """This directory's stack, claimed for as long as the returned file stays open (this
    process's life): a second `turnout up` here is refused even before the first has written
    its state file (which it does last), and never moves the first one's live logs away."""
    path = here / ".turnout" / "up.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.open("a")
    except OSError as exc:
        raise StackError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise StackError(f"a turnout stack is already starting or running from {here}; "
                         "stop it first (Ctrl-C there), or start this one from another directory") from None
    return lock


def clock_problem(s: Settings) -> str | None:
    """Why ``TURNOUT_CLOCK`` cannot tell the time (a file clock's file missing or garbled), if it cannot."""
    try:
        from_setting(s.clock)()
    except (OSError, ValueError) as exc:
        reason = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        return (f"TURNOUT_CLOCK={s.clock} tells no time: {reason} "
                "(the file holds one ISO 8601 time with a UTC offset, e.g. 2026-11-24T19:00:00+00:00)")
    return None


def local_urls(s: Settings, port: int) -> dict[str, object]:
    """The web app's own addresses on ``port``, for the settings nobody gave explicitly."""
    base = f"http://127.0.0.1:{port}"
    urls = {"url": base, "public_url": base, "rsvp_base_url": f"{base}/r", "unsubscribe_url": f"{base}/unsubscribe", "web_port": port}
    return {k: v for k, v in urls.items() if k not in s.model_fields_set}


def fresh_logs(here: Path) -> Path:
    """This stack's log folder; the previous run's is kept once, as logs.previous."""
    logs = here / ".turnout" / "logs"
    if logs.exists():
        previous = logs.with_name("logs.previous")
        shutil.rmtree(previous, ignore_errors=True)
        logs.rename(previous)
    logs.mkdir(parents=True)
    return logs


def stack_notes(s: Settings, state: Path, demo: bool) -> list[str]:
    """What `turnout up` says beyond the addresses: which coalition file, which providers, and
    where other commands find this stack."""
    notes = [f"coalition file    {s.coalition.absolute()}" + ("  (the demo's own: your coalition.toml is not touched)" if demo else "")]
    if not s.coalition.exists():
        notes.append(f"  it {NOT_YET}")
    if s.sandbox_url:
        notes += [
            "providers         SANDBOX: no text or email leaves this machine (set TURNOUT_TWILIO_* and TURNOUT_SENDGRID_* to send for real)",
            f"  Twilio auth token (signs Twilio callbacks to {s.public_url})   {s.twilio_auth_token.get_secret_value()}",
            f"  SendGrid public key (verifies SendGrid events)   {s.sendgrid_public_key}",
        ]
    else:
        notes.append(f"providers         Twilio and SendGrid, for real; callbacks are checked against {s.public_url}")
    notes.append(f"state file        {state}  (other turnout commands run from here use this stack)")
    return notes
