"""Dashboard accounts without HTTP: the rules, the book, the throttle, the store and `turnout accounts`."""

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from connectors.accounts.book import AccountBook
from connectors.accounts.passwords import digest
from connectors.accounts.rules import AccountRefused, Session, check_manager, session_account
from connectors.accounts.store import MemoryAccountLog
from connectors.accounts.throttle import Throttle
from contracts.accounts import Account, Revocation, account_key, revocation_key
from streams import cli
from streams.coalition import add_partner
from tests.accounts import account, add, started_store

NOW = datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)

MANAGE = {  # (who manages: None for an organizer, role given, partner given) → refused?
    "an organizer invites a partner's viewer": (None, "viewer", "faith-b", False),
    "an organizer invites another organizer": (None, "organizer", None, False),
    "an admin invites its own partner's viewer": ("faith-b", "viewer", "faith-b", False),
    "an admin invites its own partner's admin": ("faith-b", "admin", "faith-b", False),
    "an admin invites another partner's viewer": ("faith-b", "viewer", "union-a", True),
    "an admin invites an organizer": ("faith-b", "organizer", None, True),
    "an organizer without a partner for a viewer": (None, "viewer", None, True),
    "a partner for an organizer": (None, "organizer", "faith-b", True),
}


@pytest.mark.parametrize("manager, role, partner, refused", MANAGE.values(), ids=MANAGE.keys())
def test_who_may_give_which_role_at_which_partner(manager, role, partner, refused):
    if refused:
        with pytest.raises(AccountRefused):
            check_manager(manager, role, partner)
    else:
        check_manager(manager, role, partner)


def test_an_account_names_a_partner_exactly_when_it_is_not_an_organizers():
    for role, partner in (("organizer", "faith-b"), ("viewer", None), ("admin", None)):
        with pytest.raises(ValidationError):
            Account(email="x@example.org", id="1", role=role, partner=partner, sessions_since=NOW, invited_by="t", created_at=NOW)
    assert account(" Ana@Example.ORG ", "viewer", "faith-b").email == "ana@example.org"


def session_of(a: Account, **changes) -> Session:
    fields = dict(email=a.email, account_id=a.id, sid="sid-1", issued_at=NOW.timestamp() + 60, expires_at=NOW.timestamp() + 3600, partner_fp="fp-1")
    return Session(**{**fields, **changes})


def test_a_session_holds_until_any_of_its_endings():
    a = account("ana@example.org", "viewer", "faith-b").model_copy(update={"sessions_since": NOW})
    book = AccountBook()
    book.apply(account_key(a.email), a, 0)
    fp = {"faith-b": "fp-1"}.get
    at = NOW.timestamp() + 120

    assert session_account(session_of(a), book, at, digest("sid-1"), fp) == a
    endings = {
        "expired": (session_of(a), at + 3600, fp),
        "partner disabled": (session_of(a), at, lambda p: None),
        "partner secret rotated": (session_of(a), at, lambda p: "fp-2"),
        "signed in before the password was set anew": (session_of(a, issued_at=NOW.timestamp() - 1), at, fp),
        "another account of the same email": (session_of(a, account_id="an-older-account"), at, fp),
    }
    for why, (session, when, fingerprint) in endings.items():
        assert session_account(session, book, when, digest("sid-1"), fingerprint) is None, why
    book.apply(revocation_key(digest("sid-1")), Revocation(expires_at=NOW + timedelta(hours=1)), 1)
    assert session_account(session_of(a), book, at, digest("sid-1"), fp) is None, "signed out"
    assert session_account(session_of(a, sid="sid-2"), book, at, digest("sid-2"), fp) == a  # other sessions hold
    book.apply(account_key(a.email), None, 2)
    assert session_account(session_of(a, sid="sid-2"), book, at, digest("sid-2"), fp) is None, "account removed"


def test_the_book_never_goes_back_to_an_older_record_of_a_key():
    book = AccountBook()
    a = account("ana@example.org", "viewer", "faith-b")
    assert book.apply(account_key(a.email), a, 5)
    assert book.apply(account_key(a.email), None, 9)  # removed, applied at once by the writer
    assert not book.apply(account_key(a.email), a, 5)  # read back later by the reader: ignored
    assert book.account(a.email) is None


def test_the_throttle_opens_again_once_the_oldest_failure_leaves_the_window():
    t = Throttle(limit=3, window=60)
    for at in (0, 10, 20):
        assert t.retry_after("ana", at) is None
        t.failed("ana", at)
    assert t.retry_after("ana", 30) == 30  # the failure at 0 leaves the window at 60
    assert t.retry_after("ben", 30) is None
    assert t.retry_after("ana", 60) is None
    t.failed("ana", 61)
    assert t.retry_after("ana", 62) == 8  # failures at 10, 20, 61
    t.succeeded("ana")
    assert t.retry_after("ana", 62) is None


def test_the_throttle_forgets_keys_whose_failures_are_old_and_stays_bounded():
    t = Throttle(limit=5, window=60, max_keys=100)
    for i in range(1000):
        t.failed(f"guess{i}", i)
    assert len(t._failures) <= 60  # only the last window's keys are kept
    burst = Throttle(limit=5, window=60, max_keys=100)
    for i in range(1000):
        burst.failed(f"guess{i}", 0)
    assert len(burst._failures) == 100


def test_a_forgiven_attempt_leaves_no_empty_entry_for_the_next_address_to_trip_over():
    """An outside probe: a sign-in counted before it was checked, then forgiven (it succeeded),
    left an empty entry; the next failure from any other address read its last failure
    (IndexError), and every sign-in from elsewhere was a 500 until the first address failed."""
    t = Throttle(limit=5, window=900)
    t.failed("203.0.113.1", 1.0)
    t.forgive("203.0.113.1", 1.0)
    t.failed("203.0.113.2", 2.0)  # raised
    assert t.retry_after("203.0.113.1", 3.0) is None and list(t._failures) == ["203.0.113.2"]
    for at in range(2, 7):
        t.failed("203.0.113.1", float(at))
    t.forgive("203.0.113.1", 6.0)  # one taken back, four still count
    assert t.retry_after("203.0.113.1", 7.0) is None
    t.failed("203.0.113.1", 7.0)
    assert t.retry_after("203.0.113.1", 8.0) == 894.0  # failures at 2, 3, 4, 5 and 7


@pytest.mark.parametrize("instances", [1, 2])
def test_a_link_used_several_times_at_once_signs_in_one_of_them_and_tells_the_others(instances):
    """An outside probe: three uses of one link at once each got "signed in" (303 and a
    cookie), and only the last password written held. The first use in the topic's order wins
    on every instance; the others are told the link was used."""
    log = MemoryAccountLog()
    stores = [started_store(log) for _ in range(instances)]
    now = datetime.now(timezone.utc)

    async def run():
        _, token = await stores[0].invite("new@faith-b.example.org", "viewer", "faith-b", "test", now, 72)
        return await asyncio.gather(*(stores[i % instances].set_password(token, f"passphrase number {i}", now) for i in range(3)),
                                    return_exceptions=True)

    results = asyncio.run(run())
    won = [r for r in results if isinstance(r, Account)]
    assert len(won) == 1, results
    assert all(isinstance(r, AccountRefused) and r.status == 400 and "used already" in str(r) for r in results if r not in won), results
    for store in stores:
        assert store.book.account("new@faith-b.example.org") == won[0]


def test_the_log_holds_hashes_never_a_token_or_a_password():
    log = MemoryAccountLog()
    store = started_store(log)
    _, token = asyncio.run(store.invite("ana@example.org", "viewer", "faith-b", "test", NOW, 72))
    asyncio.run(store.set_password(token, "a long enough password", NOW))
    asyncio.run(store.sign_out("session-id-1", NOW + timedelta(hours=1), NOW))
    written = repr(log.records)
    assert token not in written and "a long enough password" not in written and "session-id-1" not in written
    assert digest(token) in written and "$argon2id$" in written and digest("session-id-1") in written


def test_signing_out_clears_revocations_of_sessions_expired_by_then():
    log = MemoryAccountLog()
    store = started_store(log)
    asyncio.run(store.sign_out("old", NOW + timedelta(hours=1), NOW))
    asyncio.run(store.sign_out("new", NOW + timedelta(hours=13), NOW + timedelta(hours=2)))
    assert store.book.expired_revocations(NOW + timedelta(hours=2)) == []
    assert log.records[-1] == (revocation_key(digest("old")), None)  # tombstoned: compaction drops it
    assert store.book.revoked(digest("new"))


@pytest.fixture
def shell(tmp_path, monkeypatch):
    """`turnout accounts` with the in-memory log instead of the broker's accounts topic."""
    log = MemoryAccountLog()
    monkeypatch.setattr(cli, "accounts_log", lambda s: log)
    path = tmp_path / "c.toml"
    add_partner(path, "faith-b", "Faith B", "faith")
    env = {"TURNOUT_COALITION": str(path), "TURNOUT_PUBLIC_URL": "https://turnout.example.org"}
    return lambda *args: CliRunner().invoke(cli.main, ["accounts", *args], env=env), log


def test_turnout_accounts_invite_prints_a_one_time_link_and_keeps_only_its_hash(shell):
    run, log = shell
    r = run("invite", "Ana@Faith-B.example.org", "--partner", "faith-b", "--role", "admin")
    assert r.exit_code == 0, r.output
    link = r.stdout.strip().splitlines()[-1]
    assert link.startswith("https://turnout.example.org/dashboard/welcome#")
    token = link.split("#", 1)[1]
    store = started_store(log)
    invited = store.book.account("ana@faith-b.example.org")
    assert (invited.role, invited.partner, invited.invite_sha256) == ("admin", "faith-b", digest(token))
    assert token not in repr(log.records)
    organizer = run("invite", "lead@example.org", "--organizer")
    assert organizer.exit_code == 0 and started_store(log).book.account("lead@example.org").partner is None


@pytest.mark.parametrize("args, said", [
    (("x@example.org",), "exactly one of --partner"),
    (("x@example.org", "--partner", "faith-b", "--organizer"), "exactly one of --partner"),
    (("x@example.org", "--partner", "no-such"), "(partners: faith-b)"),  # which ones there are (an outside probe)
    (("not-an-email", "--partner", "faith-b"), "Invalid value for 'EMAIL': An email address must have an @-sign"),
])
def test_turnout_accounts_invite_refuses_what_it_cannot_do(shell, args, said):
    run, log = shell
    r = run("invite", *args)
    assert r.exit_code != 0 and said in r.output and log.records == []


def test_turnout_accounts_list_and_remove(shell):
    run, log = shell
    add(log, account("ana@example.org", "viewer", "faith-b"), account("lead@example.org", "organizer"))
    listed = run("list")
    assert listed.exit_code == 0 and "ana@example.org" in listed.output and "lead@example.org" in listed.output
    assert "$argon2" not in listed.output
    assert "lead@example.org" not in run("list", "--partner", "faith-b").output
    removed = run("remove", "ANA@example.org")
    assert removed.exit_code == 0 and "sessions have ended" in removed.output
    assert started_store(log).book.account("ana@example.org") is None
    again = run("remove", "ana@example.org")
    assert again.exit_code != 0 and "no account ana@example.org" in again.output
    unknown = run("list", "--partner", "faith-x")  # a typo, not an empty list
    assert unknown.exit_code == 1 and "no partner 'faith-x' in" in unknown.output and "dashboard accounts" not in unknown.output, unknown.output
    add(log, account("old@example.org", "viewer", "gone-c"))  # a partner since removed from the file: its accounts still show
    assert "old@example.org" in run("list", "--partner", "gone-c").output


def test_a_password_is_the_same_however_the_keyboard_composes_its_accents():
    # macOS and iOS type "é" as e + a combining accent, Windows as one character: a password
    # chosen on one was refused on the other.
    from connectors.accounts.passwords import hash_password, verify

    composed, decomposed = "café au lait " * 2, "cafe\u0301 au lait " * 2
    stored = asyncio.run(hash_password(composed))
    assert asyncio.run(verify(stored, decomposed)) and asyncio.run(verify(stored, composed))
    assert not asyncio.run(verify(stored, "cafe au lait " * 2))
    from argon2 import PasswordHasher

    before = PasswordHasher().hash(decomposed)  # hashed as typed, before passwords were normalized
    assert asyncio.run(verify(before, decomposed))
