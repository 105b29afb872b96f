"""Erasure on request: the person's records leave every compacted topic and their data keys are
deleted, they get no further asks, and the tallies keep their counts."""

import re

import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer

from streams.cli import main
from streams.stack import child_env
from streams.topology import DEFERRED, PEOPLE, changelog_topic, topic_specs
from tests.factories import checkin, phone, rsvp, signup
from tests.polling import eventually
from tests.integration.test_outreach import rapid

pytestmark = pytest.mark.integration

ANA_PHONE, ANA_EMAIL, BEN_PHONE = phone(1), "ana.diaz@example.org", phone(2)
NIGHT = "2026-11-25T06:00:00+00:00"  # 22:00 in California: texts are deferred, emails go
TOMORROW = "2026-11-26T02:00:00Z"  # the alerts' start: 18:00 in California, the day after the night


def latest_values(stack) -> dict[tuple[str, bytes], bytes | None]:
    """The latest value of every key of every compacted topic (what compaction keeps)."""
    topics = [t.name for t in topic_specs(stack.settings) if t.compacted]
    consumer = KafkaConsumer(*topics, bootstrap_servers=stack.settings.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=1500)
    latest = {(m.topic, m.key): m.value for m in consumer}
    consumer.close()
    return latest


def holding(stack, *needles: str) -> set[str]:
    return {topic for (topic, key), value in latest_values(stack).items()
            for n in needles if n.encode() in (key or b"") + (value or b"")}


def person(event_id, phone_=None, email=None, name="Ana"):
    item = signup(event_id, phone=phone_, email=email, at="2026-11-20T10:00:00Z", given_name=name, postal_code="94607")
    # Consent for the coalition, so the backbone's alerts reach them.
    item["consent"] = {c: {"granted": v, "scope": "coalition"} for c, v in item["consent"].items()}
    return item


def test_forgetting_a_person_removes_their_contact_details_and_keeps_the_counts(make_stack):
    stack = make_stack(outreach=True, partners=("backbone", "union-a", "faith-b"))
    stack.start_sandbox()
    stack.start_web()
    stack.start_worker()
    stack.announce("rally-e")
    stack.set_clock(NIGHT)
    stack.post_all("union-a", [person("u1", ANA_PHONE, ANA_EMAIL), person("u2", BEN_PHONE, name="Ben"),
                               rsvp("r1", "rally-e", phone=ANA_PHONE), checkin("c1", "rally-e", phone=ANA_PHONE, at="2026-12-01T18:05:00Z")])
    stack.post_all("faith-b", [person("f1", ANA_PHONE)])
    stack.post_all("backbone", [rapid("alert-1", "Budget hearing", ["94607"], starts_at=TOMORROW)])
    # Ana's email goes out at once; both texts wait for the morning in the deferred table.
    eventually(lambda: [m["to"] for m in stack.inbox("email")] == [ANA_EMAIL], timeout=60)
    deferred = changelog_topic(stack.settings, DEFERRED)
    eventually(lambda: sum(1 for (topic, _), value in latest_values(stack).items() if topic == deferred and value) == 2, timeout=60)
    # Sealed from the start (streams.crypto): no table holds the address or the name in clear
    # (test_shredding reads every topic from offset 0 and opens what it finds).
    assert holding(stack, ANA_PHONE, ANA_EMAIL, '"Ana"', "Ana,") == set()
    assert holding(stack, "enc1:") >= {changelog_topic(stack.settings, PEOPLE), deferred}
    rows = {"union-a": {"pledged": 0, "rsvp_yes": 1, "attended": 1}}
    eventually(lambda: stack.action_rows("rally-e") == rows)
    coalition = {p["partner"]: p["signups"] for p in stack.get("/v1/tallies").json()["partners"] if p["signups"]}
    assert coalition == {"union-a": 2, "faith-b": 1}

    # By email, though Ana is keyed by her phone: the request reaches every partition.
    r = CliRunner().invoke(main, ["people", "forget", "--email", ANA_EMAIL.upper(), "--url", stack.url], env=child_env(stack.settings))
    assert r.exit_code == 0, r.output
    assert "removed 1 person record (signed up by faith-b, union-a); cancelled 1 queued ask; deleted 1 data key," in r.output
    assert ANA_EMAIL not in r.output
    assert "any opt-out they gave stays" in r.output  # so staff can tell the person honestly (an outside probe); "an" claimed one
    # The RSVP link in the email Ana got before still opens, only to say her details are gone.
    link = re.search(r"https?://\S+/r/[\w-]+/[\w-]+", stack.inbox("email")[0]["text"]).group()
    page = stack.http.get(link)
    assert page.status_code == 410 and "We no longer hold your details" in page.text
    assert stack.http.post(link, data={"status": "yes"}).status_code == 410

    assert holding(stack, ANA_PHONE, ANA_PHONE[2:], ANA_EMAIL, '"Ana"', "Ana:") == set()
    assert sum(1 for (topic, _), value in latest_values(stack).items() if topic == deferred and value) == 1  # Ben's text waits on
    assert stack.action_rows("rally-e") == rows
    assert {p["partner"]: p["signups"] for p in stack.get("/v1/tallies").json()["partners"] if p["signups"]} == coalition

    # Morning, and a new alert: Ben gets both texts, Ana nothing more.
    stack.set_clock("2026-11-25T18:00:00+00:00")
    stack.post_all("backbone", [rapid("alert-2", "Vote on the budget", ["94607"], at="2026-11-25T17:00:00Z", starts_at=TOMORROW)])
    eventually(lambda: sorted(m["body"].split(":")[2].strip().split(" at")[0] for m in stack.inbox("sms")) == ["Budget hearing", "Vote on the budget"], timeout=60)
    assert {m["to"] for m in stack.inbox("sms")} == {BEN_PHONE}
    assert [m["to"] for m in stack.inbox("email")] == [ANA_EMAIL]

    again = CliRunner().invoke(main, ["people", "forget", "--phone", ANA_PHONE, "--url", stack.url], env=child_env(stack.settings))
    assert again.exit_code == 0 and again.output == "nobody is known by that phone: nothing was removed\n", again.output


def test_forgetting_by_email_right_after_the_sign_up_forgets_the_person_known_by_their_phone(make_stack):
    """The web app finds the person an email belongs to in the identity links, which the worker
    writes a moment after it takes the sign-up: asked at once, it found none, forgot nobody,
    destroyed no data key, and the worker then deleted the email's link, so that every later
    request by email found nothing either (an identity/erasure probe)."""
    stack = make_stack()
    stack.start_web()
    stack.start_worker()
    eventually(lambda: stack.get("/healthz").status_code == 200)
    stack.post_all("union-a", [person("u1", ANA_PHONE, ANA_EMAIL)])
    r = CliRunner().invoke(main, ["people", "forget", "--email", ANA_EMAIL, "--url", stack.url], env=child_env(stack.settings))
    assert r.exit_code == 0 and "removed 1 person record (signed up by union-a)" in r.output and "deleted 1 data key" in r.output, r.output
    assert not [value for (topic, _), value in latest_values(stack).items() if topic == changelog_topic(stack.settings, PEOPLE) and value]
