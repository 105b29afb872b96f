"""Running `turnout` as staff do, for the CLI tests: in this process (click's runner), or in a
process of its own with none of this environment's turnout settings."""

import os
import signal
import subprocess
import sys

from click.testing import CliRunner

from streams.cli import main

CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_") and k != "KAFKA_BOOTSTRAP_SERVERS"}


def bare(monkeypatch, directory) -> None:
    """Run from ``directory``, with no turnout setting from the environment."""
    monkeypatch.chdir(directory)
    for name in [k for k in os.environ if k.startswith("TURNOUT_") or k == "KAFKA_BOOTSTRAP_SERVERS"]:
        monkeypatch.delenv(name)


def turnout(*args: str, env: dict[str, str] | None = None, **kw):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False, **kw)


def turnout_process(cwd, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The command in a process of its own: what reaches standard error is all there is (a
    client's own log lines, asyncio's warnings), and a hang fails instead of hanging. If it
    started something after all (`turnout up`), that is stopped, by its process group."""
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", *args], cwd=cwd, env={**CLEAN_ENV, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
