"""Dashboard sessions against running web apps on the real broker, with the default settings:
an open event stream ends within seconds of its partner being disabled, logout revokes the
cookie on every web app instance, /metrics is not there unless a token is configured, and
`turnout up`'s organizer sign-in link works."""

from __future__ import annotations

import time

import httpx
import pytest

from streams.broker import free_port, wait_for_port
from streams.coalition import update_partner
from streams.stack import organizer_sign_in
from tests.accounts import PASSWORD
from tests.factories import action, checkin, phone, pledge
from tests.polling import eventually
from tests.unit.test_dashboard import messages

from .test_dashboard import invite

pytestmark = pytest.mark.integration


def signed_in(stack, email: str, *role: str) -> httpx.Client:
    """A client holding the session of a new account, signed in through its link."""
    token = invite(stack, email, *role).split("#", 1)[1]
    client = httpx.Client(base_url=stack.url, timeout=30)
    r = client.post("/dashboard/welcome", data={"token": token, "password": PASSWORD, "confirm": PASSWORD})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard", r.text
    assert client.get("/dashboard/view").status_code == 200
    return client


def second_web(stack) -> str:
    """Another web app instance on the same topics; its URL."""
    port = free_port()
    wait_for_port(port, 60, stack._spawn(["web", "--port", str(port)], "web-2"))
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def stack(make_stack):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    stack.post_all("union-a", [action("vigil-1")])
    stack.post_all("faith-b", [pledge("p-b", "vigil-1", 5)])
    return stack


def test_head_on_the_event_stream_ends_after_its_headers_and_the_connection_goes_on(stack):
    """HEAD is answered as GET (headers only), the endless event stream included: it ends there,
    so the next request on the same kept-alive connection is answered."""
    client = signed_in(stack, "staff@faith-b.example.org", "--partner", "faith-b")
    try:
        for path in ("/dashboard/events", "/healthz", "/dashboard/events", "/healthz"):
            r = client.head(path, timeout=10)
            assert r.status_code == 200 and r.content == b"", path
        assert r.headers["content-type"] == client.get("/healthz").headers["content-type"]
        assert client.head("/dashboard/events").headers["content-type"].startswith("text/event-stream")
    finally:
        client.close()


def test_disabling_a_partner_ends_its_open_event_stream_within_seconds(stack):
    client = signed_in(stack, "staff@faith-b.example.org", "--partner", "faith-b")
    with client.stream("GET", "/dashboard/events", timeout=httpx.Timeout(30, read=15)) as r:
        assert r.status_code == 200
        stream = messages(r.iter_lines())
        assert next(e for e, _ in stream if e == "view") == "view"
        update_partner(stack.settings.coalition, "faith-b", lambda entry: entry.update(enabled=False))
        disabled = time.monotonic()
        stack.post_all("union-a", [checkin("c-after", "vigil-1", phone=phone(1))])  # figures move after the disable
        for event, data in stream:  # ends when the server closes the stream
            assert event != "view", f"figures sent to a disabled partner: {data[:200]}"
            assert time.monotonic() - disabled < 10, "the stream is still open"
    assert time.monotonic() - disabled < 10  # the default heartbeat (5 s) bounds it
    assert client.get("/dashboard/view").status_code == 401


def test_logout_revokes_the_cookie_on_every_web_app_instance(stack):
    client = signed_in(stack, "staff@faith-b.example.org", "--partner", "faith-b")
    cookie = client.cookies["turnout_session"]
    other = httpx.Client(base_url=second_web(stack), timeout=30, cookies={"turnout_session": cookie})
    assert eventually(lambda: other.get("/dashboard/view").status_code == 200, timeout=30)  # one session, both instances

    r = client.post("/dashboard/logout")
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
    stolen = httpx.Client(base_url=stack.url, timeout=30, cookies={"turnout_session": cookie})
    assert stolen.get("/dashboard/view").status_code == 401  # where it signed out: at once
    eventually(lambda: other.get("/dashboard/view").status_code == 401, timeout=10)  # elsewhere: once read from the topic
    assert other.get("/dashboard/events").status_code == 401


def test_metrics_are_not_served_without_a_token_by_default(stack):
    r = httpx.get(f"{stack.url}/metrics")
    assert r.status_code == 404 and "turnout_" not in r.text


def test_turnout_up_prints_a_working_organizer_sign_in_link(stack):
    """What `turnout up` prints for the dashboard: a link that signs an organizer in; on the
    next start, a new link for the same organizer, and the old one is spent."""
    email, link = organizer_sign_in(stack.settings, stack.url)
    assert email == "organizer@example.org" and link.startswith(f"{stack.url}/dashboard/welcome#")
    client = httpx.Client(base_url=stack.url, timeout=30)

    def welcome(link: str) -> httpx.Response:
        token = link.split("#", 1)[1]
        return client.post("/dashboard/welcome", data={"token": token, "password": PASSWORD, "confirm": PASSWORD})

    assert welcome(link).status_code == 303  # written by another process a moment ago: the web app waits to read it
    assert client.get("/dashboard/view").json()["viewer"] == {"role": "organizer", "partner": None, "email": email, "admin": True}
    (again, replaced), (_, newest) = organizer_sign_in(stack.settings, stack.url), organizer_sign_in(stack.settings, stack.url)
    assert again == email  # the organizer the broker knows, not a new one
    assert welcome(newest).status_code == 303
    assert welcome(replaced).status_code == 400 and welcome(link).status_code == 400
