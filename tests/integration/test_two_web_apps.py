"""Two workers and two web apps on one broker (README: Scaling out): what one web app does, the
other sees (sessions, accounts, the door list, tallies, erasure). A fan-out while a worker
joins or leaves: tests/integration/test_outreach_queue.py and test_batch_kill.py."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.accounts import PASSWORD
from tests.factories import action, phone, rsvp, signup
from tests.integration.conftest import TOKEN
from tests.integration.test_dashboard_sessions import second_web
from tests.polling import eventually

pytestmark = pytest.mark.integration

ORGANIZER = {"Authorization": f"Bearer {TOKEN}"}


OPEN: list[httpx.Client] = []


def client(base_url: str, **kw) -> httpx.Client:
    """An HTTP client closed when the test ends (``pair``)."""
    OPEN.append(httpx.Client(base_url=base_url, timeout=30, **kw))
    return OPEN[-1]


@pytest.fixture
def pair(make_stack):
    """Two workers, web app A (``stack.url``) and web app B (the returned client's base URL)."""
    stack = make_stack()
    stack.start_worker()
    stack.start_worker()
    stack.start_web()
    yield stack, client(second_web(stack), headers=ORGANIZER)
    while OPEN:
        OPEN.pop().close()


def welcome(base_url: str, link: str) -> httpx.Client:
    client_ = client(base_url)
    token = link.split("#", 1)[1]
    r = client_.post("/dashboard/welcome", data={"token": token, "password": PASSWORD, "confirm": PASSWORD})  # written a moment ago on A
    assert r.status_code == 303 and r.headers["location"] == "/dashboard", r.text
    return client_


def test_an_account_invited_on_one_web_app_signs_in_on_the_other_and_its_logout_ends_it_there(pair):
    stack, b = pair
    r = stack.http.post(f"{stack.url}/dashboard/accounts", headers=ORGANIZER,
                        json={"email": "door@union-a.example.org", "role": "viewer", "partner": "union-a"})
    assert r.status_code == 201, r.text
    on_b = welcome(str(b.base_url), r.json()["link"])  # invited via A, the password chosen on B
    assert on_b.get("/dashboard/view").status_code == 200
    on_a = client(stack.url, cookies={"turnout_session": on_b.cookies["turnout_session"]})
    assert eventually(lambda: on_a.get("/dashboard/view").status_code == 200, timeout=10)
    # Signed in with the password on A, signed out on A: B refuses that session once it reads it.
    login = client(stack.url)
    r = login.post("/dashboard/login", data={"email": "door@union-a.example.org", "password": PASSWORD})
    assert r.status_code == 303, r.text
    copy = client(str(b.base_url), cookies={"turnout_session": login.cookies["turnout_session"]})
    assert eventually(lambda: copy.get("/dashboard/view").status_code == 200, timeout=10)
    assert login.post("/dashboard/logout").status_code == 303
    eventually(lambda: copy.get("/dashboard/view").status_code == 401, timeout=10)
    assert on_b.get("/dashboard/view").status_code == 200  # the other session goes on

    # B's open live stream ends when the account is removed on A.
    with on_b.stream("GET", "/dashboard/events", timeout=httpx.Timeout(30, read=15)) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert any(line.startswith("event: view") for line in lines)
        assert stack.http.delete(f"{stack.url}/dashboard/accounts/door@union-a.example.org", headers=ORGANIZER).status_code == 204
        removed = time.monotonic()
        for _ in lines:  # ends when B closes it
            assert time.monotonic() - removed < 10, "B's stream is still open"
    assert on_b.get("/dashboard/view").status_code == 401


def test_the_door_list_tallies_and_erasure_agree_across_web_apps(pair):
    stack, b = pair
    stack.post_all("union-a", [action("rally-2", {"union-a": 5})])
    stack.post_all("union-a", [signup(f"s{i}", phone=phone(i), given_name=f"Person{i}") for i in range(1, 21)]
                   + [rsvp(f"r{i}", "rally-2", phone=phone(i)) for i in range(1, 21)])
    r = stack.http.post(f"{stack.url}/dashboard/accounts", headers=ORGANIZER,
                        json={"email": "door@union-a.example.org", "role": "viewer", "partner": "union-a"})
    door = welcome(str(b.base_url), r.json()["link"])
    door.headers["Accept"] = "application/json"

    def roster() -> list[dict]:
        r = door.get("/dashboard/checkin/rally-2/roster")
        assert r.status_code == 200, r.text
        return r.json()["people"]

    eventually(lambda: len(roster()) == 20, timeout=30)  # posted via A, listed on B
    ref = next(e["ref"] for e in roster() if e["name"] == "Person7")
    r = door.post("/dashboard/checkin/rally-2", data={"ref": ref, "event_id": "probe-tap-0001"})
    assert r.status_code == 202, r.text

    def rows(base: str) -> dict:
        r = stack.http.get(f"{base}/v1/actions/rally-2/tallies", headers=ORGANIZER)
        assert r.status_code == 200, r.text
        return {p["partner"]: (p["pledged"], p["rsvp_yes"], p["attended"]) for p in r.json()["partners"]}

    eventually(lambda: rows(stack.url) == {"union-a": (5, 20, 1)}, timeout=30)  # checked in on B, counted on A
    eventually(lambda: rows(str(b.base_url)) == rows(stack.url), timeout=30)

    def dashboard(base: str) -> dict:
        view = stack.http.get(f"{base}/dashboard/view", params={"action": "rally-2"}, headers=ORGANIZER).json()
        return {r["partner"]: (r["pledged"], r["rsvp_yes"], r["attended"]) for r in view["action"]["rows"]}

    eventually(lambda: dashboard(stack.url) == dashboard(str(b.base_url)) == {"union-a": (5, 20, 1)}, timeout=10)
    assert eventually(lambda: any(e["name"] == "Person7" and e["checked_in"] for e in roster()), timeout=10)

    # A sign-up via A, forgotten on B at once.
    for i in range(90, 96):
        stack.post_all("union-a", [signup(f"s-{i}", phone=phone(i), email=f"p{i}.probe@example.org", given_name="Ana")])
        r = b.post("/v1/people/forget", json={"email": f"P{i}.probe@example.org"})
        assert r.status_code == 200, r.text
        assert (r.json()["people_removed"], r.json()["data_keys_erased"]) == (1, 1), (i, r.json())

    # Forgotten on B: off the door list of A as well as B's.
    on_a = client(stack.url, cookies={"turnout_session": door.cookies["turnout_session"]},
                        headers={"Accept": "application/json"})
    names = lambda client: {e["name"] for e in client.get("/dashboard/checkin/rally-2/roster").json()["people"]}  # noqa: E731
    assert eventually(lambda: "Person3" in names(on_a) and "Person3" in names(door), timeout=10)
    assert b.post("/v1/people/forget", json={"phone": phone(3)}).json()["people_removed"] == 1
    eventually(lambda: "Person3" not in names(door) and "Person3" not in names(on_a), timeout=10)
