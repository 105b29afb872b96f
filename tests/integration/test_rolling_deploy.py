"""A rolling deploy: records a newer version of turnout wrote (a higher ``version``, fields this
version does not know) next to this version's workers, on an internal topic and in a table's
changelog. This worker reads them, counts them and goes on updating them."""

import json
from datetime import datetime, timezone

import pytest
from kafka import KafkaProducer

from contracts.events import Envelope, partner_event
from contracts.facts import Attendance
from streams.keys import fact_key, partition_of, person_key
from streams.topology import ATTENDANCE, changelog_topic, events_topic
from streams.writes import changelog_key
from tests.factories import checkin, phone, rsvp
from tests.polling import eventually

pytestmark = pytest.mark.integration

FROM_THE_FUTURE = {"version": 2, "field_from_the_future": {"any": ["thing", 1]}}


def test_a_worker_reads_counts_and_updates_what_a_newer_version_wrote_beside_it(make_stack):
    stack = make_stack()
    s = stack.settings
    secret = s.person_key_bytes()
    ana, ben = person_key(secret, phone(1), None), person_key(secret, phone(2), None)
    now = datetime.now(timezone.utc)
    producer = KafkaProducer(bootstrap_servers=s.bootstrap)

    # A newer worker left Ben's RSVP in the attendance table before this worker started.
    key = fact_key("rally-v", ben)
    fact = Attendance(action_id="rally-v", person_key=ben, rsvp="yes", rsvp_at=now, rsvp_by="union-a", rsvp_received=now,
                      first_received=now)
    producer.send(changelog_topic(s, ATTENDANCE), key=changelog_key(key),
                  value=json.dumps({**fact.model_dump(mode="json"), **FROM_THE_FUTURE}).encode(), partition=partition_of(key, s.partitions))
    producer.flush()

    stack.start_worker()
    stack.start_web()
    stack.announce("rally-v")
    # A newer web app accepts Ana's RSVP and writes its envelope, with a field this worker does not know.
    envelope = Envelope(partner="union-a", received_at=now, person_key=ana,
                        event=partner_event.validate_python(rsvp("v-ana", "rally-v", phone=phone(1))))
    producer.send(events_topic(s), key=ana.encode(), value=json.dumps({**envelope.model_dump(mode="json"), **FROM_THE_FUTURE}).encode())
    producer.flush()
    producer.close()
    eventually(lambda: stack.action_rows("rally-v") == {"union-a": {"pledged": 0, "rsvp_yes": 2, "attended": 0}}, timeout=60)

    # This version goes on with both: their check-ins update the facts the newer version wrote.
    assert stack.post("union-a", [checkin("c-ana", "rally-v", phone=phone(1)), checkin("c-ben", "rally-v", phone=phone(2))]).status_code == 202
    eventually(lambda: stack.action_rows("rally-v") == {"union-a": {"pledged": 0, "rsvp_yes": 2, "attended": 2}}, timeout=60)
