"""Mobilize attendances → RSVPs and check-ins (pure), and the client's paging and 429s (fake server)."""

import asyncio
import json
import time
from typing import Callable

import httpx
import pytest
from pydantic import SecretStr

from connectors.mobilize import OVERLAP, Skipped, marks, newest, next_cursor, start_from, translate
from connectors.mobilize_poller import CursorStore, MobilizeClient, MobilizeRefused, poll_all, poll_partner
from connectors.providers.retry import retry_after
from connectors.web.publisher import ListPublisher
from contracts.events import Envelope, partner_event
from contracts.partners import MobilizeLink, Partner
from streams.data_keys import MemoryDataKeys
from streams.settings import Settings
from streams.topology import dead_letter_topic, mobilize_cursor_topic
from tests.fake_mobilize import FakeMobilize, attendance

EVENTS = {"7001": "rally-m"}


def test_statuses_become_rsvps_and_attended_a_checkin():
    yes = translate(attendance(1, 7001, "REGISTERED", 1000, phone="5105550123"), "union-a", EVENTS, {})
    assert yes.partner == "union-a" and [(e["type"], e.get("status")) for e in yes.events] == [("rsvp", "yes")]
    came = translate(attendance(2, 7001, "CONFIRMED", 1764650000, email="b@example.org", attended=True), "union-a", EVENTS, {})
    assert [e["type"] for e in came.events] == ["rsvp", "checkin"]
    assert came.events[1]["occurred_at"] == "2025-12-02T02:00:00+00:00"  # the timeslot's start
    no = translate(attendance(3, 7001, "CANCELLED", 1000, phone="5105550124"), "union-a", EVENTS, {})
    assert no.events[0]["status"] == "no"
    for a in (yes, came, no):
        for e in a.events:
            partner_event.validate_python(e)


def test_a_checkin_marked_before_the_timeslot_starts_is_dated_when_it_was_marked():
    # People are checked in at the door before the official start. Dated at the start, the
    # check-in was "in the future" when polled: refused by the ingress, and the cursor moved past it.
    early = translate(attendance(2, 7001, "CONFIRMED", 1764640000, phone="5105550123", attended=True), "union-a", EVENTS, {})
    assert early.events[1]["occurred_at"] == "2025-12-02T01:46:40+00:00"  # modified_date, before the 02:00 start
    late = translate(attendance(2, 7001, "CONFIRMED", 1764650000, phone="5105550123", attended=True), "union-a", EVENTS, {})
    assert late.events[1]["occurred_at"] == "2025-12-02T02:00:00+00:00"  # marked after: the start, as before


def test_unmarking_attended_withdraws_the_checkin_and_marking_it_again_checks_in_again():
    """Each change of ``attended`` is an event of its own (its id carries modified_date): a
    person marked, unmarked and marked again is in, not stuck withdrawn by a deduplicated id."""
    marked, unmarked, again = (translate(attendance(2, 7001, "CONFIRMED", modified, phone="5105550123", attended=attended), "union-a", EVENTS, {})
                               for modified, attended in ((1764650000, True), (1764650600, False), (1764651200, True)))
    assert [e.get("withdrawn", False) for e in (marked.events[1], unmarked.events[1], again.events[1])] == [False, True, False]
    assert len({marked.events[1]["event_id"], unmarked.events[1]["event_id"], again.events[1]["event_id"]}) == 3
    assert unmarked.events[1]["person"] == {"phone": "5105550123"} and "consent" not in unmarked.events[1]
    assert marked.events[0]["shift"] == marked.events[1]["shift"] == unmarked.events[1]["shift"] == "70010"  # the timeslot: another shift's stays
    partner_event.validate_python(unmarked.events[1])
    assert [e["type"] for e in translate(attendance(3, 7001, "CONFIRMED", 1000, phone="5105550124"), "union-a", EVENTS, {}).events] == ["rsvp"]


def test_a_created_date_of_0_is_no_date_and_the_consent_is_dated_when_the_attendance_was_modified():
    # An outside probe: 0 was read as 1970-01-01, the consent dated then.
    att = attendance(1, 7001, "REGISTERED", 1764650000, phone="5105550123")
    att = {**att, "created_date": 0, "person": {**att["person"], "sms_opt_in_status": "OPT_IN"}}
    (rsvp,) = translate(att, "union-a", EVENTS, {}).events
    assert rsvp["consent"]["sms"]["given_at"] == rsvp["occurred_at"] == "2025-12-02T04:33:20+00:00"


def test_credit_goes_to_the_sponsor_when_it_is_a_coalition_partner():
    att = attendance(1, 7001, "REGISTERED", 1000, phone="5105550123", sponsor=202)
    assert translate(att, "union-a", EVENTS, {101: "union-a", 202: "faith-b"}).partner == "faith-b"
    assert translate(att, "union-a", EVENTS, {101: "union-a"}).partner == "union-a"


def test_the_same_state_gives_the_same_ids_and_unmapped_events_are_skipped():
    a = attendance(1, 7001, "REGISTERED", 1000, phone="5105550123")
    assert translate(a, "u", EVENTS, {}).events == translate(dict(a), "u", EVENTS, {}).events
    with pytest.raises(Skipped, match="not mapped"):
        translate(attendance(1, 7999, "REGISTERED", 1000, phone="5105550123"), "u", EVENTS, {})
    assert newest([a, attendance(2, 7001, "REGISTERED", 1500)], 900, 2000) == 1500 and newest([], 900, 2000) == 900
    assert newest([a, attendance(2, 7001, "REGISTERED", 2500), None, {"modified_date": True}], 900, 2000) == 1000  # none past `until`


def test_a_pass_reads_every_attendance_again_once_an_event_was_mapped_since_its_cursor():
    stored = marks(101, {"7001": "rally-1"})
    assert start_from(1500, stored, 101, {"7001": "rally-1"}) == 1500
    assert start_from(1500, stored, 101, {"7001": "rally-1", "7002": "rally-2"}) == 0  # 7002 mapped since: its attendances were skipped
    assert start_from(1500, marks(101, {"7001": "rally-1", "7002": "rally-2"}), 101, {"7001": "rally-1"}) == 1500  # one unmapped since
    assert start_from(1500, None, 101, {"7001": "rally-1"}) == 1500 and start_from(0, set(), 101, {"7001": "rally-1"}) == 0  # not known; from the start
    # An outside probe: an event mapped again to another action (a slip corrected), or the partner
    # connected to another organization, read on from the cursor: the older attendances never
    # reached the action they were mapped to now.
    assert start_from(1500, stored, 101, {"7001": "rally-2"}) == 0
    assert start_from(1500, stored, 202, {"7001": "rally-1"}) == 0
    # A cursor stored when only the events were kept: compared by event.
    assert start_from(1500, {"7001"}, 101, {"7001": "rally-2"}) == 1500 and start_from(1500, {"7001"}, 101, {"7002": "rally-2"}) == 0


def test_the_client_pages_waits_out_a_429_and_keeps_to_the_rate():
    rows = [attendance(i, 7001, "REGISTERED", 1000 + i, phone=f"51055501{i:02d}") for i in range(1, 6)]
    with FakeMobilize(keys={101: "k"}, attendances={101: rows}, throttle_pages={1}) as fake:
        async def run():
            async with httpx.AsyncClient() as http:
                client = MobilizeClient(fake.url, 15, http)
                got = [a async for page in client.pages(101, "k", 1001) for a in page]
                with pytest.raises(MobilizeRefused):
                    await anext(client.pages(101, "wrong", 0))
                return got

        got = asyncio.run(run())
    assert [a["id"] for a in got] == [1, 2, 3, 4, 5]
    assert [r["cursor"] for r in fake.requests[:4]] == [0, 1, 1, 2]  # page 1 throttled once, then read
    assert fake.requests[2]["at"] - fake.requests[1]["at"] >= 0.9  # Retry-After honoured
    assert fake.max_reads_per_second() <= 15


def test_a_retry_after_is_read_in_seconds_or_as_an_http_date():
    """HTTP allows both; an outside probe's 429s with a date 30 s ahead were retried within 2 s."""
    now = 1_796_610_869.0  # Mon, 07 Dec 2026 02:34:29 GMT
    assert retry_after("3", now) == 3.0 and retry_after(" 120 ", now) == 120.0
    assert retry_after("Mon, 07 Dec 2026 02:34:59 GMT", now) == 30.0
    assert retry_after("Mon, 07 Dec 2026 02:34:00 GMT", now) == 0.0  # already past: at once
    assert retry_after(None, now) is None and retry_after("soon", now) is None and retry_after("-5", now) is None


T = 1_764_000_000  # late November 2025: in the past, as Mobilize's dates are
GOOD = attendance(2, 7001, "REGISTERED", T + 2, phone="5105550102")
BAD_SHAPES = {  # attendance 2 as Mobilize should never send it, and the field its dead letter names
    "event a string": ({**GOOD, "event": "7001"}, "event"),
    "event a number": ({**GOOD, "event": 7001}, "event"),
    "event id missing": ({**GOOD, "event": {"title": "Rally"}}, "event.id"),
    "null": (None, "not a JSON object"),
    "a list": ([GOOD], "not a JSON object"),
    "person a string": ({**GOOD, "person": "x"}, "person"),
    "phone numbers a number": ({**GOOD, "person": {**GOOD["person"], "phone_numbers": 5}}, "person.phone_numbers"),
    "a phone number as a JSON number": ({**GOOD, "person": {**GOOD["person"], "phone_numbers": [{"primary": True, "number": 5105550102}]}},
                                        "person.phone_numbers.0.number"),
    "sponsor a string": ({**GOOD, "sponsor": "grace"}, "sponsor"),
    "timeslot a list": ({**GOOD, "attended": True, "timeslot": [{"start_date": T}]}, "timeslot"),
    "modified_date absurd": ({**GOOD, "modified_date": 10**30}, "modified_date"),
    "modified_date a string": ({**GOOD, "modified_date": str(T + 2)}, "modified_date"),
    "modified_date 0, no date": ({**GOOD, "modified_date": 0}, "modified_date"),  # an RSVP of 1970 (an outside probe)
    "modified_date in 2096": ({**GOOD, "modified_date": 4_000_000_000}, "occurred_at"),  # the ingress refuses the future
    "id missing": ({k: v for k, v in GOOD.items() if k != "id"}, "id"),
}


def poll_once(body: bytes | Callable[[httpx.Request], bytes], since: int = 900, reported: set[str] | None = None, max_pages: int = 10_000,
              mapped: set[str] | None = None):
    """One real pass for union-a, offline: Mobilize (a mock transport) answers ``body`` (or what
    ``body(request)`` returns) to every read. Returns the cursor (or the exception the pass
    raised) and what was published, by topic. ``reported``: the previous pass's dead-lettered
    reasons (``poll_partner``)."""
    s = Settings(person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    link = MobilizeLink(organization_id=101, api_key=SecretStr("key"), events=EVENTS)
    partner = Partner(id="union-a", name="Union A", kind="union", secret=SecretStr("s" * 32), mobilize=link)
    publisher = ListPublisher()

    async def run():
        transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body(request) if callable(body) else body))
        async with httpx.AsyncClient(transport=transport) as http:
            client = MobilizeClient("https://mobilize.test", 15, http, max_pages=max_pages)  # Mobilize's rate, the default
            try:
                return await poll_partner(s, client, publisher, CursorStore(s, publisher), partner, since, {101: "union-a"}, MemoryDataKeys(),
                                          reported, mapped)
            except Exception as exc:  # noqa: BLE001 - the test looks at what the pass raised
                return exc

    return asyncio.run(run()), publisher.by_topic, s


def page(*rows) -> bytes:
    return json.dumps({"count": len(rows), "next": None, "previous": None, "data": list(rows)}).encode()


@pytest.mark.parametrize("bad, field", BAD_SHAPES.values(), ids=BAD_SHAPES.keys())
def test_a_malformed_attendance_is_a_dead_letter_and_its_neighbours_are_written_and_the_cursor_moves_on(bad, field):
    first, last = attendance(1, 7001, "REGISTERED", T + 1, phone="5105550101"), attendance(3, 7001, "CONFIRMED", T + 3, phone="5105550103")
    cursor, published, s = poll_once(page(first, bad, last))
    assert cursor == T + 3, cursor  # past the bad one, and no further than what was read
    written = [Envelope.model_validate_json(v, context={"normalized": True}) for _, v in published[None]]
    assert [e.event.event_id for e in written] == [f"mz-1-rsvp-{T + 1}", f"mz-3-rsvp-{T + 3}"]
    assert [(k, json.loads(v)["updated_since"]) for k, v in published[mobilize_cursor_topic(s)]] == [(b"union-a", T + 3)]  # stored
    (_, letter), = published[dead_letter_topic(s)]
    reason = json.loads(letter)["reason"]
    assert field in reason, reason
    named = isinstance(bad, dict) and "id" in bad  # the ingress names the event: mz-2-…
    assert reason.startswith("attendance 2: ") or "mz-2-" in reason if named else reason.startswith("an attendance"), reason
    assert b"5105550102" not in letter and b"P2" not in letter  # no phone, no name


def test_an_attendance_mobilize_answers_again_is_dead_lettered_once_and_a_new_bad_one_is_not_held_back(caplog):
    undated, other = BAD_SHAPES["modified_date a string"][0], {**BAD_SHAPES["person a string"][0], "id": 4}
    reported: set[str] = set()
    letters = []
    caplog.set_level("INFO", "connectors.mobilize_poller")
    for rows in [(undated,), (undated,), (undated, other)]:  # its date cannot move the cursor: read at every pass
        _, published, s = poll_once(page(*rows), reported=reported)
        letters.append([json.loads(v)["reason"].split(":")[0] for _, v in published.get(dead_letter_topic(s), [])])
    assert letters == [["attendance 2"], [], ["attendance 4"]]
    # The log says so too (an outside probe: each pass said its skipped ones were dead letters, as if written again).
    said = [r.getMessage() for r in caplog.records if "attendances read" in r.getMessage()]
    assert [m.split("skipped, ")[1].split(" newly")[0] for m in said] == ["1", "0", "1"], said


def test_an_attendance_with_a_phone_or_email_the_ingress_refuses_is_written_without_it_when_the_other_names_the_person():
    """An outside probe: a phone with letters (or an email with two @) dropped the whole
    attendance, a real RSVP with it, until Mobilize changed the record."""
    people = [
        {"given_name": "Ana", "phone_numbers": [{"primary": True, "number": "510-555-CALL"}],
         "email_addresses": [{"primary": True, "address": "ana@example.org"}], "sms_opt_in_status": "OPT_IN"},
        {"given_name": "Wes", "phone_numbers": [{"primary": True, "number": "5105550129"}], "email_addresses": [{"primary": True, "address": "wes@@example"}]},
        {"given_name": "Cy", "phone_numbers": [{"primary": True, "number": "510-555-CALL"}]},  # nobody left to name: skipped
    ]
    rows = [{**attendance(n, 7001, "REGISTERED", T + n, attended=True), "person": p} for n, p in enumerate(people, 1)]
    cursor, published, s = poll_once(page(*rows))
    written = [Envelope.model_validate_json(v, context={"normalized": True}).event for _, v in published[None]]
    assert [e.event_id for e in written] == [f"mz-{n}-{kind}-{T + n}" for n in (1, 2) for kind in ("rsvp", "checkin")]
    assert not any(e.consent.sms.granted for e in written)  # the text opt-in went with the phone
    letters = [json.loads(v)["reason"] for _, v in published[dead_letter_topic(s)]]
    assert any("mz-1-rsvp" in r and "person.phone" in r and "written without it" in r for r in letters), letters
    assert any("mz-2-rsvp" in r and "person.email" in r and "written without it" in r for r in letters), letters
    assert any("mz-3-rsvp" in r and "written without it" not in r for r in letters), letters
    assert not any("CALL" in r or "wes@" in r for r in letters)


def test_the_cursor_stays_a_while_behind_the_pass_so_a_change_made_while_it_read_is_read_next_time():
    """An outside probe: with Mobilize's pages in another order than ``modified_date``, an
    attendance cancelled while the pass read on (its page read before) was older than the
    cursor the pass stored, and never read. The cursor stays ``OVERLAP`` behind when the pass
    began; never back before where it was."""
    began = int(time.time())
    assert next_cursor(began - 10, 900, began) == began - OVERLAP and next_cursor(T + 3, 900, began) == T + 3
    assert next_cursor(began - 10, began - 200, began) == began - 200  # never back
    recent = attendance(9, 7001, "REGISTERED", began - 10, phone="5105550109")
    cursor, _, _ = poll_once(page(GOOD, recent))
    assert began - OVERLAP <= cursor <= int(time.time()) - OVERLAP


def test_a_skipped_attendance_is_dead_lettered_once_across_a_failed_pass_and_a_pass_that_reads_everything_again():
    """An outside probe: a pass that failed forgot what the pass before had dead-lettered, and a
    pass reading every attendance again (an event mapped since) dead-lettered every skipped one
    again; the README says once."""
    unmapped = attendance(60, 7999, "REGISTERED", T + 60, phone="5105550160")
    reported: set[str] = set()

    def letters(published, s):
        return [json.loads(v)["reason"].split(":")[0] for _, v in published.get(dead_letter_topic(s), [])]

    first = poll_once(page(unmapped), since=T, reported=reported)
    failed = poll_once(b"[]", since=T + 60, reported=reported)  # not a page: the pass fails
    again = poll_once(page(unmapped), since=T + 60, reported=reported)  # read again at the cursor
    assert isinstance(failed[0], MobilizeRefused) and [letters(*r[1:]) for r in (first, failed, again)] == [["attendance 60"], [], []]

    # Read from the start again (an event mapped since the cursor): what was read before the
    # cursor was dead-lettered then, and what the last pass read is remembered; a new one is, once.
    older, newer = (attendance(n, 7999, "REGISTERED", T + n, phone=f"51055501{n}") for n in (10, 61))
    asked = []
    everything, published, s = poll_once(lambda request: asked.append(request.url.params["updated_since"]) or page(older, unmapped, newer),
                                         since=T + 60, reported=reported, mapped=set())
    assert asked == ["0"] and letters(published, s) == ["attendance 61"]


@pytest.mark.parametrize("body", [
    b"<html>maintenance</html>", b"[]", b'{"data": {"id": 1}}', b'{"data": "abc"}', b'{"next": null}',
    page(GOOD).replace(b'"next": null', b'"next": 5'),
    page(GOOD).replace(b'"next": null', b'"next": "https://elsewhere.example/v1/organizations/101/attendances"'),  # not sent our key
    # Not a URL: httpx refused it in the next read, and the poller (with `turnout up`) stopped.
    page(GOOD).replace(b'"next": null', b'"next": "https://mobilize.test/v1/organizations/101/attendances?cursor=2\\n"'),
    page(GOOD).replace(b'"next": null', b'"next": "https://mobilize.test:99999/v1/organizations/101/attendances"'),
], ids=["not json", "a list", "data an object", "data a string", "no data", "next a number", "next elsewhere", "next not a URL", "next a bad port"])
def test_a_malformed_page_fails_the_pass_with_a_reason_and_writes_nothing(body):
    failed, published, _ = poll_once(body)
    assert isinstance(failed, MobilizeRefused) and "page" in str(failed), repr(failed)
    assert published == {}  # nothing written, the cursor stays: the next pass reads it all again


def test_a_next_link_back_to_a_page_already_read_fails_the_pass_instead_of_reading_for_ever():
    reads = []

    def answer(request: httpx.Request) -> bytes:  # page 1 links to itself; a fake that gives up after 30 reads
        reads.append(request.url)
        return page(GOOD).replace(b'"next": null', b'"next": "https://mobilize.test/v1/organizations/101/attendances?cursor=1"') if len(reads) < 30 else page()

    failed, published, s = poll_once(answer)
    assert isinstance(failed, MobilizeRefused) and "already read" in str(failed), repr(failed)
    assert len(reads) == 2 and mobilize_cursor_topic(s) not in published  # the cursor stays


def test_a_pass_reads_at_most_max_pages_and_holds_one_page_at_a_time():
    def answer(request: httpx.Request) -> bytes:  # every page links to a new one
        n = int(request.url.params.get("cursor", 0))
        row = attendance(n + 1, 7001, "REGISTERED", T + n, phone=f"51055501{n:02d}")
        return page(row).replace(b'"next": null', f'"next": "https://mobilize.test/v1/organizations/101/attendances?cursor={n + 1}"'.encode())

    failed, published, s = poll_once(answer, max_pages=5)
    assert isinstance(failed, MobilizeRefused) and "more than 5 pages" in str(failed), repr(failed)
    assert len(published[None]) == 5 and mobilize_cursor_topic(s) not in published  # written page by page; the cursor stays


def test_a_refusal_is_said_in_one_line_without_markup():
    """A proxy's 404 page came out as ten lines of HTML in the operator's terminal (an outside probe)."""
    from connectors.mobilize_poller import said

    page = httpx.Response(404, text="<!DOCTYPE HTML>\n<html><head><title>404 Not Found</title></head>\n<body><h1>Not Found</h1></body></html>\n")
    assert said(page) == "404 Not Found Not Found"
    assert said(httpx.Response(403, json={"data": None, "error": {"detail": "Invalid token."}})) == "Invalid token."
    assert said(httpx.Response(500, text="")) == "(no text)"


def test_partners_are_polled_side_by_side_so_one_slow_to_answer_holds_no_other_back():
    """An outside probe: partners were polled one after another, so one waiting out a long
    Retry-After (up to a minute, six times) or slow to answer held every other partner's
    attendances back. Here union-a's Mobilize answers only once faith-b's has been read."""
    s = Settings(person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    partners = [Partner(id=pid, name=pid, kind="union", secret=SecretStr("s" * 32),
                        mobilize=MobilizeLink(organization_id=org, api_key=SecretStr("key"), events=EVENTS)) for pid, org in (("union-a", 101), ("faith-b", 202))]
    rows = {101: attendance(1, 7001, "REGISTERED", T + 1, phone="5105550101"), 202: attendance(2, 7001, "REGISTERED", T + 2, phone="5105550102")}
    publisher, since = ListPublisher(), {}

    async def run():
        other_read = asyncio.Event()

        async def mobilize(request: httpx.Request) -> httpx.Response:
            org = int(request.url.path.split("/")[3])
            if org == 101:
                await asyncio.wait_for(other_read.wait(), 10)  # slow: answers once the other partner was read
            else:
                other_read.set()
            return httpx.Response(200, content=page(rows[org]))

        async with httpx.AsyncClient(transport=httpx.MockTransport(mobilize)) as http:
            client = MobilizeClient("https://mobilize.test", 15, http)
            await poll_all(s, client, publisher, CursorStore(s, publisher), partners, since, {}, MemoryDataKeys(), once=True)

    asyncio.run(run())
    assert since == {"union-a": T + 1, "faith-b": T + 2}
    assert sorted(k for k, _ in publisher.by_topic[mobilize_cursor_topic(s)]) == [b"faith-b", b"union-a"]


def test_poll_once_polls_every_partner_and_then_says_the_pass_that_failed():
    """An outside probe: `turnout mobilize poll --once` stopped at the first partner whose pass
    failed; the partners after it in the coalition file were never asked."""
    s = Settings(person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    partners = [Partner(id=pid, name=pid, kind="union", secret=SecretStr("s" * 32),
                        mobilize=MobilizeLink(organization_id=org, api_key=SecretStr("key"), events=EVENTS)) for pid, org in (("union-a", 403), ("faith-b", 202))]
    publisher, since = ListPublisher(), {}

    def mobilize(request: httpx.Request) -> httpx.Response:
        org = int(request.url.path.split("/")[3])
        return httpx.Response(403, json={"error": {"detail": "bad key"}}) if org == 403 else httpx.Response(200, content=page(GOOD))

    async def run():
        async with httpx.AsyncClient(transport=httpx.MockTransport(mobilize)) as http:
            await poll_all(s, MobilizeClient("https://mobilize.test", 15, http), publisher, CursorStore(s, publisher), partners, since, {},
                           MemoryDataKeys(), once=True)

    with pytest.raises(MobilizeRefused, match="bad key"):
        asyncio.run(run())
    assert since == {"faith-b": T + 2}

