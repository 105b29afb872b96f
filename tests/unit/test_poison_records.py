"""Any record on the events topic becomes a dead letter with a bounded excerpt, never a crash;
valid events after it are applied (intake over the real tables in memory)."""

import json

import pytest

from agents.intake import handle
from contracts.events import Envelope
from streams.topology import EXCERPT_BYTES
from tests.factories import action, signup
from tests.fakes import dead_letters, memory_pipeline

EDGE = {**action("edge"), "starts_at": "9999-12-31T23:00:00Z", "time_zone": "Pacific/Kiritimati",
        "rapid_response": True, "templates": {"sms": {"en": "hi"}}}
POISON = [None, b"", b"\xff\xfe\x00", b"null", b"[]", b'{"partner": 5}', b"x" * 900_000,
          json.dumps({"partner": "union-a", "received_at": "2026-11-22T15:00:00Z", "event": EDGE}).encode()]


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
