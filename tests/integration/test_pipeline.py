"""Partners post through the real HTTP ingress into real workers; the tally API shows exact numbers."""

import json

import pytest

from tests.factories import action, checkin, phone, pledge, rsvp, signup
from tests.polling import eventually

pytestmark = pytest.mark.integration

LATER = "2026-12-01T18:05:00Z"


def test_two_partners_turnout_is_tallied_exactly(make_stack):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    stack.announce('rally-1')
    union = [signup(f"u-s{i}", phone=phone(i), given_name=f"U{i}") for i in range(6)]
    union += [pledge("u-p1", "rally-1", 30), pledge("u-p2", "rally-1", 40, at="2026-11-22T16:00:00Z")]
    union += [rsvp(f"u-r{i}", "rally-1", "yes", phone=phone(i)) for i in range(5)]
    union += [rsvp("u-r5", "rally-1", "no", phone=phone(5))]
    union += [checkin(f"u-c{i}", "rally-1", phone=phone(i), at=LATER) for i in range(3)]
    faith = [signup(f"f-s{i}", email=f"member{i}@example.org") for i in range(4)]
    faith += [signup("f-s-shared", phone=phone(0))]  # the same person the union signed up
    faith += [pledge("f-p1", "rally-1", 10)]
    faith += [rsvp(f"f-r{i}", "rally-1", "yes", email=f"member{i}@example.org") for i in range(4)]
    faith += [checkin(f"f-c{i}", "rally-1", email=f"MEMBER{i}@example.org", at=LATER) for i in range(2)]
    faith += [checkin("f-c-again", "rally-1", email="member0@example.org", at="2026-12-01T18:30:00Z")]  # checks in twice
    for partner, events in (("union-a", union), ("faith-b", faith)):
        r = stack.post(partner, events)
        assert r.status_code == 202 and r.json()["accepted"] == len(events), r.text

    expected = {
        "union-a": {"pledged": 40, "rsvp_yes": 5, "attended": 3},
        "faith-b": {"pledged": 10, "rsvp_yes": 4, "attended": 2},
    }
    eventually(lambda: stack.action_rows("rally-1") == expected)
    body = stack.get("/v1/actions/rally-1/tallies").json()
    assert {k: body["totals"][k] for k in ("pledged", "rsvp_yes", "attended", "production_ratio")} == {"pledged": 50, "rsvp_yes": 9, "attended": 5, "production_ratio": 0.1}
    assert {r["partner"]: r["production_ratio"] for r in body["partners"]} == {"union-a": 0.075, "faith-b": 0.2}
    # Memberships are another fact table than the action rows waited for above: wait for them too.
    signups = lambda: {p["partner"]: p["signups"] for p in stack.get("/v1/tallies").json()["partners"]}  # noqa: E731
    eventually(lambda: signups() == {"union-a": 6, "faith-b": 5})
    coalition = stack.get("/v1/tallies").json()
    assert {p["partner"]: p["signups"] for p in coalition["partners"]} == {"union-a": 6, "faith-b": 5}
    assert coalition["totals"]["signups"] == 11


def test_the_same_event_posted_twice_counts_once_and_forgeries_change_nothing(make_stack):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    stack.announce('rally-2')
    events = [pledge("p1", "rally-2", 12), rsvp("r1", "rally-2", phone=phone(1)), checkin("c1", "rally-2", phone=phone(1), at=LATER)]
    for _ in range(2):
        assert stack.post("union-a", events).status_code == 202
    assert stack.post("union-a", [events[2]]).status_code == 202
    # A second check-in by another partner's tool for the same person is still one attendee.
    assert stack.post("faith-b", [checkin("fc1", "rally-2", phone=phone(1), at="2026-12-01T19:00:00Z")]).status_code == 202
    eventually(lambda: stack.action_rows("rally-2") == {"union-a": {"pledged": 12, "rsvp_yes": 1, "attended": 1}})

    forged = stack.post("union-a", [pledge("p2", "rally-2", 999), checkin("c2", "rally-2", phone=phone(2))], secret="not-the-secret")
    assert forged.status_code == 401
    as_other = stack.post("faith-b", [pledge("p3", "rally-2", 999)], secret=stack.secrets["union-a"])
    assert as_other.status_code == 401
    # A marker posted after the forgeries: once it is counted, anything forged would be too.
    assert stack.post("union-a", [rsvp("r-marker", "rally-2", phone=phone(3))]).status_code == 202
    eventually(lambda: stack.action_rows("rally-2")["union-a"]["rsvp_yes"] == 2)
    assert stack.action_rows("rally-2") == {"union-a": {"pledged": 12, "rsvp_yes": 2, "attended": 1}}


def test_an_actions_inline_pledges_count_until_the_partner_pledges_itself(make_stack):
    stack = make_stack(partners=("backbone", "union-a", "faith-b"))
    stack.start_worker()
    stack.start_web()
    assert stack.post("backbone", [action("rally-3", {"union-a": 40, "faith-b": 15})]).status_code == 202
    eventually(lambda: stack.action_rows("rally-3") == {"union-a": {"pledged": 40, "rsvp_yes": 0, "attended": 0}, "faith-b": {"pledged": 15, "rsvp_yes": 0, "attended": 0}})
    assert stack.post("union-a", [pledge("up", "rally-3", 55, at="2026-11-23T00:00:00Z")]).status_code == 202
    eventually(lambda: stack.action_rows("rally-3")["union-a"]["pledged"] == 55)
    assert stack.get("/v1/actions/rally-3/tallies").json()["title"] == "Rally for fair funding"
    # An edit that no longer lists faith-b takes its listed pledge back; union-a's own stays.
    assert stack.post("backbone", [{**action("rally-3", {"union-a": 40}), "event_id": "a-rally-3-v2"}]).status_code == 202
    eventually(lambda: stack.action_rows("rally-3") == {"union-a": {"pledged": 55, "rsvp_yes": 0, "attended": 0}})


def test_a_bad_record_goes_to_the_dead_letter_topic_and_the_agent_carries_on(make_stack):
    from kafka import KafkaConsumer, KafkaProducer

    from streams.topology import dead_letter_topic, events_topic

    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    stack.announce('rally-d')
    producer = KafkaProducer(bootstrap_servers=stack.settings.bootstrap)
    producer.send(events_topic(stack.settings), key=b"garbage", value=b'{"partner": "union-a", "event": {"type": "nonsense"}}')
    producer.send(events_topic(stack.settings), key=b"garbage", value=b"\xff not json")
    producer.flush()
    producer.close()
    assert stack.post("union-a", [pledge("p1", "rally-d", 7)]).status_code == 202
    eventually(lambda: stack.action_rows("rally-d") == {"union-a": {"pledged": 7, "rsvp_yes": 0, "attended": 0}})

    consumer = KafkaConsumer(dead_letter_topic(stack.settings), bootstrap_servers=stack.settings.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=1000)
    letters = []
    eventually(lambda: letters.extend(m.value for m in consumer) or len(letters) == 2, timeout=30)
    consumer.close()
    assert all(json.loads(v)["reason"] == "invalid envelope" for v in letters)


def test_poison_records_on_every_input_topic_are_dead_lettered_and_the_worker_goes_on_and_stops_promptly(make_stack):
    """Records no ingress would write, produced straight to the topics the agents read: each one
    becomes one bounded dead letter, events after them count exactly, and SIGTERM still ends the
    worker within 10 s (nothing hangs its shutdown)."""
    import signal
    import time

    from kafka import KafkaConsumer, KafkaProducer

    from streams.topology import asks_topic, dead_letter_topic, events_topic, identity_topic, provider_topic, targeting_topic

    stack = make_stack(outreach=True)  # the outreach agents read the targeting and asks topics
    worker = stack.start_worker()
    stack.start_web()
    stack.announce("rally-p")
    s = stack.settings
    envelope = {"partner": "union-a", "event_id": "x", "received_at": "2026-11-24T19:00:00Z", "person_key": "p" * 33,
                "event": {"type": "rsvp", "event_id": "x", "action_id": "rally-edge", "status": "yes", "person": {"phone": "+15105550100"}}}
    poison = [
        b"\xff\xfe not json",
        b"[]",
        b"null",
        b'{"nested": ' * 5_000 + b"1" + b"}" * 5_000,  # deeper than any parser recursion
        json.dumps({**envelope, "received_at": "9999-12-31T23:59:59.999999+00:00"}).encode(),  # the calendar's edge
        json.dumps({**envelope, "event": {**envelope["event"], "occurred_at": "0001-01-01T00:00:00Z"}}).encode(),
        # The year 0 in UTC (an outside probe: accepted by the web app, it stopped every worker that read it, at each restart).
        json.dumps({**envelope, "event": {**envelope["event"], "occurred_at": "0001-01-01T00:00:00+01:00"}}).encode(),
        json.dumps({**envelope, "received_at": "0001-01-01T00:00:00+14:00"}).encode(),
        json.dumps({"junk": "x" * 900_000}).encode(),  # near the broker's message limit
    ]
    producer = KafkaProducer(bootstrap_servers=s.bootstrap, max_request_size=2_000_000)
    topics = [events_topic(s), targeting_topic(s), asks_topic(s), identity_topic(s), provider_topic(s)]
    for topic in topics:
        for i, value in enumerate(poison):
            producer.send(topic, key=bytes([i, 0xFF, 0x00]), value=value, partition=i % 4)
        producer.send(topic, key=b"no value", value=None, partition=0)  # a tombstone where none belongs: dead-lettered too
    producer.flush()
    producer.close()

    # Valid events after the poison count exactly once, and the worker is the same process.
    assert stack.post("union-a", [pledge("pp1", "rally-p", 7), rsvp("pr1", "rally-p", phone=phone(1))]).status_code == 202
    eventually(lambda: stack.action_rows("rally-p") == {"union-a": {"pledged": 7, "rsvp_yes": 1, "attended": 0}}, timeout=60)
    assert worker.poll() is None

    consumer = KafkaConsumer(dead_letter_topic(s), bootstrap_servers=s.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=1000)
    letters: list[dict] = []
    # The two calendar-edge envelopes may be valid on the events topic (then applied to their own
    # action, or refused: either way no crash); everything else is one dead letter each.
    expected = len(topics) * (len(poison) + 1) - 2
    eventually(lambda: letters.extend(json.loads(m.value) for m in consumer) or len(letters) >= expected, timeout=60)
    consumer.close()
    assert all(len(json.dumps(letter)) < 16_384 for letter in letters)  # bounded: an excerpt and a hash, never the record
    assert {letter.get("topic") for letter in letters} >= set(topics)  # each says where its record is
    assert not any("+15105550100" in json.dumps(letter) for letter in letters)

    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.wait(10)
    assert time.monotonic() - started < 10
