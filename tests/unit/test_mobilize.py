"""Mobilize attendances → RSVPs and check-ins (pure), and the client's paging and 429s (fake server)."""

import asyncio

import httpx
import pytest

from connectors.mobilize import Skipped, newest, translate
from connectors.mobilize_poller import MobilizeClient, MobilizeRefused
from contracts.events import partner_event
from tests.fake_mobilize import FakeMobilize, attendance

EVENTS = {"7001": "rally-m"}


def test_statuses_become_rsvps_and_attended_a_checkin():
    yes = translate(attendance(1, 7001, "REGISTERED", 1000, phone="5105550123"), "union-a", EVENTS, {})
    assert yes.partner == "union-a" and [(e["type"], e.get("status")) for e in yes.events] == [("rsvp", "yes")]
    came = translate(attendance(2, 7001, "CONFIRMED", 1000, email="b@example.org", attended=True), "union-a", EVENTS, {})
    assert [e["type"] for e in came.events] == ["rsvp", "checkin"]
    assert came.events[1]["occurred_at"] == "2025-12-02T02:00:00+00:00"  # the timeslot's start
    no = translate(attendance(3, 7001, "CANCELLED", 1000, phone="5105550124"), "union-a", EVENTS, {})
    assert no.events[0]["status"] == "no"
    for a in (yes, came, no):
        for e in a.events:
            partner_event.validate_python(e)


def test_credit_goes_to_the_sponsor_when_it_is_a_coalition_partner():
    att = attendance(1, 7001, "REGISTERED", 1000, phone="5105550123", sponsor=202)
    assert translate(att, "union-a", EVENTS, {101: "union-a", 202: "faith-b"}).partner == "faith-b"
    assert translate(att, "union-a", EVENTS, {101: "union-a"}).partner == "union-a"


def test_the_same_state_gives_the_same_ids_and_unmapped_events_are_skipped():
    a = attendance(1, 7001, "REGISTERED", 1000, phone="5105550123")
    assert translate(a, "u", EVENTS, {}).events == translate(dict(a), "u", EVENTS, {}).events
    with pytest.raises(Skipped, match="not mapped"):
        translate(attendance(1, 7999, "REGISTERED", 1000, phone="5105550123"), "u", EVENTS, {})
    assert newest([a, attendance(2, 7001, "REGISTERED", 1500)], 900) == 1500 and newest([], 900) == 900


def test_the_client_pages_waits_out_a_429_and_keeps_to_the_rate():
    rows = [attendance(i, 7001, "REGISTERED", 1000 + i, phone=f"51055501{i:02d}") for i in range(1, 6)]
    with FakeMobilize(keys={101: "k"}, attendances={101: rows}, throttle_pages={1}) as fake:
        async def run():
            async with httpx.AsyncClient() as http:
                client = MobilizeClient(fake.url, 15, http)
                got = await client.attendances(101, "k", 1001)
                with pytest.raises(MobilizeRefused):
                    await client.attendances(101, "wrong", 0)
                return got

        got = asyncio.run(run())
    assert [a["id"] for a in got] == [1, 2, 3, 4, 5]
    assert [r["cursor"] for r in fake.requests[:4]] == [0, 1, 1, 2]  # page 1 throttled once, then read
    assert fake.requests[2]["at"] - fake.requests[1]["at"] >= 0.9  # Retry-After honoured
    assert fake.max_reads_per_second() <= 15
