"""No seeded name, phone or email in any log line of any process (web app, workers, sandbox) after
a run with refused input of every kind, provider failures, a worker killed mid-run and a worker
that dead-letters a record it cannot read."""

from __future__ import annotations

import json
import signal

import pytest
from kafka import KafkaProducer

from streams.topology import asks_topic, events_topic
from tests.factories import checkin, phone, rsvp, signup
from tests.integration.test_outreach import rapid
from tests.polling import eventually

pytestmark = pytest.mark.integration

PEOPLE = [
    {"phone": phone(41), "email": "perpetua.lindqvist@example.org", "given_name": "Perpetua", "family_name": "Lindqvist"},
    {"phone": phone(42), "email": "ignatius.farquharson@example.org", "given_name": "Ignatius", "family_name": "Farquharson"},
    {"phone": phone(43), "email": "wilhelmina.osterhout@example.org", "given_name": "Wilhelmina", "family_name": "Osterhout"},
]
BOUNCED = PEOPLE[1]["email"]
INVALID_NUMBER = PEOPLE[2]["phone"]


def seeded() -> list[str]:
    return [v for p in PEOPLE for v in (*p.values(), p["phone"][2:])]


def sign_up(i: int, who: dict) -> dict:
    item = signup(f"s{i}", phone=who["phone"], email=who["email"], at="2026-11-20T10:00:00Z",
                  given_name=who["given_name"], family_name=who["family_name"], postal_code="94607")
    item["consent"] = {c: {"granted": True, "scope": "coalition"} for c in ("sms", "email")}
    return item


def refused(who: dict) -> list[dict]:
    """Events the ingress refuses, each quoting the person somewhere pydantic looks."""
    return [
        {**sign_up(90, who), "person": {**sign_up(90, who)["person"], "email": who["given_name"] + "@"}},
        {**sign_up(91, who), "person": {**sign_up(91, who)["person"], "given_name": who["given_name"] * 20}},
        {**sign_up(92, who), "person": {**sign_up(92, who)["person"], "postal_code": who["family_name"] + "!"}},
        {**sign_up(93, who), "person": {**sign_up(93, who)["person"], "nickname": who["given_name"]}},
        {**sign_up(94, who), "occurred_at": who["phone"]},
        {"type": "rsvp", "event_id": who["email"], "occurred_at": "2026-11-20T10:00:00Z", "action_id": who["family_name"].lower() + " x", "status": "yes", "person": {"phone": who["phone"]}},
    ]


def test_no_seeded_personal_data_in_any_log_line_after_crashes_and_refused_input(make_stack):
    stack = make_stack(outreach=True, partners=("backbone", "union-a"))
    stack.start_sandbox(faults=json.dumps({"share_5xx": 0.3, "bounce_emails": [BOUNCED], "invalid_numbers": [INVALID_NUMBER]}))
    stack.start_web()
    first = stack.start_worker()
    stack.announce("rally-l")
    stack.post_all("union-a", [sign_up(i, who) for i, who in enumerate(PEOPLE)])

    # Refused input: at the ingress, at the Action Network webhook, and records no agent can read.
    for who in PEOPLE:
        r = stack.post("union-a", refused(who))
        assert r.status_code == 422 and len(r.json()["rejected"]) == 6, r.text
    producer = KafkaProducer(bootstrap_servers=stack.settings.bootstrap)
    who = PEOPLE[0]
    producer.send(events_topic(stack.settings), key=who["phone"].encode(),
                  value=json.dumps({"partner": "union-a", "event": {"type": "signup", "person": {k: who[k] for k in who}}}).encode())
    producer.send(events_topic(stack.settings), key=b"x", value=f"not json {who['given_name']} {who['email']} {who['phone']}".encode())
    producer.flush()

    # A worker killed mid-run; its successor takes over.
    stack.post_all("union-a", [rsvp(f"r{i}", "rally-l", phone=w["phone"]) for i, w in enumerate(PEOPLE)])
    stack.stop(first, signal.SIGKILL)
    second = stack.start_worker()
    stack.post_all("union-a", [checkin(f"c{i}", "rally-l", email=w["email"]) for i, w in enumerate(PEOPLE)])
    eventually(lambda: stack.action_rows("rally-l") == {"union-a": {"pledged": 0, "rsvp_yes": 3, "attended": 3}}, timeout=90)

    # Outreach through a failing provider: retries, a bounce, an invalid number (dead letters).
    stack.post_all("backbone", [rapid("alert-l", "Budget hearing", ["94607"])])
    eventually(lambda: len(stack.inbox("email")) >= 2 and len(stack.inbox("sms")) >= 2, timeout=90)

    # A record the send agent cannot read, quoting the person: dead-lettered (with its pydantic
    # errors, which quote input) while the worker goes on; then the worker is stopped.
    producer.send(asks_topic(stack.settings), key=b"p" + b"0" * 32,
                  value=json.dumps({"to": who["phone"], "body": f"Hi {who['given_name']} {who['family_name']}", "email": who["email"]}).encode())
    producer.flush()
    producer.close()
    worker_log = stack.logs[stack.procs.index(second)]
    eventually(lambda: "invalid ask command" in worker_log.read_text(errors="replace"), timeout=90)
    assert second.poll() is None  # an unreadable record stops nothing
    stack.stop(second)

    logs = {log.name: log.read_text(errors="replace") for log in stack.logs}
    everything = "".join(logs.values())
    # The scan has something to find: the unreadable records and the provider's failures were logged about.
    assert "invalid envelope" in everything and "invalid ask command" in everything and "provider" in everything
    leaks = [(name, line) for name, text in logs.items() for line in text.splitlines() for s in seeded() if s in line]
    assert leaks == []
