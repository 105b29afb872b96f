"""The Mobilize poller against a fake Mobilize (three pages, a 429 in the middle), into real
workers; its cursor lives in Kafka, so a restart resumes where it was and counts nothing twice."""

import pytest
from click.testing import CliRunner

from streams.cli import main
from streams.coalition import connect_mobilize, map_mobilize_event, update_partner
from streams.stack import child_env
from tests.factories import phone
from tests.fake_mobilize import FakeMobilize, attendance
from tests.polling import eventually

pytestmark = pytest.mark.integration


def poll_once(stack, fake):
    env = {**child_env(stack.settings), "TURNOUT_MOBILIZE_BASE_URL": fake.url}
    r = CliRunner().invoke(main, ["mobilize", "poll", "--once"], env=env)
    assert r.exit_code == 0, r.output


def test_attendances_become_rsvps_and_checkins_and_a_restart_resumes_without_double_counting(make_stack):
    stack = make_stack()
    path = stack.settings.coalition
    connect_mobilize(path, "union-a", 101, "key-union")
    map_mobilize_event(path, "union-a", "7001", "rally-m")
    connect_mobilize(path, "faith-b", 202, "key-faith")
    worker = stack.start_worker()
    stack.start_web()
    stack.announce('rally-m')
    rows = [
        attendance(1, 7001, "REGISTERED", 1_764_000_001, phone=phone(1)),
        attendance(2, 7001, "CONFIRMED", 1_764_000_002, phone=phone(2), attended=True),
        attendance(3, 7001, "CANCELLED", 1_764_000_003, phone=phone(3)),
        attendance(4, 7001, "REGISTERED", 1_764_000_004, email="dev@example.org", sponsor=202),  # promoted by faith-b
        attendance(5, 7999, "REGISTERED", 1_764_000_005, phone=phone(5)),  # an event nobody mapped
    ]
    with FakeMobilize(keys={101: "key-union", 202: "key-faith"}, attendances={101: rows}, throttle_pages={1}) as fake:
        poll_once(stack, fake)
        union = [r for r in fake.requests if r["org"] == 101]
        assert [r["cursor"] for r in union] == [0, 1, 1, 2] and union[0]["updated_since"] == 0
        expected = {"union-a": {"pledged": 0, "rsvp_yes": 2, "attended": 1}, "faith-b": {"pledged": 0, "rsvp_yes": 1, "attended": 0}}
        eventually(lambda: stack.action_rows("rally-m") == expected)

        stack.stop(worker)
        stack.start_worker()
        # Since the first pass: person 1 came, person 3 changed their mind, person 6 signed up.
        fake.attendances[101] = [rows[1], rows[3], rows[4],
                                 attendance(1, 7001, "CONFIRMED", 1_764_000_100, phone=phone(1), attended=True),
                                 attendance(3, 7001, "REGISTERED", 1_764_000_101, phone=phone(3)),
                                 attendance(6, 7001, "REGISTERED", 1_764_000_102, phone=phone(6))]
        fake.requests.clear()
        poll_once(stack, fake)
        assert {r["updated_since"] for r in fake.requests if r["org"] == 101} == {1_764_000_005}  # resumed from Kafka
        expected["union-a"] = {"pledged": 0, "rsvp_yes": 4, "attended": 2}
        eventually(lambda: stack.action_rows("rally-m") == expected, timeout=60)

        fake.requests.clear()
        poll_once(stack, fake)  # nothing new: the same facts again
        assert {r["updated_since"] for r in fake.requests if r["org"] == 101} == {1_764_000_102}
    assert fake.max_reads_per_second() <= 15
    eventually(lambda: stack.action_rows("rally-m") == expected)
    # The unmapped event's attendance, read again by the second and third passes (at the cursor):
    # dead-lettered once, though each pass was a process of its own (an outside probe: once per run).
    assert [letter["reason"] for letter in dead_letters(stack) if "7999" in letter["reason"]] == [
        "attendance 5: Mobilize event 7999 is not mapped to a turnout action"]


@pytest.fixture
def union(make_stack):
    """A stack whose union-a is connected to Mobilize organization 101, event 7001 mapped to rally-m."""
    stack = make_stack()
    connect_mobilize(stack.settings.coalition, "union-a", 101, "key-union")
    map_mobilize_event(stack.settings.coalition, "union-a", "7001", "rally-m")
    stack.start_worker()
    stack.start_web()
    stack.announce("rally-m")
    return stack


def test_a_person_who_came_to_one_shift_and_missed_another_turned_out(union):
    """An outside probe: a Mobilize event with two timeslots, the person came to Saturday's and
    was marked not attended on Sunday's; the Sunday mark took the Saturday check-in back, and
    the partner's turnout read 0. Likewise a cancelled Sunday made a Saturday volunteer an RSVP no."""
    stack = union
    rows = [attendance(1, 7001, "CONFIRMED", 1_764_000_001, phone=phone(1), attended=True, timeslot=501),
            attendance(2, 7001, "CONFIRMED", 1_764_000_002, phone=phone(1), attended=False, timeslot=502),
            attendance(3, 7001, "CONFIRMED", 1_764_000_003, phone=phone(2), attended=True, timeslot=501),
            attendance(4, 7001, "REGISTERED", 1_764_000_004, phone=phone(3), timeslot=501),
            attendance(5, 7001, "REGISTERED", 1_764_000_005, phone=phone(3), timeslot=502)]
    with FakeMobilize(keys={101: "key-union"}, attendances={101: rows}) as fake:
        poll_once(stack, fake)
        eventually(lambda: stack.action_rows("rally-m") == {"union-a": {"pledged": 0, "rsvp_yes": 3, "attended": 2}})
        # Later, person 2's only shift unmarked (withdrawn), and person 3 cancelled Sunday's (still down for Saturday's).
        fake.attendances[101] = [attendance(3, 7001, "CONFIRMED", 1_764_000_010, phone=phone(2), attended=False, timeslot=501),
                                 attendance(5, 7001, "CANCELLED", 1_764_000_011, phone=phone(3), timeslot=502)]
        poll_once(stack, fake)
        eventually(lambda: stack.action_rows("rally-m") == {"union-a": {"pledged": 0, "rsvp_yes": 3, "attended": 1}})


def test_an_event_mapped_after_its_attendances_were_polled_is_counted_at_the_next_pass(union):
    """An outside probe: `turnout up` polls as soon as a partner is connected; attendances of an
    event mapped after that pass were skipped, the cursor moved past them, and they were never
    counted. A pass that finds an event mapped since the cursor was stored reads every attendance
    again (the same keyed facts: nothing counts twice)."""
    stack, path = union, union.settings.coalition
    stack.announce("vigil-m")
    rows = [attendance(1, 7001, "CONFIRMED", 1_764_000_001, phone=phone(1)),
            attendance(2, 7002, "CONFIRMED", 1_764_000_002, phone=phone(2), attended=True)]  # an event nobody mapped yet
    with FakeMobilize(keys={101: "key-union"}, attendances={101: rows}) as fake:
        poll_once(stack, fake)
        eventually(lambda: stack.action_rows("rally-m") == {"union-a": {"pledged": 0, "rsvp_yes": 1, "attended": 0}})
        map_mobilize_event(path, "union-a", "7002", "vigil-m")
        poll_once(stack, fake)
        assert [r["updated_since"] for r in fake.requests if r["org"] == 101][-1] == 0  # read again from the start
        eventually(lambda: stack.action_rows("vigil-m") == {"union-a": {"pledged": 0, "rsvp_yes": 1, "attended": 1}})
        fake.requests.clear()
        poll_once(stack, fake)  # the mapping is known now: from the cursor again
        assert {r["updated_since"] for r in fake.requests if r["org"] == 101} == {1_764_000_002}
        assert stack.action_rows("rally-m") == {"union-a": {"pledged": 0, "rsvp_yes": 1, "attended": 0}}  # nothing twice
        # A slip corrected: 7002 is rally-m's. Read from the start again, its attendance counts
        # there (an outside probe: the pass read on from the cursor, and rally-m never had it).
        map_mobilize_event(path, "union-a", "7002", "rally-m")
        fake.requests.clear()
        poll_once(stack, fake)
        assert [r["updated_since"] for r in fake.requests if r["org"] == 101][0] == 0
        eventually(lambda: stack.action_rows("rally-m") == {"union-a": {"pledged": 0, "rsvp_yes": 2, "attended": 1}})
    assert stack.action_rows("vigil-m") == {"union-a": {"pledged": 0, "rsvp_yes": 1, "attended": 1}}  # counted there already: stays (README)


def dead_letters(stack) -> list[dict]:
    import json

    from kafka import KafkaConsumer

    from streams.topology import dead_letter_topic

    consumer = KafkaConsumer(dead_letter_topic(stack.settings), bootstrap_servers=stack.settings.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=2000)
    try:
        return [json.loads(m.value) for m in consumer]
    finally:
        consumer.close()


def test_a_partner_disabled_in_the_coalition_file_is_not_polled_at_the_next_pass(make_stack):
    stack = make_stack()
    path = stack.settings.coalition
    for partner, org, event in (("union-a", 101, "7001"), ("faith-b", 202, "8001")):
        connect_mobilize(path, partner, org, f"key-{org}")
        map_mobilize_event(path, partner, event, "rally-m")
    stack.start_worker()
    stack.start_web()
    stack.announce("rally-m")
    rows = {101: [attendance(1, 7001, "REGISTERED", 1_764_000_001, phone=phone(1))],
            202: [attendance(2, 8001, "REGISTERED", 1_764_000_001, phone=phone(2), sponsor=202)]}
    with FakeMobilize(keys={101: "key-101", 202: "key-202"}, attendances=rows) as fake:
        # The long-running poller `turnout up` starts, not --once: it must notice the file change itself.
        stack._spawn(["mobilize", "poll"], "mobilize", {"TURNOUT_MOBILIZE_BASE_URL": fake.url, "TURNOUT_MOBILIZE_INTERVAL": "0.2"})
        yes = lambda: {p: r["rsvp_yes"] for p, r in stack.action_rows("rally-m").items()}  # noqa: E731
        eventually(lambda: yes() == {"union-a": 1, "faith-b": 1})

        update_partner(path, "union-a", lambda entry: entry.update(enabled=False))
        reads = lambda org: sum(1 for r in fake.requests if r["org"] == org)  # noqa: E731
        after = reads(202)
        eventually(lambda: reads(202) >= after + 2)  # a whole pass begun since the poller could read the change
        polled = reads(101)
        fake.attendances[101].append(attendance(3, 7001, "REGISTERED", 1_764_000_100, phone=phone(3)))
        fake.attendances[202].append(attendance(4, 8001, "REGISTERED", 1_764_000_100, phone=phone(4), sponsor=202))
        eventually(lambda: yes()["faith-b"] == 2)
        assert reads(101) == polled and yes()["union-a"] == 1
