"""`turnout up` restarts a worker that dies, stops on anything else exiting, and says why."""

import io
import subprocess
import sys

from rich.console import Console

from streams.supervisor import QUICK_EXITS, Supervisor, tail

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]
EXIT_3 = [sys.executable, "-c", "raise SystemExit(3)"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def supervise(tmp_path, worker_cmd):
    started, clock = [], Clock()

    def start(args, env, log):
        started.append(args)
        return subprocess.Popen(worker_cmd)

    sup = Supervisor(start, Console(file=io.StringIO()), clock)
    sup.add("worker 0", subprocess.Popen(EXIT_3), tmp_path / "w.log", restart=(["worker"], {}))
    sup.add("the web app", subprocess.Popen(SLEEP), tmp_path / "web.log")
    return sup, started, clock


def stop_all(sup):
    for p in sup.procs():
        p.kill()
        p.wait(10)


def test_a_dead_worker_is_restarted_and_any_other_exit_ends_the_stack_with_the_reason(tmp_path):
    sup, started, clock = supervise(tmp_path, SLEEP)
    try:
        first = sup.procs()[0]
        first.wait(10)
        clock.now += 60  # it ran a while before it died
        assert sup.alive() and started == [["worker"]] and sup.procs()[0] is not first and sup.procs()[0].poll() is None
        assert sup.alive() and len(started) == 1 and sup.reason is None  # the new one runs: nothing more to do
        web = sup.procs()[1]
        web.kill()
        web.wait(10)
        assert not sup.alive()
        assert sup.reason == f"the web app exited (code {web.returncode}); see {tmp_path / 'web.log'}"
    finally:
        stop_all(sup)


def test_a_worker_that_keeps_dying_as_it_starts_stops_the_stack(tmp_path):
    sup, started, clock = supervise(tmp_path, EXIT_3)
    try:
        for _ in range(QUICK_EXITS - 1):
            sup.procs()[0].wait(10)
            assert sup.alive()
        sup.procs()[0].wait(10)
        assert not sup.alive() and len(started) == QUICK_EXITS - 1
        assert sup.reason.startswith(f"worker 0 exited (code 3) {QUICK_EXITS} times in a row right after starting")
    finally:
        stop_all(sup)


def test_tail_gives_the_last_lines_of_a_log(tmp_path):
    log = tmp_path / "web.log"
    log.write_text("".join(f"line {i}\n" for i in range(20)))
    assert tail(log, 3) == ["line 17", "line 18", "line 19"]
    assert tail(tmp_path / "missing.log") == []
