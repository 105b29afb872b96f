"""`turnout up` restarts a worker that dies and stops on anything else exiting."""

import subprocess
import sys

from streams.stack import supervisor

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_a_dead_worker_is_restarted_and_any_other_exit_ends_the_stack(tmp_path):
    started = []

    def start(args, env, log):
        started.append(args)
        return subprocess.Popen(SLEEP)

    worker, web = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]), subprocess.Popen(SLEEP)
    procs = [worker, web]
    alive = supervisor(procs, {id(worker): (["worker"], {}, tmp_path / "w.log")}, start)
    try:
        worker.wait(10)
        assert alive() and started == [["worker"]] and procs[0] is not worker and procs[0].poll() is None
        assert alive() and len(started) == 1  # the new one is running: nothing more to do
        web.kill()
        web.wait(10)
        assert not alive()
    finally:
        for p in procs:
            p.kill()
            p.wait(10)
