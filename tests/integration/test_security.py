"""Security checks against the real web app (uvicorn) and worker."""

from __future__ import annotations

import select
import socket
import time

import pytest

from tests.factories import checkin, phone, pledge, signup
from tests.polling import eventually

from .conftest import TOKEN

pytestmark = pytest.mark.integration


def test_an_endless_body_is_refused_before_it_is_read_whole(make_stack):
    stack = make_stack()
    stack.start_web()
    chunk = b"x" * 65536
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", stack.web_port), timeout=10) as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-Turnout-Partner: union-a\r\nTransfer-Encoding: chunked\r\n\r\n")
        deadline = time.monotonic() + 30
        while sent < 200 * len(chunk) * 16 and time.monotonic() < deadline:  # up to 200 MiB, no length declared
            if select.select([sock], [], [], 0)[0]:
                answer = sock.recv(4096)
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        if not answer:
            answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Refused at the 1 MiB limit, not after reading everything: what was sent beyond it sits in
    # loopback socket buffers (a few MiB), not in the app.
    assert sent < 32 * 1024 * 1024


def test_secrets_never_reach_the_logs(make_stack):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    stack.announce('rally-1')
    stack.post_all("union-a", [signup("s1", phone=phone(1), email="s1@example.org"), pledge("p1", "rally-1", 3), checkin("c1", "rally-1", phone=phone(1))])
    assert stack.post("union-a", [pledge("p2", "rally-1", 3)], secret=stack.secrets["faith-b"]).status_code == 401
    assert stack.http.get(f"{stack.url}/v1/tallies", headers={"Authorization": "Bearer wrong-" + TOKEN}).status_code == 401
    eventually(lambda: stack.action_rows("rally-1")["union-a"]["attended"] == 1)
    logs = "".join(log.read_text(errors="replace") for log in stack.logs)
    secrets = [*stack.secrets.values(), TOKEN, stack.settings.person_key_secret.get_secret_value()]
    assert logs and not [s for s in secrets if s in logs]
