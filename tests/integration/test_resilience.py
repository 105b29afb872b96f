"""Worker hand-over after a burst, and the broker going silent."""

import signal

import pytest

from tests.factories import checkin, phone, pledge, rsvp
from tests.integration.conftest import eventually

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


def test_the_ingress_answers_503_while_the_broker_is_frozen_and_recovers(own_broker, make_stack):
    stack = make_stack(bootstrap=own_broker.bootstrap, ack_timeout=2.0)
    stack.start_worker()
    stack.start_web()
    assert stack.post("union-a", [pledge("p1", "rally-o", 10)]).status_code == 202

    own_broker.pause()
    try:
        r = stack.post("faith-b", [pledge("p2", "rally-o", 20)])
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) >= 1
    finally:
        own_broker.resume()

    eventually(lambda: stack.post("union-a", [pledge("p3", "rally-o", 30, at="2026-11-23T00:00:00Z")]).status_code == 202, timeout=60)
    eventually(lambda: stack.action_rows("rally-o")["union-a"]["pledged"] == 30, timeout=60)
