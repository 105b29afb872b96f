"""Clocks. The system clock in production; a file clock to rehearse a night (or test one):
the file holds an ISO time, and moving it moves "now" for every worker that reads it."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


def file_clock(path: Path) -> Clock:
    read: list = [None, None]  # the file as last read (inode, modified, size), and the time it held

    def now() -> datetime:
        # A worker asks the time for every ask it hands over: the file is read again only once
        # it changed (``set_file_clock`` replaces it, so a new inode), a stat instead of an
        # open, a read and a parse.
        st = os.stat(path)
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if read[0] != seen:
            read[:] = seen, file_time(path.read_text().strip())
        return read[1]

    return now


def file_time(text: str) -> datetime:
    """The time a clock file holds, in UTC. One without a UTC offset is refused: each process
    would read it in its own time zone (a host and a container hours apart)."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"{text[:64]!r} has no UTC offset")
    return when.astimezone(timezone.utc)


def set_file_clock(path: Path, when: datetime | str) -> None:
    """Move a file clock to ``when`` (written whole: a reader never sees half a time)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(when if isinstance(when, str) else when.isoformat())
    tmp.replace(path)


def run_file_clock(path: Path, stopped: threading.Event, every: float = 0.5) -> threading.Thread:
    """Let the file clock at ``path`` run with real time from where it stands, until ``stopped``
    is set: what a standing clock would never bring about (an ask deferred a minute comes due)."""
    start, began = file_clock(path)(), time.monotonic()

    def tick() -> None:
        while not stopped.wait(every):
            set_file_clock(path, start + timedelta(seconds=time.monotonic() - began))

    thread = threading.Thread(target=tick, name="file-clock", daemon=True)
    thread.start()
    return thread


def from_setting(value: str) -> Clock:
    if value == "system":
        return system_clock
    if value.startswith("file:") and value[5:]:
        return file_clock(Path(value[5:]))
    raise ValueError(f"TURNOUT_CLOCK must be 'system' or 'file:PATH', not {value[:64]!r}")
