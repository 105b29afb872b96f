"""Clocks. The system clock in production; a file clock to rehearse a night (or test one):
the file holds an ISO time, and moving it moves "now" for every worker that reads it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


def file_clock(path: Path) -> Clock:
    def now() -> datetime:
        return datetime.fromisoformat(path.read_text().strip()).astimezone(timezone.utc)

    return now


def from_setting(value: str) -> Clock:
    if value == "system":
        return system_clock
    if value.startswith("file:"):
        return file_clock(Path(value[5:]))
    raise ValueError(f"TURNOUT_CLOCK must be 'system' or 'file:PATH', not {value!r}")
