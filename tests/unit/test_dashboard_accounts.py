"""Dashboard accounts over HTTP, with the in-memory account log: sign-in links, sessions that
end (logout, removal, expiry), throttling, and admins managing their partner's staff."""

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.accounts.store import MemoryAccountLog
from connectors.web import dashboard
from connectors.web.app import create_app
from connectors.web.publisher import ListPublisher
from connectors.web.tally_reader import Changes
from streams.coalition import add_partner
from streams.settings import Settings
from tests.accounts import PASSWORD, account, add, sign_in, started_store
from tests.unit.test_dashboard import PARTNERS, messages, next_view, pledged, seeded_book

TOKEN = "organizer-token"
ORGANIZER, ADMIN_B, VIEWER_B, VIEWER_A = "org@example.org", "admin@faith-b.example.org", "staff@faith-b.example.org", "staff@union-a.example.org"
NEW_PASSWORD = "a brand new passphrase"


class Web:
    """One coalition, one account log, and as many web app instances on them as a test wants."""

    def __init__(self, tmp_path, **settings) -> None:
        path = tmp_path / "coalition.toml"
        for pid, name in PARTNERS.items():
            add_partner(path, pid, name, "union")
        self.settings = Settings(coalition=path, organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092", **settings)
        self.book = seeded_book()
        self.changes = Changes()  # what the tally reader notifies; the instances' account stores do too
        self.log = MemoryAccountLog()
        add(self.log, account(ORGANIZER, "organizer"), account(ADMIN_B, "admin", "faith-b"), account(VIEWER_B, "viewer", "faith-b"), account(VIEWER_A, "viewer", "union-a"))
        self.store = started_store(self.log)
        self.client = self.instance()

    def instance(self) -> TestClient:
        """Another web app instance: its own store, reading the same accounts topic."""
        store = self.store if not hasattr(self, "client") else started_store(self.log)
        return TestClient(create_app(self.settings, publisher=ListPublisher(), book=self.book, accounts=store, changes=self.changes))

    def invite(self, email, role="viewer", partner="faith-b", now=None, hours=72.0) -> str:
        _, token = asyncio.run(self.store.invite(email, role, partner, "test", now or datetime.now(timezone.utc), hours))
        return token


@pytest.fixture
def web(tmp_path):
    return Web(tmp_path)


def welcome(client, token, password=NEW_PASSWORD, confirm=None):
    return client.post("/dashboard/welcome", data={"token": token, "password": password, "confirm": password if confirm is None else confirm}, follow_redirects=False)


def stream_ends(web, change, deadline_s=8.0):
    """Open the event stream, see figures move, ``change()``, and return how long the stream
    took to end; fail if it sends figures after the change or outlives the deadline."""
    with web.client.stream("GET", "/dashboard/events") as r:
        assert r.status_code == 200
        stream = messages(r.iter_lines())
        first = next_view(stream, time.monotonic() + 5)
        pledged(web.book, "faith-b", 81)
        web.changes.notify()
        assert next_view(stream, time.monotonic() + 5)["version"] > first["version"]  # live until then
        change()
        changed = time.monotonic()
        pledged(web.book, "faith-b", 82)  # not notified: only the change to the accounts may wake the stream
        for event, data in stream:  # the loop ends when the stream does
            assert event != "view", f"figures sent after the session ended: {data[:200]}"
            assert time.monotonic() < changed + deadline_s, "the stream is still open"
        return time.monotonic() - changed


def test_an_invited_person_chooses_a_password_with_the_link_and_is_signed_in(web):
    token = web.invite("new@faith-b.example.org")
    page = web.client.get("/dashboard/welcome")
    assert page.status_code == 200 and page.headers["referrer-policy"] == "no-referrer" and token not in page.text
    r = welcome(web.client, token)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    view = web.client.get("/dashboard/view").json()
    assert view["viewer"] == {"role": "partner", "partner": "faith-b", "email": "new@faith-b.example.org", "admin": False}
    # From then on: email and the chosen password.
    other = web.instance()
    assert sign_in(other, "NEW@faith-b.example.org ", NEW_PASSWORD).status_code == 303
    assert other.get("/dashboard/view").status_code == 200


def test_the_welcome_page_learns_whose_link_it_is_while_the_link_is_good(web):
    token = web.invite("New@faith-b.example.org")
    r = web.client.post("/dashboard/welcome/account", json={"token": token})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert r.json() == {"email": "new@faith-b.example.org", "role": "viewer", "partner": "faith-b"}
    # Refused as every JSON route refuses (an outside probe: deep nesting and a lone surrogate were 500s with a traceback each).
    for body, status, said in [({"token": "a-guessed-token"}, 400, "not valid"), ({}, 422, "body.token"), ("[1]", 400, "must be a JSON object"),
                               ({"token": 7}, 422, "body.token"), ('{"token": ' + "[" * 2_000 + "]" * 2_000 + "}", 400, "nested deeper"),
                               ('{"token": "\\ud800"}', 422, "body.token")]:
        bad = web.client.post("/dashboard/welcome/account", **({"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, str) else {"json": body}))
        assert bad.status_code == status and said in bad.text and set(bad.json()) == {"detail", "errors"}, bad.text
    assert welcome(web.client, token).status_code == 303
    used = web.instance().post("/dashboard/welcome/account", json={"token": token})
    assert used.status_code == 400 and "used already" in used.json()["detail"]


def test_guessing_whose_link_a_token_is_is_throttled_per_address(web):
    for i in range(20):  # the default limit per address
        assert web.client.post("/dashboard/welcome/account", json={"token": f"guess-{i}"}).status_code == 400
    r = web.client.post("/dashboard/welcome/account", json={"token": web.invite("new@faith-b.example.org")})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_guesses_sent_at_once_are_throttled_as_if_sent_one_after_another(web):
    # An outside probe: 100 guesses at once were all answered 400, none 429 (the failure was
    # counted only after the look-up's await).
    import httpx

    async def reading(*args):  # a token not known yet is looked for in the broker's log: the request waits there
        await asyncio.sleep(0)

    web.log.catch_up = reading

    async def burst() -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web.client.app), base_url="http://testserver") as client:
            answers = await asyncio.gather(*(client.post("/dashboard/welcome/account", json={"token": f"burst-{i}"}) for i in range(40)))
        return sorted(r.status_code for r in answers)

    assert asyncio.run(burst()) == [400] * 20 + [429] * 20


def test_a_sign_in_link_works_once(web):
    token = web.invite("new@faith-b.example.org")
    assert welcome(web.client, token).status_code == 303
    again = welcome(web.instance(), token, "somebody else's password")
    assert again.status_code == 400 and "used already" in again.text
    assert sign_in(web.instance(), "new@faith-b.example.org", "somebody else's password").status_code == 401


def test_an_expired_link_is_refused_and_nothing_is_written(web):
    token = web.invite("late@faith-b.example.org", now=datetime.now(timezone.utc) - timedelta(hours=73))
    written = len(web.log.records)
    r = welcome(web.client, token)
    assert r.status_code == 400 and "expired" in r.text and len(web.log.records) == written
    assert web.client.get("/dashboard/view").status_code == 401


@pytest.mark.parametrize("password, confirm, said", [
    ("short", None, "at least 12 characters"), (NEW_PASSWORD, NEW_PASSWORD + "!", "differ"),
    # An outside probe: 12 code points that compare as 6 ("é" typed as e and its accent), and 12 spaces.
    ("e\u0301" * 6, None, "at least 12 characters"), (" " * 12, None, "not only spaces"),
])
def test_a_weak_or_mistyped_password_is_refused_and_the_link_still_works(web, password, confirm, said):
    token = web.invite("new@faith-b.example.org")
    written = len(web.log.records)
    r = welcome(web.client, token, password, confirm)
    assert r.status_code == 422 and said in r.text and f'value="{token}"' in r.text  # the form keeps the link's token
    assert len(web.log.records) == written
    assert welcome(web.client, token).status_code == 303


def test_a_new_link_for_an_account_ends_its_sessions_once_used(web):
    old = web.instance()
    assert sign_in(old, VIEWER_B).status_code == 303
    token = web.invite(VIEWER_B)  # "I forgot my password"
    assert old.get("/dashboard/view").status_code == 200  # the old password works until the link is used
    assert welcome(web.client, token).status_code == 303
    assert old.get("/dashboard/view").status_code == 401
    assert sign_in(web.instance(), VIEWER_B, PASSWORD).status_code == 401
    assert web.client.get("/dashboard/view").status_code == 200


def test_logout_revokes_the_cookie_on_every_instance(web):
    assert sign_in(web.client, VIEWER_B).status_code == 303
    cookie = web.client.cookies["turnout_session"]
    elsewhere = web.instance()
    elsewhere.cookies.set("turnout_session", cookie)
    assert elsewhere.get("/dashboard/view").status_code == 200
    r = web.client.post("/dashboard/logout", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login"
    for client in (elsewhere, web.instance()):  # a copy of the cookie is worth nothing now
        client.cookies.set("turnout_session", cookie)
        assert client.get("/dashboard/view").status_code == 401
    assert sign_in(web.client, VIEWER_B).status_code == 303  # a new sign-in is a new session


def test_a_removed_account_is_signed_out_and_a_re_invited_one_does_not_revive_its_sessions(web):
    assert sign_in(web.client, VIEWER_B).status_code == 303
    asyncio.run(web.store.remove(VIEWER_B))
    assert web.client.get("/dashboard/view").status_code == 401
    assert sign_in(web.instance(), VIEWER_B).status_code == 401
    web.invite(VIEWER_B)
    assert web.client.get("/dashboard/view").status_code == 401


@pytest.mark.parametrize("ending", ["logout", "account removed"])
def test_an_open_event_stream_ends_when_its_session_does(web, monkeypatch, ending):
    monkeypatch.setattr(dashboard, "HEARTBEAT", 30.0)  # so the stream can only end because it was woken
    monkeypatch.setattr(dashboard, "MIN_INTERVAL", 0.0)  # not in the pause after a view either
    assert sign_in(web.client, VIEWER_B).status_code == 303
    other = web.instance()
    other.cookies.set("turnout_session", web.client.cookies["turnout_session"])

    def end() -> None:
        if ending == "logout":
            assert other.post("/dashboard/logout", follow_redirects=False).status_code == 303  # from another tab, another instance
        else:
            asyncio.run(web.store.remove(VIEWER_B))

    assert stream_ends(web, end) < 5


def test_an_open_event_stream_ends_when_the_session_expires(tmp_path, monkeypatch):
    monkeypatch.setattr(dashboard, "HEARTBEAT", 30.0)  # so the stream can only end by its expiry
    web = Web(tmp_path, session_hours=3 / 3600)  # 3 s: expiry within the time a test may take
    assert sign_in(web.client, VIEWER_B).status_code == 303
    signed_in = time.monotonic()
    with web.client.stream("GET", "/dashboard/events") as r:
        stream = messages(r.iter_lines())
        next_view(stream, signed_in + 5)
        for _event, _data in stream:  # the loop ends when the stream does
            assert time.monotonic() < signed_in + 8, "the stream outlived its session"
    assert time.monotonic() - signed_in >= 2.9  # at expiry, not before
    assert web.client.get("/dashboard/view").status_code == 401


def test_failed_sign_ins_are_throttled_per_account(web):
    for _ in range(5):  # the default limit
        assert sign_in(web.client, VIEWER_B, "not the password").status_code == 401
    r = sign_in(web.client, VIEWER_B)  # even the right password: the account is locked for a while
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 15 * 60 and "try again" in r.text
    assert web.client.get("/dashboard/view").status_code == 401
    assert sign_in(web.client, VIEWER_A).status_code == 303  # other accounts are not


def test_sign_ins_sent_at_once_are_throttled_as_if_sent_one_after_another(web):
    # Each attempt was counted only once its password check (slow on purpose) had failed: twelve
    # sent at once all passed the check for earlier failures, and all twelve passwords were tried.
    import httpx

    app = create_app(web.settings, publisher=ListPublisher(), book=web.book, accounts=web.store, changes=web.changes)

    async def at_once(email, n):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            return await asyncio.gather(*(c.post("/dashboard/login", data={"email": email, "password": "not the password"}) for _ in range(n)))

    assert sorted(r.status_code for r in asyncio.run(at_once(VIEWER_B, 12))) == [401] * 5 + [429] * 7  # per account
    assert sorted(r.status_code for r in asyncio.run(at_once("ghost@example.org", 40))) == [401] * 5 + [429] * 35
    assert sign_in(web.client, VIEWER_A).status_code == 303  # another account, another client address (the test client's)


def test_signing_in_to_a_disabled_partner_says_why(web):
    # The right password led to /dashboard, which led back to sign-in: a loop with no word.
    from tests.unit.test_dashboard import disable

    disable(web.settings.coalition, "faith-b")
    r = sign_in(web.client, VIEWER_B)
    assert r.status_code == 403 and "Faith Group B is not enabled in this coalition" in r.text
    assert web.client.get("/dashboard/view").status_code == 401  # not signed in
    assert sign_in(web.client, VIEWER_A).status_code == 303  # another partner's staff are


def test_failed_sign_ins_are_throttled_per_address(web):
    staff = [f"staff{i}@faith-b.example.org" for i in range(5)]
    add(web.log, *(account(email, "viewer", "faith-b") for email in staff))
    for email in staff:  # the default limit, 20, spread so that no account reaches its own (5)
        for _ in range(4):
            assert sign_in(web.client, email, "not the password").status_code == 401
    r = sign_in(web.client, VIEWER_A)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    bad = welcome(web.client, "a-guessed-token")
    assert bad.status_code == 429  # guessing sign-in links from the same address is throttled too


def test_a_sign_in_from_one_address_leaves_every_other_address_able_to_sign_in(web):
    """An outside probe: once one address had signed in (its attempt counted, then forgiven),
    a wrong password, a sign-in link or a link look-up from any other address was a 500."""
    assert sign_in(web.client, VIEWER_A).status_code == 303
    elsewhere = TestClient(web.client.app, client=("203.0.113.9", 50000))
    assert sign_in(elsewhere, VIEWER_B, "not the password").status_code == 401
    assert welcome(elsewhere, "a-guessed-token").status_code == 400
    assert elsewhere.post("/dashboard/welcome/account", json={"token": "a-guessed-token"}).status_code == 400
    assert sign_in(elsewhere, VIEWER_B).status_code == 303


def test_an_admin_invites_and_removes_its_own_partners_staff(web):
    assert sign_in(web.client, ADMIN_B).status_code == 303
    listed = web.client.get("/dashboard/accounts").json()
    assert {a["email"] for a in listed} == {ADMIN_B, VIEWER_B}  # its partner's only

    r = web.client.post("/dashboard/accounts", json={"email": "Volunteer@Faith-B.example.org", "role": "viewer"})
    assert r.status_code == 201, r.text
    invited = r.json()
    assert (invited["email"], invited["partner"], invited["role"], invited["status"]) == ("volunteer@faith-b.example.org", "faith-b", "viewer", "invited")
    assert invited["link"].startswith("http://testserver/dashboard/welcome#")  # no TURNOUT_PUBLIC_URL: where it was asked
    newcomer = web.instance()
    assert welcome(newcomer, invited["link"].split("#", 1)[1]).status_code == 303
    assert newcomer.get("/dashboard/view").json()["viewer"]["partner"] == "faith-b"

    assert web.client.delete(f"/dashboard/accounts/{VIEWER_B}").status_code == 204
    assert sign_in(web.instance(), VIEWER_B).status_code == 401
    assert {a["email"] for a in web.client.get("/dashboard/accounts").json()} == {ADMIN_B, "volunteer@faith-b.example.org"}


def test_a_signed_in_browser_cannot_be_made_to_post_from_another_site(web):
    # SameSite=Lax stops another site's form, but not one of the same site (another port or
    # subdomain): an outside probe forged a door walk-in with SMS consent from one.
    assert sign_in(web.client, ADMIN_B).status_code == 303
    invite = {"email": "forged@faith-b.example.org", "role": "admin"}
    # An outside probe: "Origin: null" (a sandboxed frame's opaque origin, which a browser without
    # Sec-Fetch-Site sends alone) and a text/plain body (another site's form passing JSON off) had
    # invited an organizer.
    for headers in ({"Sec-Fetch-Site": "same-site"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"},
                    {"Origin": "http://testserver:9999"}, {"Origin": "null"}, {"Content-Type": "text/plain"},
                    {"Sec-Fetch-Site": "same-origin", "Origin": "null", "Content-Type": "text/plain; charset=utf-8"},
                    # Another outside probe: JSON labelled as a form, the other bodies a page of another site sends unasked.
                    {"Content-Type": "application/x-www-form-urlencoded"}, {"Content-Type": "multipart/form-data; boundary=x"}):
        r = web.client.post("/dashboard/accounts", content=json.dumps(invite).encode(), headers={"Content-Type": "application/json", **headers})
        assert r.status_code == 403 and "another site" in r.json()["detail"], headers
        if "form" not in headers.get("Content-Type", ""):  # signing out is a form's post (the page's own button)
            assert web.client.post("/dashboard/logout", headers=headers, follow_redirects=False).status_code == 403
    assert "forged@faith-b.example.org" not in {a["email"] for a in web.client.get("/dashboard/accounts").json()}
    assert web.client.get("/dashboard/view").status_code == 200  # still signed in
    for headers in ({"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}, {"Sec-Fetch-Site": "same-origin", "Origin": "null"}, {},  # its own pages; scripts
                    {"Origin": "http://127.0.0.1:8000"}):  # the public URL, behind a proxy that passes another Host
        r = web.client.post("/dashboard/accounts", json={**invite, "email": f"ok{len(headers)}@faith-b.example.org"}, headers=headers)
        assert r.status_code == 201, (headers, r.text)
    login = web.client.post("/dashboard/login", data={"email": VIEWER_A, "password": PASSWORD}, headers={"Sec-Fetch-Site": "cross-site"})
    assert login.status_code == 403  # nor sign the browser in as someone else


def test_a_browser_sent_from_another_site_gets_a_page_that_says_so(web):
    """README: the pages people open in a browser answer a refusal with a page that says it (an
    outside probe: another site's form posted to the sign-in page got JSON)."""
    browser = {"Origin": "http://evil.example", "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    r = web.client.post("/dashboard/login", data={"email": VIEWER_A, "password": "x"}, headers=browser)
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html"), r.headers
    assert "another site" in r.text and '<html lang="en">' in r.text and 'href="/dashboard/login"' in r.text
    assert "default-src" in r.headers["content-security-policy"] and r.headers["x-frame-options"] == "DENY"
    script = web.client.post("/dashboard/login", data={"email": VIEWER_A, "password": "x"}, headers={**browser, "Accept": "application/json"})
    assert script.status_code == 403 and script.json()["detail"].startswith("refused: this request came from another site")


def test_a_signed_in_organizers_browser_cannot_be_made_to_erase_someone_from_another_site(web):
    # /v1/people/forget takes an organizer's session as well as the token; the same-site check
    # covered only /dashboard/, and a page on another port erased a person (an outside probe).
    assert sign_in(web.client, ORGANIZER).status_code == 303
    for headers in ({"Sec-Fetch-Site": "same-site"}, {"Origin": "http://127.0.0.1:8699", "Content-Type": "text/plain"},
                    {"Content-Type": "application/x-www-form-urlencoded"}):
        r = web.client.post("/v1/people/forget", content=b'{"phone": "+15105550631"}', headers=headers)
        assert r.status_code == 403 and "another site" in r.json()["detail"], headers
    # Without a session cookie nothing is signed in by the browser: a partner's or a script's
    # post is not refused for its headers (here: a bad signature, its own 401).
    bare = web.instance()
    r = bare.post("/v1/events", content=b"{}", headers={"Sec-Fetch-Site": "cross-site", "X-Turnout-Partner": "faith-b",
                                                        "X-Turnout-Timestamp": "1", "X-Turnout-Signature": "v1=00"})
    assert r.status_code == 401


@pytest.mark.parametrize("body, status, said", [
    ({"email": "x@example.org", "role": "viewer", "partner": "union-a"}, 403, "faith-b's staff"),
    ({"email": "x@example.org", "role": "viewer", "partner": "no-such-partner"}, 403, "faith-b's staff"),
    ({"email": "x@example.org", "role": "organizer"}, 403, "faith-b's staff"),
    ({"email": "not an email", "role": "viewer"}, 422, "not an email address"),
    ({"email": VIEWER_A, "role": "viewer"}, 409, "cannot be invited by faith-b: ask a coalition organizer"),  # whose, it is not told
])
def test_an_admin_cannot_invite_beyond_its_partner_and_nothing_is_written(web, body, status, said):
    assert sign_in(web.client, ADMIN_B).status_code == 303
    written = len(web.log.records)
    r = web.client.post("/dashboard/accounts", json=body)
    assert r.status_code == status and said in r.json()["detail"], r.text
    assert len(web.log.records) == written


@pytest.mark.parametrize("body, field", [
    ({"email": "not an email", "role": "viewer", "partner": "faith-b"}, "body.email"),
    ({"email": "", "role": "viewer", "partner": "faith-b"}, "body.email"),
    ({"email": "x@example.org", "role": "viewer", "partner": "no-such-partner"}, "body.partner"),
    ({"email": "x@example.org", "role": "admin"}, "body.partner"),  # an organizer must say whose
    ({"email": "x@example.org", "role": "organizer", "partner": "faith-b"}, "body.partner"),  # was dropped without a word
    # A terminal escape, a NUL or a bidi override reached `turnout accounts list` as it came (an outside probe).
    ({"email": "y@example.org\u001b[2J", "role": "viewer", "partner": "faith-b"}, "body.email"),
    ({"email": "y\u0000@example.org", "role": "viewer", "partner": "faith-b"}, "body.email"),
    ({"email": "y\u202e@example.org", "role": "viewer", "partner": "faith-b"}, "body.email"),
    ({"email": "<y>@example.org", "role": "viewer", "partner": "faith-b"}, "body.email"),
])
def test_a_refused_invitation_names_the_field_at_fault(web, body, field):
    assert sign_in(web.client, ORGANIZER).status_code == 303
    written = len(web.log.records)
    r = web.client.post("/dashboard/accounts", json=body)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field], r.text
    assert len(web.log.records) == written


def test_an_invitation_with_several_faults_names_each_at_once(web):
    assert sign_in(web.client, ORGANIZER).status_code == 303
    r = web.client.post("/dashboard/accounts", json={"email": ""})  # no address, and a viewer needs a partner
    assert r.status_code == 422 and sorted(e["field"] for e in r.json()["errors"]) == ["body.email", "body.partner"], r.text


def test_an_admin_cannot_remove_another_partners_account_nor_learn_it_exists(web):
    assert sign_in(web.client, ADMIN_B).status_code == 303
    for email in (VIEWER_A, ORGANIZER, "nobody@example.org"):
        r = web.client.delete(f"/dashboard/accounts/{email}")
        assert r.status_code == 404 and r.json()["detail"] == f"no account {email} at faith-b"
    assert sign_in(web.instance(), VIEWER_A).status_code == 303


def test_viewers_manage_no_accounts(web):
    assert sign_in(web.client, VIEWER_B).status_code == 303
    assert web.client.get("/dashboard/accounts").status_code == 403
    assert web.client.post("/dashboard/accounts", json={"email": "x@example.org"}).status_code == 403
    assert web.client.delete(f"/dashboard/accounts/{ADMIN_B}").status_code == 403


def test_organizers_invite_anyone_to_any_partner_and_name_the_partner(web):
    assert sign_in(web.client, ORGANIZER).status_code == 303
    assert len(web.client.get("/dashboard/accounts").json()) == 4
    r = web.client.post("/dashboard/accounts", json={"email": "lead@seniors-c.example.org", "role": "admin", "partner": "seniors-c"})
    assert r.status_code == 201 and r.json()["partner"] == "seniors-c"
    assert web.client.post("/dashboard/accounts", json={"email": "x@example.org", "role": "viewer"}).status_code == 422  # which partner?
    assert web.client.post("/dashboard/accounts", json={"email": "x@example.org", "partner": "no-such"}).status_code == 422
    token_api = web.instance().post("/dashboard/accounts", json={"email": "second@example.org", "role": "organizer"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert token_api.status_code == 201 and token_api.json()["partner"] is None


def test_a_broker_outage_refuses_account_changes_with_retry_after(web):
    assert sign_in(web.client, ADMIN_B).status_code == 303
    web.log.down = True
    r = web.client.post("/dashboard/accounts", json={"email": "x@faith-b.example.org"})
    assert r.status_code == 503 and int(r.headers["retry-after"]) > 0
    out = web.client.post("/dashboard/logout", follow_redirects=False)
    assert out.status_code == 503 and int(out.headers["retry-after"]) > 0


def test_an_invitation_link_is_at_the_public_url_when_one_is_set_whatever_host_the_request_named(tmp_path):
    # An outside probe: through a proxy, or with a forged Host, the link pointed at that name.
    web = Web(tmp_path, public_url="https://turnout.example.org")
    r = web.client.post("/dashboard/accounts", json={"email": "v2@faith-b.example.org", "role": "viewer", "partner": "faith-b"},
                        headers={"Host": "evil.example.net", "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 201 and r.json()["link"].startswith("https://turnout.example.org/dashboard/welcome#"), r.json()
