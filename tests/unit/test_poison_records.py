"""Any record on the events topic becomes a dead letter with a bounded excerpt, never a crash;
valid events after it are applied (intake over the real tables in memory)."""

import json

import pytest

from agents.intake import handle
from contracts.events import Envelope
from streams.topology import EXCERPT_BYTES, excerpt, redacted
from tests.factories import action, signup
from tests.fakes import dead_letters, memory_pipeline

EDGE = {**action("edge"), "starts_at": "9999-12-31T23:00:00Z", "time_zone": "Pacific/Kiritimati",
        "rapid_response": True, "templates": {"sms": {"en": "hi"}}}
#: Beyond the calendar in UTC: an OverflowError stopped every worker in turn, then the stack (an outside probe).
BEYOND = {**action("beyond"), "starts_at": "9999-12-31T23:59:59-12:00"}
POISON = [None, b"", b"\xff\xfe\x00", b"null", b"[]", b'{"partner": 5}', b"x" * 900_000,
          *(json.dumps({"partner": "union-a", "received_at": "2026-11-22T15:00:00Z", "event": e}).encode() for e in (EDGE, BEYOND))]


@pytest.mark.parametrize("key", [None, "k", "forget:x"])
@pytest.mark.parametrize("raw", POISON, ids=lambda r: repr(r)[:20])
def test_a_poison_record_is_dead_lettered_with_a_bounded_excerpt_and_the_next_event_counts(raw, key):
    p = memory_pipeline()
    handle(p, 0, key, raw, b"secret")
    valid = Envelope(partner="union-a", received_at="2026-11-22T15:00:00Z", person_key="p" + "0" * 32,
                     event=signup("s1", phone="+15105550123"))
    handle(p, 0, "k", valid.model_dump_json().encode(), b"secret")
    [letter] = dead_letters(p)
    assert letter["reason"] and len(json.dumps(letter)) < 4 * EXCERPT_BYTES + 2000
    if raw:
        assert letter["record_bytes"] == len(raw) and len(letter["record_excerpt"]) <= EXCERPT_BYTES
    assert p.people.get("p" + "0" * 32) is not None and p.targeting.sent == []


def test_a_dead_letter_keeps_where_the_record_is_and_no_personal_data():
    p = memory_pipeline()
    person = {"given_name": "Anastasia", "family_name": "Quintero", "phone": "+15105550123", "email": "ana@example.org"}
    bad = {"partner": "union-a", "received_at": "2026-11-22T15:00:00Z", "event": {**signup("s1", **person), "colour": "red"}}
    cut_short = json.dumps(bad).encode()[:-7] + b"x" * 70_000  # not JSON any more: the fields by name
    for raw in (json.dumps(bad).encode(), cut_short, b"call Ana on 510-555-0123 or ana@example.org"):
        handle(p, 2, "k", raw, b"secret", where={"topic": "t.events", "partition": 2, "offset": 41})
    letters = dead_letters(p)
    assert [(d["topic"], d["partition"], d["offset"]) for d in letters] == [("t.events", 2, 41)] * 3
    text = json.dumps(letters)
    for value in ("Anastasia", "Quintero", "5550123", "555-0123", "ana@example.org"):
        assert value not in text
    assert '"type": "signup"' in letters[0]["record_excerpt"] and "2026-11-22T15:00:00Z" in letters[0]["record_excerpt"]


@pytest.mark.parametrize("key", ["+15105550123", "ana@example.org", "call 510-555-0123"])
def test_a_dead_letter_keeps_no_contact_detail_from_the_records_kafka_key(key):
    # Anyone may write to the events topic with any bytes as key; the dead letter copied the key
    # as it came (kept 30 days), while its value was redacted (an outside probe).
    p = memory_pipeline()
    handle(p, 0, key, b"not json", b"secret")
    [letter] = dead_letters(p)
    assert "5550123" not in letter["key"] and "555-0123" not in letter["key"] and "ana@example.org" not in letter["key"], letter["key"]


def test_a_record_whose_reading_overflows_is_dead_lettered_not_a_stopped_worker(monkeypatch):
    # A validator's date arithmetic past the calendar's edge raised OverflowError, which is no
    # ValidationError: the worker stopped on the record, every worker after it, then the stack.
    import agents.intake

    class Overflowing(Envelope):
        @classmethod
        def model_validate_json(cls, *args, **kwargs):
            raise OverflowError("date value out of range")

    monkeypatch.setattr(agents.intake, "Envelope", Overflowing)
    p = memory_pipeline()
    handle(p, 0, "k", b'{"partner": "union-a"}', b"secret")
    [letter] = dead_letters(p)
    assert letter["reason"] == "unreadable envelope (OverflowError)" and letter["record_bytes"] == 22


def test_a_dead_letter_keeps_what_the_record_was_and_nothing_of_who():
    # An outside probe: an Action Network attendance for an unmapped event was dead-lettered with
    # the person's name, birth date, town and home coordinates, and a name in a link's query;
    # only a list of field names known to be personal had been removed.
    item = {"identifiers": ["action_network:5f3a"], "created_date": "2026-11-20T10:00:00Z",
            "person": {"name": "Priscilla Quartermaine", "nickname": "Cilla", "birthdate": "1950-01-01",
                       "postal_addresses": [{"address_lines": ["12 Elm"], "locality": "Oakland",
                                             "location": {"latitude": 37.8044, "longitude": -122.2712}}]},
            "_links": {"osdi:event": {"href": "https://actionnetwork.org/api/v2/events/abc-123?email=cq@example.org&name=Priscilla+Q"}}}
    raw = json.dumps(item).encode()
    for excerpt_ in (excerpt(raw)["record_excerpt"], excerpt(raw[:-40] + b"x" * 70_000)["record_excerpt"]):  # and cut short
        for personal in ("Priscilla", "Quartermaine", "Cilla", "1950", "Elm", "Oakland", "37.8", "122.27", "cq@"):
            assert personal not in excerpt_, (personal, excerpt_)
        assert "2026-11-20T10:00:00Z" in excerpt_
    whole = redacted(raw)
    assert "action_network:5f3a" in whole and "https://actionnetwork.org/api/v2/events/abc-123" in whole  # which event: its link, without the query
