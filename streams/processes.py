"""Child processes that never outlive `turnout up` (or a test), even if it is SIGKILLed."""

from __future__ import annotations

import ctypes
import signal
import subprocess

_PR_SET_PDEATHSIG = 1


def child_dies_with_parent() -> None:
    """``preexec_fn``: the kernel kills the child when its parent dies (Linux).

    SIGKILL, not SIGTERM: a parent killed outright usually means its broker went with it,
    and a worker's graceful shutdown would wait for that broker forever. Work is
    at-least-once, so a hard stop loses nothing that was acknowledged.
    """
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> int | None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode
