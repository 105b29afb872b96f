"""The door check-in page: a partner's own people for an action, check-ins and walk-ins written
through the signed partner API (in process, into the real ingress, onto a fake publisher)."""

import asyncio
import json
import re
from html import escape, unescape
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.accounts.store import MemoryAccountLog
from connectors.web.app import create_app
from connectors.web.dashboard.signin import safe_next
from connectors.web.door import matches
from connectors.web.door.checkin import Refusal, checkin_event, tapped_at, walk_in
from connectors.web.door.directory import Contact, Directory
from connectors.web.door.reader import apply_record
from connectors.web.ingress import envelopes
from connectors.web.publisher import ListPublisher
from contracts.erasure import FORGET_PREFIX, ForgetPerson
from contracts.events import ActionEvent, Envelope
from contracts.facts import ActionRecord, Attendance
from contracts.tallies import TallyBook
from streams.coalition import add_partner
from streams.data_keys import MemoryDataKeys
from streams.keys import fact_key, person_key
from streams.settings import Settings
from tests.accounts import account, add, sign_in, started_store
from tests.factories import action, checkin, phone, rsvp, signup

SECRET = b"k"
KEYS = MemoryDataKeys()  # the web app's data keys: events arrive sealed with them
NOW = datetime.now(timezone.utc)
ANA, BEN, CY = phone(1), phone(2), phone(3)


def sealed(partner: str, *events: dict, keys: MemoryDataKeys = KEYS, at: datetime = NOW) -> list[tuple[bytes, bytes]]:
    """Events as the ingress writes them to the events topic (sealed), received ``at``."""
    records, result = asyncio.run(envelopes(list(events), partner, at, SECRET, "US", keys))
    assert not result.rejected, result.rejected
    return records


def feed(directory: Directory, partner: str, *events: dict, keys: MemoryDataKeys = KEYS) -> None:
    """Events as the ingress writes them to the events topic (sealed), read back as the reader does."""
    for key, value in sealed(partner, *events, keys=keys):
        assert apply_record(directory, key, value)


def seeded(keys: MemoryDataKeys = KEYS) -> Directory:
    """union-a signed up Ana and Ben and RSVP'd them yes and no; faith-b signed up Cy and RSVP'd
    her yes, and also knows Ana (RSVP'd maybe)."""
    d = Directory(SECRET, b"ref-key", open=keys.ring.open)
    feed(d, "union-a", signup("s1", phone=ANA, given_name="Ana", family_name="Díaz"), signup("s2", phone=BEN, given_name="Ben"),
         rsvp("r1", "rally-1", "yes", phone=ANA), rsvp("r2", "rally-1", "no", phone=BEN), keys=keys)
    feed(d, "faith-b", signup("s3", phone=CY, given_name="Cy"), rsvp("r3", "rally-1", "yes", phone=CY),
         {**signup("s4", phone=ANA), "person": {"phone": ANA, "given_name": "Anita"}}, rsvp("r4", "rally-1", "maybe", phone=ANA), keys=keys)
    return d


def nobody(key: str) -> None:
    return None


def came(by: str, *keys: str):
    """The tallies' attendance facts: ``by``'s check-in counts for the person under ``keys`` (any key if none)."""
    fact = lambda key: Attendance(action_id="rally-1", person_key=key, attended_at=NOW, attended_by=by, attended_received=NOW)  # noqa: E731
    return lambda key: fact(key) if not keys or key in keys else None


def test_the_list_is_in_the_order_a_person_reads_names_in_numbers_by_their_value():
    # An outside probe: Supporter1, Supporter101, Supporter11 (sorted as text).
    d = Directory(SECRET, b"ref-key", open=KEYS.ring.open)
    names = ["Supporter11", "supporter2", "Supporter101", "Supporter1", "Ana"]
    feed(d, "union-a", *(e for i, n in enumerate(names) for e in (signup(f"s{i}", phone=phone(i), given_name=n), rsvp(f"r{i}", "rally-1", "yes", phone=phone(i)))))
    assert [e.name for e in d.roster("union-a", "rally-1", nobody)] == ["Ana", "Supporter1", "supporter2", "Supporter11", "Supporter101"]


def test_a_partner_finds_only_the_people_it_rsvpd_yes_or_maybe_by_the_name_it_gave():
    d = seeded()
    union = d.roster("union-a", "rally-1", nobody)
    assert [(e.name, e.phone_last4, e.rsvp, e.checked_in, e.walk_in) for e in union] == [("Ana Díaz", ANA[-4:], "yes", False, False)]
    faith = d.roster("faith-b", "rally-1", nobody)
    assert [(e.name, e.rsvp) for e in faith] == [("Anita", "maybe"), ("Cy", "yes")]  # faith-b's own name for Ana
    assert d.roster("seniors-c", "rally-1", nobody) == [] and d.roster("union-a", "other", nobody) == []
    assert union[0].ref != faith[0].ref and person_key(SECRET, ANA, None) not in (union[0].ref, faith[0].ref)


def test_a_walk_in_checked_in_by_the_partner_is_on_its_list_and_checked_in():
    d = seeded()
    feed(d, "union-a", {**checkin("c1", "rally-1", phone=phone(9)), "person": {"phone": phone(9), "given_name": "Walker"}})
    (walker,) = [e for e in d.roster("union-a", "rally-1", nobody) if e.walk_in]
    assert (walker.name, walker.checked_in, walker.rsvp) == ("Walker", True, None)
    assert all(not e.walk_in for e in d.roster("faith-b", "rally-1", nobody))


def test_a_check_in_that_names_someone_differently_fills_gaps_and_renames_nobody():
    # A walk-in typed as "Robert" with Ben's phone turned Ben's line into "Robert": a check-in
    # (or an RSVP) introduces a person, it never overwrites what a sign-up said (the people table's rule).
    d = seeded()
    d.checked_in("union-a", "rally-1", Contact("Robert", "Smith", BEN, None))
    feed(d, "union-a", {**checkin("c2", "rally-1", phone=ANA), "person": {"phone": ANA, "given_name": "Caps"}},
         {**rsvp("r5", "rally-1", "yes", phone=BEN), "person": {"phone": BEN, "given_name": "Bobby", "family_name": "Smyth"}})
    names = {e.phone_last4: e.name for e in d.roster("union-a", "rally-1", nobody)}
    assert names == {ANA[-4:]: "Ana Díaz", BEN[-4:]: "Ben Smith"}  # the family name filled in; the first names kept
    feed(d, "union-a", {**signup("s5", phone=BEN), "person": {"phone": BEN, "given_name": "Benjamin"}})
    assert {e.phone_last4: e.name for e in d.roster("union-a", "rally-1", nobody)}[BEN[-4:]] == "Benjamin Smith"  # a sign-up does


@pytest.mark.parametrize("typed", ["(510) 555-0303", "510.555.0303", "+1 510 555 0303"])
def test_a_walk_in_typed_in_any_format_is_one_line_and_an_erasure_removes_it(typed):
    """The page notes a walk-in at once, and the events topic brings the same check-in a moment
    later, its phone in E.164 (the ingress's): one line, under the key the erasure names."""
    d = seeded()
    walker = Contact("Wanda", "Walkin", typed, None)
    d.checked_in("union-a", "rally-1", walker)
    feed(d, "union-a", checkin_event("c9", "rally-1", NOW, walker))
    assert [(e.name, e.phone_last4) for e in d.roster("union-a", "rally-1", nobody) if e.walk_in] == [("Wanda Walkin", "0303")]
    request = ForgetPerson(request_id="r", requested_at=NOW, contact_keys=(person_key(SECRET, "+15105550303", None),))
    assert apply_record(d, (FORGET_PREFIX + "r").encode(), request.model_dump_json().encode())
    assert [e for e in d.roster("union-a", "rally-1", nobody) if e.walk_in] == []


def test_withdrawals_read_from_the_events_leave_the_list_to_the_tallies():
    """A withdrawal posted through the API (not this door) is the tallies' to apply: one under
    Ana's email before her check-in by phone, and an old one posted again after a newer check-in,
    leave her in while the tallies count her (an outside probe saw the list drop her)."""
    d = seeded()
    feed(d, "union-a", {**checkin("w0", "rally-1", email="ana@example.org"), "withdrawn": True}, checkin("c1", "rally-1", phone=ANA),
         {**checkin("w1", "rally-1", phone=ANA), "withdrawn": True}, checkin("c2", "rally-1", phone=ANA),
         {**checkin("w1", "rally-1", phone=ANA), "withdrawn": True})
    (entry,) = d.roster("union-a", "rally-1", came("union-a"))
    assert entry.checked_in and entry.can_undo


def test_the_list_follows_the_tallies_after_withdrawals_posted_elsewhere():
    """Both partners checked Ana in: union-a's withdrawal takes back only its own, so both lists
    still have her in (faith-b's check-in counts); the backbone's takes back both: out on both
    lists (an outside probe saw union-a's list keep her in, with Undo)."""
    from agents.facts import apply_attendance
    from contracts.events import partner_event

    d = seeded()
    feed(d, "union-a", checkin("c1", "rally-1", phone=ANA))
    feed(d, "faith-b", checkin("c2", "rally-1", phone=ANA))
    ana = person_key(SECRET, ANA, None)
    fact = None
    for partner, event, minute, role in (("union-a", checkin("c1", "rally-1", phone=ANA), 0, "member"),
                                         ("faith-b", checkin("c2", "rally-1", phone=ANA), 1, "member"),
                                         ("union-a", {**checkin("w1", "rally-1", phone=ANA), "withdrawn": True}, 2, "member")):
        fact = apply_attendance(fact, partner_event.validate_python(event), partner, ana, NOW + timedelta(minutes=minute), role)
    tallies = lambda key: fact if key == ana else None  # noqa: E731
    (theirs,) = [e for e in d.roster("faith-b", "rally-1", tallies) if e.name == "Anita"]
    (ours,) = d.roster("union-a", "rally-1", tallies)
    assert (theirs.checked_in, theirs.can_undo, ours.checked_in, ours.can_undo) == (True, True, True, False)
    (as_backbone,) = d.roster("union-a", "rally-1", tallies, backbone=True)  # a backbone partner may take back anyone's
    assert as_backbone.can_undo
    fact = apply_attendance(fact, partner_event.validate_python({**checkin("w2", "rally-1", phone=ANA), "withdrawn": True}), "hub", ana,
                            NOW + timedelta(minutes=3), "backbone")
    assert not any(e.checked_in for p in ("union-a", "faith-b") for e in d.roster(p, "rally-1", tallies))


def test_a_check_in_after_an_undo_shows_at_once_as_the_undo_did():
    # An outside probe: Undo showed at once; Check in again kept "Check in" on the row and the count
    # for seconds, until the tallies read it: the tallies' fact still had the partner's first
    # check-in (withdrawn), which read as "the tallies have read this one".
    from agents.facts import apply_attendance
    from contracts.events import partner_event

    d = seeded()
    ana = person_key(SECRET, ANA, None)
    fact = None
    for event, minute in ((checkin("c1", "rally-1", phone=ANA), -2), ({**checkin("w1", "rally-1", phone=ANA), "withdrawn": True}, -1)):
        fact = apply_attendance(fact, partner_event.validate_python(event), "union-a", ana, NOW + timedelta(minutes=minute), "member")
    tallies = lambda key: fact if key == ana else None  # noqa: E731 - the undo read, the check-in again not yet
    (entry,) = d.roster("union-a", "rally-1", tallies)
    assert not entry.checked_in
    d.checked_in("union-a", "rally-1", Contact("Ana", "Díaz", ANA, None))  # this door's check-in again, just written
    (entry,) = d.roster("union-a", "rally-1", tallies)
    assert entry.checked_in and entry.can_undo
    fact = apply_attendance(fact, partner_event.validate_python({**checkin("w2", "rally-1", phone=ANA), "withdrawn": True}), "hub", ana,
                            datetime.now(timezone.utc) + timedelta(seconds=1), "backbone")
    assert not d.roster("union-a", "rally-1", tallies)[0].checked_in  # the backbone took it back since: the tallies say so


@pytest.mark.parametrize("withdrawn_under", ["c1", "w1"])
def test_a_check_in_posted_again_after_its_withdrawal_is_out_as_the_tallies_say(withdrawn_under):
    # An outside probe: checked in, withdrawn (under the check-in's id or its own), then the same
    # check-in posted again (a re-run import): the tallies count it nowhere (a repeat), and the
    # list had the person in, with Undo, for good.
    from agents.facts import apply_attendance
    from contracts.events import partner_event

    d = seeded()
    ana = person_key(SECRET, ANA, None)
    fact = None
    events = (checkin("c1", "rally-1", phone=ANA), {**checkin(withdrawn_under, "rally-1", phone=ANA), "withdrawn": True}, checkin("c1", "rally-1", phone=ANA))
    for minute, event in enumerate(events):
        for record in sealed("union-a", event, at=NOW + timedelta(minutes=minute)):
            assert apply_record(d, *record)
        fact = apply_attendance(fact, partner_event.validate_python(event), "union-a", ana, NOW + timedelta(minutes=minute), "member")
    assert not fact.counting()  # the tallies: posted again, it changes nothing
    tallies = lambda key: fact if key == ana else None  # noqa: E731
    (entry,) = d.roster("union-a", "rally-1", tallies)
    assert not entry.checked_in and not entry.can_undo
    # Checked in again for real (a new tap: its own event): in at once, and once the tallies have it.
    again = checkin("c2", "rally-1", phone=ANA, at=(NOW + timedelta(minutes=3)).isoformat())
    for record in sealed("union-a", again, at=NOW + timedelta(minutes=3)):
        assert apply_record(d, *record)
    assert d.roster("union-a", "rally-1", tallies)[0].checked_in  # the tallies have not read it yet
    fact = apply_attendance(fact, partner_event.validate_python(again), "union-a", ana, NOW + timedelta(minutes=3), "member")
    assert fact.counting() and d.roster("union-a", "rally-1", tallies)[0].checked_in


def test_checked_in_comes_from_the_tallies_by_any_key_of_the_person():
    d = seeded()
    ana = person_key(SECRET, ANA, None)
    (entry,) = d.roster("union-a", "rally-1", came("faith-b", ana))
    assert entry.checked_in


def test_an_erasure_removes_the_person_from_every_partner_list():
    d = seeded()
    request = ForgetPerson(request_id="r", requested_at=NOW, contact_keys=(person_key(SECRET, ANA, None),))
    assert apply_record(d, (FORGET_PREFIX + "r").encode(), request.model_dump_json().encode())
    assert d.roster("union-a", "rally-1", nobody) == []
    assert [e.name for e in d.roster("faith-b", "rally-1", nobody)] == ["Cy"]


def test_a_person_signed_up_again_after_an_erasure_is_on_the_list_whatever_order_a_replay_reads_the_partitions_in():
    """The erasure command is written to every partition of the events topic, so a web app
    reading the topic from its start (a restart, a second instance) may read one copy before the
    person's old events on another partition, and another copy after their new sign-up: what was
    posted before the erasure goes, what was posted after it stays."""
    keys = MemoryDataKeys()
    ana = person_key(SECRET, ANA, None)
    old = sealed("union-a", signup("s1", phone=ANA, given_name="Ana", family_name="Díaz"), rsvp("r1", "rally-1", "yes", phone=ANA),
                 keys=keys, at=NOW - timedelta(days=1))
    asyncio.run(keys.forget([ana]))
    request = ForgetPerson(request_id="r", requested_at=NOW - timedelta(hours=1), contact_keys=(ana,))
    forget = ((FORGET_PREFIX + "r").encode(), request.model_dump_json().encode())
    again = sealed("union-a", signup("s2", phone=ANA, given_name="Ana"), rsvp("r2", "rally-1", "maybe", phone=ANA), keys=keys)
    d = Directory(SECRET, b"ref-key", open=keys.ring.open)
    for key, value in [forget, *old, *again, forget]:  # one partition's copy first, another's last
        assert apply_record(d, key, value)
    assert [(e.name, e.phone_last4, e.rsvp) for e in d.roster("union-a", "rally-1", nobody)] == [("Ana", ANA[-4:], "maybe")]


def test_names_stay_sealed_in_the_directory_and_a_person_whose_keys_are_erased_is_shown_nowhere():
    keys = MemoryDataKeys()
    d = seeded(keys)
    ana = person_key(SECRET, ANA, None)
    assert d.people["union-a"][ana].given_name.startswith("enc1:")  # held as the events carry it
    asyncio.run(keys.forget([ana]))
    assert d.roster("union-a", "rally-1", nobody) == []
    assert [e.name for e in d.roster("faith-b", "rally-1", nobody)] == ["Cy"]


@pytest.mark.parametrize("order", ["sign-up first", "rsvp first"])
def test_an_rsvp_naming_only_the_email_is_the_person_the_partner_signed_up_with_phone_and_email(order):
    d = Directory(SECRET, b"ref-key", open=KEYS.ring.open)
    both = signup("s9", phone=phone(9), email="pat@example.org", given_name="Pat", family_name="Brightwater")
    by_email = rsvp("r9", "rally-1", "yes", email="pat@example.org")
    for event in ([both, by_email] if order == "sign-up first" else [by_email, both]):
        feed(d, "union-a", event)  # separate requests
    (entry,) = d.roster("union-a", "rally-1", nobody)
    assert (entry.name, entry.phone_last4, entry.has_email, entry.rsvp) == ("Pat Brightwater", phone(9)[-4:], True, "yes")
    assert d.find("union-a", "rally-1", entry.ref).phone == phone(9)


def test_one_person_the_partner_knows_by_phone_and_by_email_is_one_line_that_the_tallies_say_came():
    """Kim is one person (another partner's sign-up linked her phone and email): the partner
    RSVP'd her by phone and checked her in by email, and knew her by email only in another
    action. One line, RSVP'd not a walk-in, checked in; the tallies keep her under the person's
    key, which is neither of the partner's (an outside probe: two lines, one a walk-in, and
    "not checked in" for someone the tallies counted)."""
    d = Directory(SECRET, b"ref-key", open=KEYS.ring.open)
    kim, kim_email, lee = person_key(SECRET, phone(7), None), person_key(SECRET, None, "kim@example.org"), person_key(SECRET, phone(70), None)
    feed(d, "faith-b", {**rsvp("r7", "rally-1", "yes", phone=phone(7)), "person": {"phone": phone(7), "given_name": "Kim", "family_name": "Lee"}},
         {**checkin("c7", "rally-1", email="kim@example.org"), "person": {"email": "kim@example.org", "given_name": "Kim"}},
         {**rsvp("r8", "rally-2", "yes", email="kim@example.org"), "person": {"email": "kim@example.org", "given_name": "Kim"}})
    person_of = {kim: lee, kim_email: lee}.get  # both linked into an older person key (a third identifier)
    (entry,) = d.roster("faith-b", "rally-1", nobody, lambda key: person_of(key, key))
    assert (entry.name, entry.phone_last4, entry.has_email, entry.rsvp, entry.checked_in, entry.walk_in) == ("Kim Lee", phone(7)[-4:], True, "yes", True, False)
    assert d.find("faith-b", "rally-1", entry.ref, person_of=lambda key: person_of(key, key)) == Contact("Kim", "Lee", phone(7), "kim@example.org")
    (other,) = d.roster("faith-b", "rally-2", came("union-a", lee), lambda key: person_of(key, key))
    assert (other.name, other.checked_in) == ("Kim Lee", True)  # the name it gave with her phone; in, under the person's own key
    assert not d.roster("faith-b", "rally-2", came("union-a", lee))[0].checked_in  # without the links: not found


def test_unreadable_records_are_skipped_not_fatal():
    d = seeded()
    assert not apply_record(d, b"x", b'{"not": "an envelope"}')
    assert apply_record(d, b"x", None)  # a tombstone


def test_search_by_any_part_of_a_name_ignoring_case_and_accents_or_by_last_digits():
    (ana,) = seeded().roster("union-a", "rally-1", nobody)
    assert matches(ana, "diaz") and matches(ana, "ANA") and matches(ana, ANA[-4:]) and matches(ana, ANA[-2:])
    assert not matches(ana, "ben") and not matches(ana, "0000")
    # A phone types a straight apostrophe and hyphen; a sheet saved by Excel holds curly ones (an outside probe).
    from connectors.web.door.directory import Entry
    oneil = Entry(ref="r", name="José Muñoz O\u2019Neil\u2013Ruiz", phone_last4=None, has_email=True, rsvp="yes", checked_in=False, walk_in=False)
    assert matches(oneil, "o'neil") and matches(oneil, "Neil-Ruiz") and matches(oneil, "o\u2019neil")
    # Apostrophes ignored, as the README says: "oneil" finds O'Neil (an outside probe: it did not).
    assert matches(oneil, "oneil") and matches(oneil, "Oneil-ruiz")


def test_a_walk_in_needs_a_first_name_and_a_phone_or_email_and_consent_needs_its_channel():
    contact, sms, email = walk_in({"given_name": " Dee ", "phone": "5105550199", "consent_sms": "yes"})
    assert (contact, sms, email) == (Contact("Dee", None, "5105550199", None), True, False)
    for form, field in (({"phone": "5105550199"}, "given_name"), ({"given_name": "Dee"}, "phone"),
                        ({"given_name": "Dee", "email": "d@example.org", "consent_sms": "yes"}, "consent_sms")):
        with pytest.raises(Refusal) as no:
            walk_in(form)
        assert no.value.field == field


def test_a_queued_tap_keeps_its_own_time_unless_it_is_in_the_future_or_days_old():
    earlier = NOW - timedelta(minutes=20)
    assert tapped_at({"at": earlier.isoformat()}, NOW) == earlier
    for bad in ((NOW + timedelta(minutes=1)).isoformat(), (NOW - timedelta(days=3)).isoformat(), "yesterday", "2026-12-01T10:00:00"):
        assert tapped_at({"at": bad}, NOW) == NOW


def test_a_known_persons_check_in_leaves_their_consent_alone():
    event = checkin_event("door-1", "rally-1", NOW, Contact("Ana", None, ANA, None))
    assert "consent" not in event and event["person"] == {"given_name": "Ana", "phone": ANA}
    assert checkin_event("door-2", "rally-1", NOW, Contact("Dee", None, None, "d@example.org"), email=True)["consent"] == {
        "email": {"granted": True, "method": "door check-in"}}


def test_sign_in_leads_on_only_to_a_dashboard_page():
    assert safe_next("/dashboard/checkin/rally-1") and safe_next("/dashboard")
    for bad in ("//evil.example", "https://evil.example/dashboard", "/dashboard/../v1", "/dashboardx", "/dashboard/a?b=c", "",
                "/dashboard\n", "/dashboard/view\n"):  # a final newline, which "$" lets through (an outside probe)
        assert not safe_next(bad), bad


# --- Over HTTP --------------------------------------------------------------------------------

STAFF_A, STAFF_B, ORGANIZER = "door@union-a.example.org", "door@faith-b.example.org", "org@example.org"


@pytest.fixture
def door(tmp_path):
    path = tmp_path / "coalition.toml"
    for pid in ("union-a", "faith-b"):
        add_partner(path, pid, pid.title(), "union")
    s = Settings(coalition=path, person_key_secret=SecretStr(SECRET.decode()), kafka_bootstrap_servers="unused:9092")
    book = TallyBook()
    raw = {**action("rally-1"), "starts_at": (NOW + timedelta(hours=1)).isoformat()}
    book.apply("action", "rally-1", ActionRecord(partner="union-a", action=ActionEvent.model_validate(raw)))
    log, publisher = MemoryAccountLog(), ListPublisher()
    add(log, account(STAFF_A, "viewer", "union-a"), account(STAFF_B, "viewer", "faith-b"), account(ORGANIZER, "organizer"))
    client = TestClient(create_app(s, publisher=publisher, book=book, accounts=started_store(log), directory=seeded(), data_keys=KEYS))
    return client, publisher, book


def written(publisher: ListPublisher) -> list[Envelope]:
    """What the door wrote, read as the intake reads it, its person's fields opened."""
    out = []
    for _, v in publisher.records:
        env = Envelope.model_validate_json(v, context={"normalized": True})
        person = env.event.person
        opened = {f: KEYS.ring.open(f, getattr(person, f)) for f in ("given_name", "family_name", "phone", "email")}
        out.append(env.model_copy(update={"event": env.event.model_copy(update={"person": person.model_copy(update=opened)})}))
    return out


def test_staff_see_their_own_people_with_a_qr_code_and_a_strict_policy(door):
    client, _, _ = door
    sign_in(client, STAFF_A)
    page = client.get("/dashboard/checkin/rally-1")
    assert page.status_code == 200 and "Ana Díaz" in page.text and "Cy" not in page.text and "Anita" not in page.text
    assert "<svg" in page.text and "http://testserver/dashboard/checkin/rally-1" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"] and "unsafe" not in page.headers["content-security-policy"]
    assert ANA not in page.text and ANA[-4:] in page.text  # the last 4 digits only
    # Whether the phone is online is the script's to say (it keeps taps offline); the page
    # without it claimed "Online." whatever the connection (an outside probe).
    assert '<p id="net" role="status" hidden></p>' in page.text and "Online." not in page.text
    # The start as HTML's datetime reads it: whole seconds (isoformat() writes six digits of a second).
    assert re.findall(r'<time datetime="([^"]+)"', page.text) == [(NOW + timedelta(hours=1)).isoformat(timespec="seconds")]
    roster = client.get("/dashboard/checkin/rally-1/roster").json()
    assert [p["name"] for p in roster["people"]] == ["Ana Díaz"] and ANA[2:] not in json.dumps(roster)
    assert client.get("/dashboard/checkin/rally-1?q=ben").text.count("Check in <span") == 0  # Ben said no
    # Each button names whom it checks in, apart from anyone of the same name (a screen reader hears only the button).
    assert f'Check in <span class="visually-hidden">Ana Díaz, phone …{ANA[-4:]}</span>' in client.get("/dashboard/checkin/rally-1?q=ana").text


def test_the_qr_code_is_the_public_address_behind_a_proxy(door, tmp_path):
    # It was made of the request's own URL: behind a proxy, an internal host (and http) that a
    # volunteer's phone cannot open.
    client, _, book = door
    s = Settings(coalition=tmp_path / "coalition.toml", person_key_secret=SecretStr(SECRET.decode()), kafka_bootstrap_servers="unused:9092",
                 public_url="https://turnout.example.org")
    log = MemoryAccountLog()
    add(log, account(STAFF_A, "viewer", "union-a"))
    proxied = TestClient(create_app(s, publisher=ListPublisher(), book=book, accounts=started_store(log), directory=seeded(), data_keys=KEYS),
                         base_url="https://10.0.0.7:8443")  # the proxy passes its own Host
    sign_in(proxied, STAFF_A)
    page = proxied.get("/dashboard/checkin/rally-1?q=ana").text
    assert "https://turnout.example.org/dashboard/checkin/rally-1</p>" in page and "10.0.0.7" not in page
    sign_in(client, STAFF_A)  # TURNOUT_PUBLIC_URL a loopback address (a local `turnout up`): where the page was opened
    assert "http://testserver/dashboard/checkin/rally-1</p>" in client.get("/dashboard/checkin/rally-1").text


def test_a_tap_is_the_partners_signed_checkin_event_and_a_retry_is_the_same_event(door):
    client, publisher, _ = door
    sign_in(client, STAFF_A)
    ref = client.get("/dashboard/checkin/rally-1/roster").json()["people"][0]["ref"]
    tap = {"ref": ref, "event_id": "0123456789abcdef", "at": (NOW - timedelta(minutes=2)).isoformat()}
    for _ in range(2):  # the answer to the first was lost: the phone sends it again
        r = client.post("/dashboard/checkin/rally-1", data=tap, headers={"Accept": "application/json"})
        assert r.status_code == 202 and r.json()["name"] == "Ana Díaz"
    first, again = written(publisher)
    assert first.model_dump(exclude={"received_at"}) == again.model_dump(exclude={"received_at"})
    assert (first.partner, first.event.type, first.event.event_id, first.event.person.phone) == ("union-a", "checkin", "door-0123456789abcdef", ANA)
    assert first.person_key == person_key(SECRET, ANA, None)
    roster = client.get("/dashboard/checkin/rally-1/roster").json()
    assert roster["checked_in"] == 1 and roster["people"][0]["checked_in"]


def test_a_wrong_tap_is_undone_by_the_partners_signed_withdrawal(door):
    """Ana checked in by mistake: once the tallies credit union-a with her check-in, its staff
    see "Undo"; the undo is union-a's own withdrawn check-in, naming only her phone, and she is
    off at once (before the tallies read it); faith-b's staff never get an Undo for her."""
    client, publisher, book = door
    sign_in(client, STAFF_A)
    ref = client.get("/dashboard/checkin/rally-1/roster").json()["people"][0]["ref"]
    assert client.post("/dashboard/checkin/rally-1", data={"ref": ref, "event_id": "0123456789abcdef"}).status_code == 200
    ana = person_key(SECRET, ANA, None)
    book.apply("attendance", fact_key("rally-1", ana), Attendance(action_id="rally-1", person_key=ana, attended_at=NOW, attended_by="union-a"))
    page = client.get("/dashboard/checkin/rally-1").text
    assert "Undo <span" in page and client.get("/dashboard/checkin/rally-1/roster").json()["people"][0]["can_undo"]
    r = client.post("/dashboard/checkin/rally-1", data={"ref": ref, "event_id": "fedcba9876543210", "undo": "1"})
    assert r.status_code == 200 and "Check-in withdrawn: Ana Díaz." in r.text and "Undo <span" not in r.text
    undo = written(publisher)[-1]
    assert (undo.partner, undo.event.withdrawn, undo.event.person.phone, undo.event.person.given_name) == ("union-a", True, ANA, None)
    assert client.get("/dashboard/checkin/rally-1/roster").json()["checked_in"] == 0
    # A colleague's phone still showing her checked in taps Undo too (an outside probe: told it was
    # another partner's check-in, under the API's field name).
    again = client.post("/dashboard/checkin/rally-1", data={"ref": ref, "event_id": "fedcba9876543219", "undo": "1"}, headers={"Accept": "application/json"})
    assert again.status_code == 422 and again.json()["detail"] == "Ana Díaz is not checked in (undone already, perhaps on another phone): nothing to withdraw"
    assert client.post("/dashboard/checkin/rally-1", data={"event_id": "fedcba9876543211", "undo": "1"},
                       headers={"Accept": "application/json"}).status_code == 422  # undo of nobody
    odd = client.post("/dashboard/checkin/rally-1", data={"ref": ref, "event_id": "fedcba9876543212", "undo": "2"})
    assert odd.status_code == 422 and "Not checked in: must be 1 (withdraw the check-in) or left out." in unescape(odd.text)  # not a check-in (an outside probe)
    client.post("/dashboard/logout")
    sign_in(client, STAFF_B)
    book.apply("attendance", fact_key("rally-1", ana), Attendance(action_id="rally-1", person_key=ana, attended_at=NOW, attended_by="union-a"))
    (entry,) = [p for p in client.get("/dashboard/checkin/rally-1/roster").json()["people"] if p["name"] == "Anita"]
    assert entry["checked_in"] and not entry["can_undo"]
    written_before = len(publisher.records)
    theirs = client.post("/dashboard/checkin/rally-1", data={"ref": entry["ref"], "event_id": "fedcba9876543213", "undo": "1"})
    assert theirs.status_code == 422 and "has no check-in of this partner&#39;s to withdraw" in theirs.text  # not "done" (an outside probe)
    assert len(publisher.records) == written_before


def test_a_tap_without_javascript_keeps_the_search_it_was_made_from(door):
    """An outside probe: after a tap the page showed the whole list again, the search typed
    ("Ana") gone; the volunteer searched again for every person. The search, already in the
    address, stays there; the name checked in is said once, not put in the address."""
    client, _, _ = door
    sign_in(client, STAFF_A)
    page = client.get("/dashboard/checkin/rally-1?q=Ana").text
    assert 'name="q" value="Ana"' in page and page.count('<input type="hidden" name="q" value="Ana">') >= 1
    ref = client.get("/dashboard/checkin/rally-1/roster").json()["people"][0]["ref"]
    r = client.post("/dashboard/checkin/rally-1", data={"ref": ref, "event_id": "0123456789abcdef", "q": "Ana"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/checkin/rally-1?done=1&q=Ana"
    assert "Checked in: Ana Díaz." in client.get(r.headers["location"]).text


def test_a_walk_in_is_written_with_the_consent_given_and_joins_the_list(door):
    client, publisher, _ = door
    sign_in(client, STAFF_A)
    form = {"event_id": "walkin-000001", "given_name": "Dee", "family_name": "Ng", "phone": "(510) 555-0199", "consent_sms": "yes"}
    r = client.post("/dashboard/checkin/rally-1", data=form, follow_redirects=False)  # the page without JavaScript
    # The name is not in the address (a door phone's history, a proxy's log): the page says it once.
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/checkin/rally-1?done=1"
    assert "Checked in: Dee Ng." in client.get(r.headers["location"]).text
    assert "Checked in:" not in client.get(r.headers["location"]).text  # said once: a reload does not repeat it
    (event,) = [e.event for e in written(publisher)]
    assert (event.person.phone, event.person.given_name, event.consent.sms.granted, event.consent.email.granted) == ("+15105550199", "Dee", True, False)
    (walker,) = [p for p in client.get("/dashboard/checkin/rally-1/roster").json()["people"] if p["walk_in"]]
    assert (walker["name"], walker["checked_in"]) == ("Dee Ng", True)


def test_what_the_api_refuses_the_page_refuses_and_writes_nothing(door):
    client, publisher, _ = door
    sign_in(client, STAFF_A)
    # Without JavaScript: the page says why, and gives the walk-in back as it was typed.
    typed = {"event_id": "walkin-000009", "given_name": "Dee <Q>", "family_name": "Ng", "phone": "12", "email": "", "consent_sms": "yes"}
    page = client.post("/dashboard/checkin/rally-1", data=typed)
    assert page.status_code == 422 and "Not checked in (422): person.phone" in unescape(page.text)
    for name in ("event_id", "given_name", "family_name", "phone"):
        assert f'name="{name}"' in page.text and f'value="{escape(typed[name])}"' in page.text
    assert re.search(r'name="consent_sms" value="yes" checked', page.text) and not re.search(r'name="consent_email" value="yes" checked', page.text)
    bad_phone = {"event_id": "walkin-000002", "given_name": "Dee", "phone": "12"}
    r = client.post("/dashboard/checkin/rally-1", data=bad_phone, headers={"Accept": "application/json"})
    assert r.status_code == 422 and "person.phone" in r.json()["detail"] and r.json()["errors"][0]["field"] == "0.person.phone"
    faith_ref = Directory(SECRET, b"ref-key").ref("faith-b", person_key(SECRET, CY, None))  # another partner's person
    r = client.post("/dashboard/checkin/rally-1", data={"ref": faith_ref, "event_id": "0123456789abcdef"}, headers={"Accept": "application/json"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["ref"] and r.json()["detail"]
    for accept in ("application/json", "text/html"):  # an outside probe: a ref not in ASCII was a 500
        r = client.post("/dashboard/checkin/rally-1", data={"ref": "é", "event_id": "0123456789abcdef"}, headers={"Accept": accept})
        assert r.status_code == 422 and "not on this partner's list" in unescape(r.text)
    r = client.post("/dashboard/checkin/rally-1", data={"ref": "x", "event_id": "short"}, headers={"Accept": "application/json"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["event_id"]
    latin1 = b"event_id=walkin-000003&given_name=Jos%E9&phone=5105550199"  # not stored as "Jos\ufffd"
    r = client.post("/dashboard/checkin/rally-1", content=latin1, headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    assert r.status_code == 400 and "UTF-8" in r.json()["detail"]
    assert publisher.records == []


def test_a_broker_that_does_not_answer_gets_a_503_the_phone_retries(door):
    client, publisher, _ = door
    sign_in(client, STAFF_A)
    ref = client.get("/dashboard/checkin/rally-1/roster").json()["people"][0]["ref"]
    publisher.down = True
    r = client.post("/dashboard/checkin/rally-1", data={"ref": ref, "event_id": "0123456789abcdef"}, headers={"Accept": "application/json"})
    assert r.status_code == 503 and r.headers.get("retry-after")
    assert not client.get("/dashboard/checkin/rally-1/roster").json()["people"][0]["checked_in"]


def test_only_signed_in_partner_staff_check_people_in(door):
    client, _, _ = door
    r = client.get("/dashboard/checkin/rally-1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/login?next=/dashboard/checkin/rally-1"
    assert client.get("/dashboard/checkin/rally-1/roster").status_code == 401
    assert client.post("/dashboard/checkin/rally-1", data={"ref": "x", "event_id": "0123456789abcdef"}).status_code == 401
    sign_in(client, ORGANIZER)
    # A browser is answered with a page that says why; a script (Accept: application/json) with the error body.
    for accept, kind in (("text/html,application/xhtml+xml", "text/html"), ("application/json", "application/json")):
        r = client.get("/dashboard/checkin/rally-1", headers={"Accept": accept})
        assert (r.status_code, r.headers["content-type"].split(";")[0]) == (403, kind)
        assert "for partner staff" in r.text and "default-src 'none'" in r.headers["content-security-policy"]
        r = client.post("/dashboard/checkin/rally-1", data={"ref": "x", "event_id": "0123456789abcdef"}, headers={"Accept": accept})
        assert (r.status_code, r.headers["content-type"].split(";")[0]) == (403, kind)
    client.post("/dashboard/logout")
    sign_in(client, STAFF_B)
    r = client.get("/dashboard/checkin/nope", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html") and "no action &#39;nope&#39;" in r.text
    assert [p["name"] for p in client.get("/dashboard/checkin/rally-1/roster").json()["people"]] == ["Anita", "Cy"]


def test_signing_in_from_the_qr_code_leads_to_the_check_in_page(door):
    client, _, _ = door
    assert 'name="next" value="/dashboard/checkin/rally-1"' in client.get("/dashboard/login?next=/dashboard/checkin/rally-1").text
    r = client.post("/dashboard/login", data={"email": STAFF_A, "password": "correct horse battery staple", "next": "/dashboard/checkin/rally-1"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/checkin/rally-1"
    assert 'value="//evil.example"' not in client.get("/dashboard/login?next=//evil.example").text


def test_the_page_without_javascript_says_what_was_refused_and_a_crafted_link_says_nothing(door):
    client, publisher, _ = door
    sign_in(client, STAFF_A)
    r = client.post("/dashboard/checkin/rally-1", data={"event_id": "walkin-000003", "phone": "5105550199"})
    assert r.status_code == 422 and "Not checked in: a first name is needed." in r.text and publisher.records == []
    assert "Call 555" not in client.get("/dashboard/checkin/rally-1?done=Call 555 now").text
    assert "Checked in:" not in client.get("/dashboard/checkin/rally-1?done=Ana Díaz").text


@pytest.mark.parametrize("order", ["erasure read first", "erasure read between"])
def test_a_person_forgotten_and_signed_up_again_has_their_rsvp_from_before_on_the_list(order):
    """README: once signed up again they are that person again, facts included: an RSVP from
    before shows on the door list. It did not (an outside probe): the erasure had dropped the
    partner's RSVPs with the person's details, and a replay skipped the events from before."""
    keys = MemoryDataKeys()
    zed = person_key(SECRET, ANA, None)
    old = sealed("union-a", signup("s1", phone=ANA, given_name="Zed"), rsvp("r1", "rally-1", "yes", phone=ANA), keys=keys,
                 at=NOW - timedelta(days=1))
    asyncio.run(keys.forget([zed]))
    request = ForgetPerson(request_id="r", requested_at=NOW - timedelta(hours=1), contact_keys=(zed,))
    forget = ((FORGET_PREFIX + "r").encode(), request.model_dump_json().encode())
    again = sealed("union-a", signup("s2", phone=ANA, given_name="Zed"), keys=keys)
    d = Directory(SECRET, b"ref-key", open=keys.ring.open)
    records = [forget, *old, *again] if order == "erasure read first" else [*old, forget, *again]
    for i, (key, value) in enumerate(records):
        assert apply_record(d, key, value)
        if i == len(records) - len(again) - 1:
            assert d.roster("union-a", "rally-1", nobody) == []  # forgotten: nobody to show
    assert [(e.name, e.rsvp) for e in d.roster("union-a", "rally-1", nobody)] == [("Zed", "yes")]


def test_someone_who_texted_yes_to_the_partners_alert_is_on_its_list():
    """An RSVP by text reply reaches the tallies (credited to the ask's partner), never the events
    topic the door list is built from. An outside probe: Ben texted YES, counted in union-a's RSVP
    yes, and union-a's door could not find him."""
    d = seeded()
    ben = person_key(SECRET, BEN, None)
    texted = Attendance(action_id="rally-1", person_key=ben, rsvp="yes", rsvp_by="union-a", rsvp_at=NOW, rsvp_received=NOW,
                        rsvps={"union-a": ((NOW, "yes", NOW),)})
    facts = lambda key: texted if key == ben else None  # noqa: E731
    assert {(e.name, e.rsvp) for e in d.roster("union-a", "rally-1", facts)} == {("Ana Díaz", "yes"), ("Ben", "yes")}
    assert "Ben" not in {e.name for e in d.roster("faith-b", "rally-1", facts)}  # not faith-b's person, nor its RSVP
    line = next(e for e in d.roster("union-a", "rally-1", facts) if e.name == "Ben")
    assert d.find("union-a", "rally-1", line.ref, facts).phone == BEN  # and the door checks him in by his line


def test_a_walk_in_without_javascript_who_was_on_the_list_is_said_checked_in(door):
    """An outside probe: a walk-in typed with the phone of someone on the list (another spelling
    of their name) was checked in, but the page said nothing: the volunteer tries again."""
    client, publisher, _ = door
    sign_in(client, STAFF_A)
    form = {"event_id": "walkin-000011", "given_name": "Ana", "family_name": "D", "phone": ANA}
    r = client.post("/dashboard/checkin/rally-1", data=form, follow_redirects=False)
    assert r.status_code == 303 and "Checked in: Ana D." in client.get(r.headers["location"]).text
