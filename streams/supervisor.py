"""Watching the processes `turnout up` started: a worker that dies is restarted (Kafka hands
its partitions to the others meanwhile, and back); anything else that exits, or a worker that
keeps dying right after it starts, stops the stack with the reason."""

from __future__ import annotations

import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rich.console import Console

#: A worker that exits sooner than this after its start, this many times in a row, is not
#: restarted again: something is wrong with its configuration or the broker, not with luck.
QUICK_EXIT_SECONDS = 10.0
QUICK_EXITS = 3


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log: Path | None = None
    restart: tuple[list[str], dict[str, str]] | None = None  # (args, env) for a restartable worker
    started: float = 0.0
    quick_exits: int = 0


class Supervisor:
    def __init__(self, start: Callable[[list[str], dict[str, str], Path], subprocess.Popen], console: Console,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._start, self._console, self._clock = start, console, clock
        self.children: list[Child] = []
        self.reason: str | None = None

    def add(self, name: str, proc: subprocess.Popen, log: Path | None = None,
            restart: tuple[list[str], dict[str, str]] | None = None) -> subprocess.Popen:
        self.children.append(Child(name, proc, log, restart, self._clock()))
        return proc

    def procs(self) -> list[subprocess.Popen]:
        return [c.proc for c in self.children]

    def alive(self) -> bool:
        """``False`` once the stack must stop (``reason`` says why); restarts dead workers."""
        if self.reason is not None:
            return False
        for child in self.children:
            code = child.proc.poll()
            if code is None:
                continue
            quick = self._clock() - child.started < QUICK_EXIT_SECONDS
            child.quick_exits = child.quick_exits + 1 if quick else 0
            if child.restart is None or child.quick_exits >= QUICK_EXITS:
                again = f" {child.quick_exits} times in a row right after starting" if child.restart else ""
                self.reason = f"{child.name} exited (code {code}){again}" + (f"; see {child.log}" if child.log else "")
                return False
            self._console.print(f"[yellow]{child.name} exited (code {code}); restarting it, see {child.log}[/]")
            args, env = child.restart
            child.proc, child.started = self._start(args, env, child.log), self._clock()
        return True


def tail(log: Path | None, lines: int = 8) -> list[str]:
    """The last lines of a log, for saying why something stopped."""
    if log is None or not log.exists():
        return []
    with log.open(errors="replace") as f:
        return [line.rstrip("\n") for line in deque(f, lines)]
