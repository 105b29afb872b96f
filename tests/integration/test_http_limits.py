"""The web app as `turnout web` serves it (uvicorn, default limits) against hostile HTTP:
bodies it must not read, connections it must not keep, input it must refuse without a 500."""

from __future__ import annotations

import json
import re
import select
import socket
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from connectors.sandbox.signing import EventSigner
from connectors.signing import headers
from tests.factories import checkin, phone, pledge, rsvp
from tests.polling import eventually

from .conftest import TOKEN

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
CHUNK = b" " * 65536


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def stream_until_answered(port: int, head: bytes, limit: int) -> tuple[bytes, int]:
    """Send ``head``, then chunks of spaces (chunked, no length) until the server answers or
    closes, or ``limit`` bytes went out. Returns what came back and how much was sent."""
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
        while sent < limit:
            if select.select([sock], [], [], 0)[0]:
                answer = sock.recv(65536)
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(CHUNK)
        if not answer:
            answer = drain(sock)
    return answer, sent


def drain(sock: socket.socket) -> bytes:
    """What the server sent that is still to be read: a reset (the server closed with our bytes
    unread) does not take back an answer that already arrived."""
    try:
        return sock.recv(65536)
    except (ConnectionResetError, socket.timeout):
        return b""


def test_unauthenticated_200_mib_bodies_are_refused_unread_and_memory_stays_flat(make_stack):
    signer = EventSigner()
    stack = make_stack(twilio_auth_token=SecretStr("twilio-token"), sendgrid_public_key=signer.public_key)
    web = stack.start_web()
    assert stack.get("/healthz").status_code == 200
    before = peak_rss(web.pid)
    routes = {
        b"POST /v1/people/forget HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n": b"401",
        b"POST /v1/providers/sendgrid/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n": b"403",
        b"POST /v1/providers/twilio/status?ask=a:p1:sms HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n": b"403",
        b"POST /v1/providers/twilio/inbound HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n": b"403",
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Turnout-Partner: nobody\r\n": b"401",
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Turnout-Partner: union-a\r\n": b"401",  # no signature
        b"POST /dashboard/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n": b"413",
        b"POST /dashboard/accounts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n": b"401",  # not signed in
    }
    for head, status in routes.items():
        answer, sent = stream_until_answered(stack.web_port, head, 200 * MiB)
        assert answer.startswith(b"HTTP/1.1 " + status), (head, answer[:300])
        assert b"connection: close" in answer.lower(), answer[:300]
        assert sent < 64 * MiB, (head, sent)  # answered at once; the rest sat in socket buffers
        # Declared up front, the same body is refused before a byte of it is read.
        with socket.create_connection(("127.0.0.1", stack.web_port), timeout=10) as sock:
            sock.sendall(head + b"Content-Length: %d\r\n\r\n" % (200 * MiB))
            assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    assert peak_rss(web.pid) - before < 32 * MiB
    assert stack.get("/healthz").status_code == 200


def test_an_endless_chunked_body_gets_413_and_its_connection_is_closed(make_stack):
    stack = make_stack()
    stack.start_web()
    head = (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Turnout-Partner: union-a\r\n"
            b"X-Turnout-Timestamp: %d\r\nX-Turnout-Signature: v1=00\r\n" % int(time.time()))
    sent, answer, closed = 0, b"", False
    with socket.create_connection(("127.0.0.1", stack.web_port), timeout=10) as sock:
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
        while sent < 512 * MiB and not closed:  # the old server read ~9 GB in 10 s and kept going
            readable = select.select([sock], [], [], 0)[0]
            try:
                if readable:
                    data = sock.recv(65536)
                    answer += data
                    closed = not data
                if not closed:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
                    sent += len(CHUNK)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        answer += drain(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert closed and sent < 64 * MiB, sent


def test_idle_and_slow_connections_are_closed(make_stack):
    stack = make_stack()
    stack.start_web()
    idle = [socket.create_connection(("127.0.0.1", stack.web_port), timeout=30) for _ in range(50)]
    slow = socket.create_connection(("127.0.0.1", stack.web_port), timeout=30)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    after_answer = socket.create_connection(("127.0.0.1", stack.web_port), timeout=30)
    after_answer.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    open_ = set(idle + [slow, after_answer])
    heard: dict[socket.socket, bytes] = {}

    def all_closed() -> bool:
        for sock in [s for s in open_ if select.select([s], [], [], 0)[0]]:
            data = sock.recv(65536)
            heard[sock] = heard.get(sock, b"") + data
            if not data:
                open_.discard(sock)
        if slow in open_:
            try:
                slow.sendall(b"X-Trickle: 1\r\n")  # a header line now and then, never the end
            except (BrokenPipeError, ConnectionResetError):
                open_.discard(slow)
        return not open_

    try:
        eventually(all_closed, timeout=30, interval=0.5)
    finally:
        for sock in idle + [slow, after_answer]:
            sock.close()
    assert all(heard.get(s, b"") == b"" for s in idle)
    assert heard[slow].startswith(b"HTTP/1.1 408") and heard[after_answer].startswith(b"HTTP/1.1 200")
    assert stack.get("/healthz").status_code == 200


def test_a_keep_alive_connection_outlives_a_client_pools_idle_expiry(make_stack):
    """httpx keeps an idle connection 5 s, undici 4 s, aiohttp 15 s: had the web app closed it at
    the same moment (5 s, as it did), a post sent on it just then got "Server disconnected
    without sending a response" (a test's first post after its workers started, in CI). The
    web app keeps an idle connection longer than those pools, and still closes it (and a head
    begun on it must then arrive whole within the head timeout)."""
    stack = make_stack()
    stack.start_web()
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", stack.web_port), timeout=30) as sock:
        sock.sendall(request)
        assert drain_one(sock).startswith(b"HTTP/1.1 200")
        answered = time.monotonic()
        time.sleep(16)  # the scenario: a pooled connection idle past aiohttp's 15 s, not a wait for something
        assert not select.select([sock], [], [], 0)[0], "closed while a client pool still keeps it"
        sock.sendall(request)
        assert drain_one(sock).startswith(b"HTTP/1.1 200")
        eventually(lambda: select.select([sock], [], [], 0)[0] and sock.recv(1) == b"", timeout=30, interval=0.5)  # then closed, silently
        assert time.monotonic() - answered < 16 + 25


def drain_one(sock: socket.socket) -> bytes:
    """One whole answer to a request whose body is small (read until its Content-Length is in)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(re.search(rb"content-length: (\d+)", data, re.I)[1]):
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_a_client_that_drops_mid_body_costs_one_info_line_and_no_traceback(make_stack):
    stack = make_stack()
    stack.start_web()
    with socket.create_connection(("127.0.0.1", stack.web_port), timeout=10) as sock:
        sock.sendall(b"POST /v1/people/forget HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                     + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"phone\": ")
    log = stack.logs[-1]
    eventually(lambda: "client disconnected" in log.read_text(errors="replace"))
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and '"ERROR"' not in text and "[ERROR]" not in text


def test_deep_nesting_is_a_400_a_huge_number_a_422_naming_it_and_the_app_goes_on(make_stack):
    stack = make_stack()
    stack.start_web()
    huge = json.dumps(pledge("p0", "rally-1", 3)).replace('"count": 3', '"count": 1' + "0" * 5000).encode()
    for body, status in ((b"[" * 10_000 + b"]" * 10_000, 400), (huge, 422)):
        r = stack.http.post(f"{stack.url}/v1/events", content=body, headers=headers("union-a", stack.secrets["union-a"], body, time.time()))
        assert r.status_code == status and r.json()["detail"], r.text
    assert r.json()["rejected"][0]["errors"][0]["field"] == "count"
    assert stack.post("union-a", [pledge("p1", "rally-1", 3)]).status_code == 202


def test_a_batch_with_a_lone_surrogate_is_written_once_validated_and_its_neighbour_counts_once_after_a_retry(make_stack):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    stack.announce("rally-1")
    bad = json.dumps(pledge("PLACEHOLDER", "rally-1", 7)).replace("PLACEHOLDER", "bad\\ud800")
    body = "[" + json.dumps(rsvp("r1", "rally-1", status="yes", phone=phone(1))) + "," + bad + "]"
    for _ in range(2):  # the partner retries the whole batch, as it would after a 500
        r = stack.http.post(f"{stack.url}/v1/events", content=body.encode(), headers=headers("union-a", stack.secrets["union-a"], body.encode(), time.time()))
        assert r.status_code == 202, r.text
        assert r.json()["accepted"] == 1 and [x["index"] for x in r.json()["rejected"]] == [1]
    # A later event for the same person lands on the same partition: once it counts, the retry has been read.
    stack.post_all("union-a", [checkin("c1", "rally-1", phone=phone(1))])
    eventually(lambda: stack.action_rows("rally-1")["union-a"]["attended"] == 1, timeout=60)
    assert stack.action_rows("rally-1")["union-a"] == {"pledged": 0, "rsvp_yes": 1, "attended": 1}


def answer_to(port: int, request: bytes) -> tuple[int, dict]:
    """Send ``request`` in one write; the status and JSON body of the answer (the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := drain(sock):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower() and b"x-content-type-options: nosniff" in head.lower(), head  # as every answer
    return int(head.split()[1]), json.loads(body)


def test_a_head_past_64_kib_read_whole_and_a_request_that_is_not_http_are_refused_with_the_usual_body(make_stack):
    stack = make_stack()
    stack.start_web()
    # Read in one piece, the head was complete before it was counted: it reached the app (200).
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 100_000 + b"\r\n\r\n"
    assert answer_to(stack.web_port, big) == (431, {"detail": "request head too large", "errors": []})
    status, body = answer_to(stack.web_port, b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400 and body["detail"] and body["errors"] == []
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"b" * 1000) for i in range(70)) + b"\r\n"
    assert answer_to(stack.web_port, many)[0] == 431
    assert stack.http.get(f"{stack.url}/healthz", headers={"X-A": "a" * 60_000}).status_code == 200  # under the limit


@pytest.mark.parametrize("timestamp", [b"\xb2", b"17\xb9\xb2", b" 1790000000", b"1_790000000"],
                         ids=["superscript two", "superscripts", "leading space", "underscore"])
def test_a_sendgrid_timestamp_that_is_not_ascii_digits_gets_403_never_a_500(make_stack, timestamp):
    stack = make_stack(sendgrid_public_key=EventSigner().public_key)
    stack.start_web()
    # Header bytes are read as Latin-1: "\xb2" is "²", a digit to str.isdigit but not to int().
    request = (b"POST /v1/providers/sendgrid/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
               b"X-Twilio-Email-Event-Webhook-Signature: MEUCIQ==\r\nX-Twilio-Email-Event-Webhook-Timestamp: %s\r\n\r\n[]" % timestamp)
    status, body = answer_to(stack.web_port, request)
    assert status == 403 and "timestamp" in body["detail"], body


def test_a_head_past_64_kib_gets_431_and_requests_on_a_kept_connection_are_not_mistaken_for_one(make_stack):
    stack = make_stack()
    stack.start_web()
    with socket.create_connection(("127.0.0.1", stack.web_port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent, answer = 0, b""
        while sent < 64 * MiB and not answer:
            if select.select([sock], [], [], 0)[0]:
                answer = drain(sock)
                break
            try:
                sock.sendall(b"a" * 65536)
            except (BrokenPipeError, ConnectionResetError):
                answer = drain(sock)
                break
            sent += 65536
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    # Big bodies and several requests on one connection are not heads: all are answered.
    events = json.dumps([pledge(f"k{i}", "rally-1", 1) for i in range(500)]).encode()
    body = events + b" " * (900_000 - len(events))
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=1)) as http:  # one kept-alive connection
        for _ in range(3):
            r = http.post(f"{stack.url}/v1/events", content=body, headers=headers("union-a", stack.secrets["union-a"], body, time.time()))
            assert r.status_code == 202, r.text
            assert http.get(f"{stack.url}/healthz").status_code == 200


def test_connections_beyond_the_limit_get_the_usual_refusal(make_stack):
    # An outside probe: uvicorn's own 503 beyond TURNOUT_WEB_MAX_CONNECTIONS was "Service
    # Unavailable" in plain text, with none of the headers every other answer carries.
    stack = make_stack(web_max_connections=3)
    stack.start_web()
    held = [socket.create_connection(("127.0.0.1", stack.web_port), timeout=10) for _ in range(3)]
    try:
        eventually(lambda: answer_to(stack.web_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 503, timeout=10)
        status, body = answer_to(stack.web_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, body["errors"]) == (503, []) and "connections" in body["detail"], body
    finally:
        for s in held:
            s.close()
    eventually(lambda: stack.http.get(f"{stack.url}/healthz").status_code == 200, timeout=15)  # served again once they close
