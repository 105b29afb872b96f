"""Worker hand-over after a burst. (Worker SIGKILLs under load and the broker frozen mid-load:
test_soak_short.py.)"""

import signal
import time

import pytest

from tests.factories import checkin, phone, rsvp, signup
from tests.polling import eventually

pytestmark = pytest.mark.integration

N = 3000
LATER = "2026-12-01T18:05:00Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_new_worker_rebuilds_every_fact_after_a_burst(make_stack, sig):
    """The second phase only comes out right if the new worker recovered every RSVP fact from
    the changelog: a check-in merged into a lost fact would drop that person's RSVP. This is
    what catches the embedded broker's wrong end offsets (see streams/transport.py)."""
    stack = make_stack()
    first = stack.start_worker()
    stack.start_web()
    stack.announce('rally-h')
    stack.post_all("union-a", [rsvp(f"r{i}", "rally-h", phone=phone(i)) for i in range(N)])
    eventually(lambda: stack.action_rows("rally-h")["union-a"]["rsvp_yes"] == N, timeout=180)

    stack.stop(first, sig)
    stack.start_worker()
    stack.post_all("faith-b", [checkin(f"c{i}", "rally-h", phone=phone(i), at=LATER) for i in range(N)])
    eventually(lambda: stack.action_rows("rally-h")["faith-b"]["attended"] == N, timeout=180)
    assert stack.action_rows("rally-h") == {
        "union-a": {"pledged": 0, "rsvp_yes": N, "attended": 0},
        "faith-b": {"pledged": 0, "rsvp_yes": 0, "attended": N},
    }


def test_healthz_says_so_while_the_broker_does_not_answer_and_recovers(own_broker, make_stack):
    """An outside probe froze the broker for 45 s: /healthz said "ok" throughout, since the tally
    reader's polls return (empty) every 200 ms whether the broker answers or not. Now it answers
    503 once the broker has not answered a fetch for 30 s (the default), and 200 once it does."""
    stack = make_stack(own_broker.bootstrap)
    stack.start_web()
    eventually(lambda: stack.get("/healthz").status_code == 200)
    own_broker.pause()
    try:
        frozen = eventually(lambda: (r := stack.get("/healthz")).status_code == 503 and r, timeout=60)
        assert frozen.json()["reason"].startswith("the tally reader has not heard from the broker for")
    finally:
        own_broker.resume()
    eventually(lambda: stack.get("/healthz").status_code == 200, timeout=60)


def test_a_worker_stops_promptly_and_cleanly_when_the_broker_is_gone(own_broker, make_stack):
    """A worker told to stop after its broker went away took a minute (its Kafka consumer's stop
    raised what the last fetch met, so its thread never said it had stopped, and the worker
    waited out its timeout) and wrote the traceback a word per log line; the web app's shutdown
    failed on the same error."""
    stack = make_stack(own_broker.bootstrap)
    worker = stack.start_worker()
    web = stack.start_web()
    stack.post("union-a", [signup("s-1", phone=phone(1))])
    eventually(lambda: stack.get("/v1/tallies").json()["totals"]["signups"] == 1, timeout=90)
    own_broker.stop()
    eventually(lambda: "Failed fetch messages" in stack.logs[0].read_text(), timeout=30)  # the worker has seen it go
    worker.terminate()
    started = time.monotonic()
    assert worker.wait(60) == 0
    assert time.monotonic() - started < 20
    log = stack.logs[0].read_text()
    assert "mode.redirect" not in log and "Error while stopping child" not in log
    web.terminate()
    web.wait(30)  # uvicorn exits by the signal it was sent, once it has shut down
    assert "shutdown failed" not in stack.logs[1].read_text()
