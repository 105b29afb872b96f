"""Rapid-response outreach end to end: real ingress, real workers, the real Twilio and SendGrid
SDKs talking to the sandbox providers, callbacks flowing back through the signed webhooks."""

import json
from collections import Counter
from itertools import count

import pytest
from kafka import KafkaConsumer, TopicPartition

from agents.outreach.receipts import STOP_CONFIRMATION
from contracts.asks import ask_id
from streams.keys import partition_of, person_key
from streams.topology import ASKS, PEOPLE, changelog_topic
from tests.factories import phone, signup
from tests.polling import eventually

pytestmark = pytest.mark.integration

SMS = {"en": "{given_name}: {action_title} at {place}, {local_time}. RSVP {rsvp_link}"}
EMAIL = {"en": {"subject": "{action_title}", "body": "Hi {given_name}, join us: {rsvp_link}"}}


def rapid(action_id, title, postal_codes, event_id=None, at="2026-11-24T18:00:00Z", **extra):
    return {"type": "action", "event_id": event_id or f"a-{action_id}", "occurred_at": at, "action_id": action_id,
            "title": title, "kind": "rally", "starts_at": "2026-11-25T02:00:00Z", "time_zone": "America/Los_Angeles",
            "location": {"venue": "City Hall", "locality": "Oakland"}, "target": {"postal_codes": postal_codes},
            "templates": {"sms": SMS, "email": EMAIL}, "rapid_response": True, **extra}


def person(i, postal="94607", sms=True, email=None, at="2026-11-20T10:00:00Z", scope="coalition"):
    """A sign-up with consent on the channels given; by default the form asked on behalf of the
    whole coalition, so any partner's alert may reach them (README: Roles and authority)."""
    item = signup(f"s-{i}", phone=phone(i), email=email, at=at, given_name=f"P{i}", postal_code=postal)
    item["consent"] = {"sms": {"granted": sms, "scope": scope}, "email": {"granted": email is not None, "scope": scope}}
    return item


def markers(stack, postal="94609"):
    """One person per partition: when each has their text, every partition has got that far."""
    found, i = {}, 9000
    while len(found) < stack.settings.partitions:
        pk = person_key(stack.settings.person_key_bytes(), phone(i), None)
        found.setdefault(partition_of(pk, stack.settings.partitions), i)
        i += 1
    return [person(i, postal=postal) for i in found.values()]


def sms_to(stack, title):
    return Counter(m["to"] for m in stack.inbox("sms") if title in m["body"])


def emails_to(stack, subject):
    return Counter(m["to"] for m in stack.inbox("email") if m.get("subject") == subject)


def opted_out(stack, pk) -> dict:
    """The person's opt-outs, as their record says last (the people fact topic, read to its end)."""
    return latest(stack, PEOPLE).get(pk, {}).get("opted_out", {})


def signups_seen(stack, n):
    return stack.get("/v1/tallies").json()["totals"]["signups"] == n


@pytest.fixture
def outreach(make_stack):
    stack = make_stack(outreach=True, partners=("backbone", "union-a", "faith-b"), frequency_cap=2)
    stack.start_sandbox()
    stack.start_web()
    stack.start_worker()
    return stack


def test_rapid_response_reaches_each_eligible_person_exactly_once(outreach):
    stack = outreach
    mark = markers(stack)
    union = [
        person(1, email="a@example.org"),        # SMS and email
        person(2, postal="94612"),               # SMS
        person(3, sms=False),                    # no consent: nothing
        person(4, postal="10001"),               # out of area: nothing
        person(5, at="2026-11-19T10:00:00Z"),    # signed up by three partners: one text, union's
        person(7, postal="94601", email="f@example.org"),  # already asked twice this week: over the cap
        *mark,
    ]
    stack.post_all("union-a", union)
    stack.post_all("faith-b", [person(5, at="2026-11-21T10:00:00Z") | {"event_id": "f-5"}])
    eventually(lambda: signups_seen(stack, len(union) + 1))

    # The union's own alerts: each ask is credited to the union, its sponsor and the people's recruiter.
    assert stack.post("union-a", [rapid("warmup", "Warm-up vigil", ["94601"])]).status_code == 202
    eventually(lambda: len([m for m in stack.inbox() if m["to"] in (phone(7), "f@example.org")]) == 2)

    assert stack.post("union-a", [rapid("rally-1", "Budget rally", ["94607", "94612", "94601"])]).status_code == 202
    # The same action again, now also reaching the markers: once each marker has its text,
    # every partition has processed the repeat as well.
    again = rapid("rally-1", "Budget rally", ["94607", "94612", "94601", "94609"], event_id="a-rally-1-again", at="2026-11-24T18:01:00Z")
    assert stack.post("union-a", [again]).status_code == 202
    eventually(lambda: all(sms_to(stack, "Budget rally")[m["person"]["phone"]] == 1 for m in mark), timeout=60)

    texts = sms_to(stack, "Budget rally")
    assert texts == Counter({phone(1): 1, phone(2): 1, phone(5): 1, **{m["person"]["phone"]: 1 for m in mark}})
    # Emails go out at the end of a batch, after its texts: wait for it, then it must be the only one.
    eventually(lambda: [m["to"] for m in stack.inbox("email") if "Budget rally" in str(m)] == ["a@example.org"])
    body = next(m["body"] for m in stack.inbox("sms") if m["to"] == phone(1) and "Budget rally" in m["body"])
    # On behalf of the sponsor, by its name in the coalition file (the test stack names partners by id).
    assert body.startswith("union-a: P1: Budget rally at City Hall, Oakland") and body.endswith("Reply YES to RSVP, STOP to opt out")

    def tallied():
        rows = {r["partner"]: r for r in stack.get("/v1/actions/rally-1/tallies").json()["partners"]}
        assert rows["union-a"]["asked_sms"] == 3 + len(mark) and rows["union-a"]["asked_email"] == 1
        assert rows["union-a"]["delivered"] == 4 + len(mark)
        assert "faith-b" not in rows
        return True

    eventually(tallied, timeout=60)


def rows(stack, action_id):
    return {r["partner"]: r for r in stack.get(f"/v1/actions/{action_id}/tallies").json()["partners"]}


def test_stop_blocks_every_later_ask_and_yes_becomes_an_rsvp_for_the_recruiter(outreach):
    stack = outreach
    mark = markers(stack)
    stack.post_all("union-a", [person(1, at="2026-11-19T10:00:00Z"), person(2), person(3, email="p3@example.org"), *mark])
    stack.post_all("faith-b", [person(1, at="2026-11-21T10:00:00Z") | {"event_id": "f-1"}])
    eventually(lambda: signups_seen(stack, len(mark) + 4))

    assert stack.post("union-a", [rapid("first", "First ask", ["94607"])]).status_code == 202
    eventually(lambda: sms_to(stack, "First ask") == Counter({phone(1): 1, phone(2): 1, phone(3): 1}))
    eventually(lambda: emails_to(stack, "First ask") == Counter({"p3@example.org": 1}))
    stack.reply(phone(1), "Stop please")
    stack.reply(phone(2), "yes!")
    eventually(lambda: rows(stack, "first")["union-a"]["opted_out"] == 1 and rows(stack, "first")["union-a"]["rsvp_yes"] == 1)
    assert rows(stack, "first")["union-a"]["rsvp_via_sms"] == 1
    assert "faith-b" not in rows(stack, "first")
    # Twilio's opt-out takes only a text that is one keyword, so "Stop please" is confirmed by turnout.
    eventually(lambda: sms_to(stack, STOP_CONFIRMATION["en"]) == Counter({phone(1): 1}))

    # HELP alone Twilio answers (Advanced Opt-Out, the default), as STOP alone; "Help?" is no keyword
    # to it, and is answered with the help text, to that person only, once.
    stack.reply(phone(2), "HELP")
    stack.reply(phone(2), "Help?")
    help_text = "backbone alerts. Reply STOP to opt out, START to opt back in."  # TURNOUT_HELP_TEXT unset: named after the backbone partner
    eventually(lambda: sms_to(stack, help_text) == Counter({phone(2): 1}))
    # Person 3 gave union-a a second phone since (same email): texts go to the newest. A HELP from
    # the first phone is not answered at the second; the second's STOP is not answered at the first.
    stack.post_all("union-a", [person(3, email="p3@example.org", at="2026-11-21T10:00:00Z") | {"event_id": "s-3b", "person": {
        "phone": phone(33), "email": "p3@example.org", "given_name": "P3", "postal_code": "94607"}}])
    eventually(lambda: latest(stack, PEOPLE).get(person_key(stack.settings.person_key_bytes(), phone(3), None), {}).get("profile_at", {}).get("phone")
               == "2026-11-21T10:00:00Z")
    stack.reply(phone(3), "help me")
    stack.reply(phone(33), "Stop now")  # applied on the person's partition after the HELP, and confirmed at its own number
    eventually(lambda: sms_to(stack, STOP_CONFIRMATION["en"])[phone(33)] == 1)
    assert sms_to(stack, help_text) == Counter({phone(2): 1})  # not the bare HELP, nor person 3 at either phone

    # Person 3 told faith-b (which never signed them up) to stop everything; faith-b knows only
    # their email. The opt-out reaches the person union-a knows by phone, on both channels.
    assert stack.post("faith-b", [{"type": "opt_out", "event_id": "f-stop-3", "occurred_at": "2026-11-24T18:30:00Z",
                                   "person": {"email": "P3@example.org"}, "channels": ["sms", "email"]}]).status_code == 202
    eventually(lambda: set(opted_out(stack, person_key(stack.settings.person_key_bytes(), phone(3), None))) == {"sms", "email"})

    # Another partner's action: the person who said STOP gets nothing; the markers show it was processed.
    assert stack.post("faith-b", [rapid("second", "Second ask", ["94607", "94609"])]).status_code == 202
    eventually(lambda: all(sms_to(stack, "Second ask")[m["person"]["phone"]] == 1 for m in mark), timeout=60)
    assert phone(1) not in sms_to(stack, "Second ask") and phone(3) not in sms_to(stack, "Second ask")
    assert sms_to(stack, "Second ask")[phone(2)] == 1 and not emails_to(stack, "Second ask")

    stack.reply(phone(1), "START")
    assert stack.post("faith-b", [rapid("third", "Third ask", ["94607"])]).status_code == 202
    eventually(lambda: sms_to(stack, "Third ask")[phone(1)] == 1)


def same_partition(stack, i):
    """Another person (index) whose person key lands on person ``i``'s partition."""
    def part(j):
        return partition_of(person_key(stack.settings.person_key_bytes(), phone(j), None), stack.settings.partitions)
    return next(j for j in count(9000) if part(j) == part(i))


def latest(stack, table) -> dict[str, dict]:
    """The latest fact of every key of ``table``, read to the end of its fact topic."""
    consumer = KafkaConsumer(bootstrap_servers=stack.settings.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        topic = changelog_topic(stack.settings, table)
        parts = [TopicPartition(topic, n) for n in consumer.partitions_for_topic(topic)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end, facts = consumer.end_offsets(parts), {}
        while any(consumer.position(tp) < end[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=500).values():
                facts.update((json.loads(r.key), json.loads(r.value)) for r in records if r.value)
        return facts
    finally:
        consumer.close()


def ask_states(stack) -> dict[str, str]:
    """The latest status of every ask, read to the end of the asks fact topic."""
    return {aid: fact["status"] for aid, fact in latest(stack, ASKS).items()}


def sms_ask(stack, action_id, i):
    return ask_id(action_id, person_key(stack.settings.person_key_bytes(), phone(i), None), "sms")


def test_a_small_alert_is_with_the_provider_for_every_partition_at_once(make_stack):
    """One person on each partition, and a provider that takes 3 s to answer each request: the
    partitions are planned and handed over side by side, so all eight texts are with the
    provider together (planned one partition after another, they took 8 × 3 s)."""
    latency = 3.0
    stack = make_stack(outreach=True, partners=("backbone", "union-a"))
    stack.start_sandbox(json.dumps({"latency_ms": int(latency * 1000)}))
    stack.start_web()
    stack.start_worker()
    mark = markers(stack)
    stack.post_all("union-a", mark)
    eventually(lambda: signups_seen(stack, len(mark)))

    assert stack.post("union-a", [rapid("flash", "Flash vigil", ["94609"])]).status_code == 202
    eventually(lambda: len(sms_to(stack, "Flash vigil")) == len(mark), timeout=90)
    accepted = [m["created"] for m in stack.inbox("sms") if "Flash vigil" in m["body"]]
    assert max(accepted) - min(accepted) < latency, "the partitions' texts were handed over one after another"


def test_quiet_hours_defer_texts_until_the_window_opens(outreach):
    """Ana (Oakland) and Dani (Denver, an hour ahead, on Ana's partition) are alerted at night.
    At 08:59 in Oakland Dani's window is open and Ana's is not: Dani's text shows that the
    release timer has looked at both, and Ana's must still wait."""
    stack = outreach
    ana, dani = 1, same_partition(stack, 1)
    stack.set_clock("2026-11-25T06:30:00+00:00")  # 22:30 in Oakland, 23:30 in Denver
    stack.post_all("union-a", [person(ana, email="a@example.org"), person(dani, postal="80202")])
    eventually(lambda: signups_seen(stack, 2))
    assert stack.post("union-a", [rapid("night", "Night alert", ["94607", "80202"], starts_at="2026-11-26T02:00:00Z")]).status_code == 202
    eventually(lambda: [m["to"] for m in stack.inbox("email")] == ["a@example.org"])  # email has no quiet hours
    eventually(lambda: rows(stack, "night")["union-a"]["asked_email"] == 1)
    texts = [sms_ask(stack, "night", ana), sms_ask(stack, "night", dani)]
    # Both texts decided on (deferred, not dropped), so none is on its way.
    eventually(lambda: [ask_states(stack).get(t) for t in texts] == ["deferred", "deferred"])
    assert stack.inbox("sms") == []

    stack.set_clock("2026-11-25T16:59:00+00:00")  # 08:59 in Oakland, 09:59 in Denver
    eventually(lambda: sms_to(stack, "Night alert")[phone(dani)] == 1)
    # The timer pass that released Dani's text looked at Ana's too, and queued whatever it
    # released on their partition before the ask below: once that is delivered, those have gone out.
    morning = rapid("morning", "Morning check", ["80202"], at="2026-11-25T16:58:00Z", starts_at="2026-11-26T02:00:00Z")
    assert stack.post("union-a", [morning]).status_code == 202
    eventually(lambda: rows(stack, "morning")["union-a"]["delivered"] == 1)
    assert sms_to(stack, "Night alert") == Counter({phone(dani): 1})
    assert ask_states(stack)[texts[0]] == "deferred"

    stack.set_clock("2026-11-25T17:00:30+00:00")  # 09:00:30 in Oakland: the window is open
    eventually(lambda: sms_to(stack, "Night alert") == Counter({phone(ana): 1, phone(dani): 1}))


def test_forged_provider_webhooks_get_403_and_write_nothing(outreach):
    stack = outreach
    r = stack.http.post(f"{stack.url}/v1/providers/twilio/inbound", data={"From": phone(1), "Body": "STOP"}, headers={"X-Twilio-Signature": "forged"})
    assert r.status_code == 403
    r = stack.http.post(f"{stack.url}/v1/providers/twilio/status?ask=x:p0:sms", data={"MessageSid": "SM1", "MessageStatus": "delivered"})
    assert r.status_code == 403
    r = stack.http.post(f"{stack.url}/v1/providers/sendgrid/events", content=b'[{"event":"unsubscribe"}]',
                        headers={"X-Twilio-Email-Event-Webhook-Signature": "MEUCIQ==", "X-Twilio-Email-Event-Webhook-Timestamp": "1"})
    assert r.status_code == 403


def test_a_landline_and_a_bounced_email_are_not_asked_again_at_the_next_action(make_stack):
    """The sandbox fails one number as a landline (30006, by callback) and bounces one email:
    at the next action both people are left out on that channel, and asked on the other."""
    stack = make_stack(outreach=True, partners=("union-a",))
    stack.start_sandbox(faults=json.dumps({"landline_numbers": [phone(2)], "bounce_emails": ["b@example.org"]}))
    stack.start_web()
    stack.start_worker()
    people = [person(1), person(2, email="two@example.org"), person(3, email="b@example.org")]
    stack.post_all("union-a", people)
    eventually(lambda: signups_seen(stack, 3))
    keys = {i: person_key(stack.settings.person_key_bytes(), phone(i), None) for i in (1, 2, 3)}

    assert stack.post("union-a", [rapid("rally-1", "First rally", ["94607"])]).status_code == 202

    def found_undeliverable():
        records = latest(stack, PEOPLE)
        return (records.get(keys[2], {}).get("undeliverable", {}).get("sms", {}).get("code"),
                records.get(keys[3], {}).get("undeliverable", {}).get("email", {}).get("code")) == ("30006", "bounce")

    eventually(found_undeliverable, timeout=60)

    assert stack.post("union-a", [rapid("rally-2", "Second rally", ["94607"])]).status_code == 202

    def settled():  # person 3's text, and person 2's email: each in the same hand-over as the other channel's ask
        asks = latest(stack, ASKS)
        return all(asks.get(ask_id("rally-2", keys[i], c), {}).get("status") == "delivered" for i, c in ((1, "sms"), (2, "email"), (3, "sms")))

    eventually(settled, timeout=60)
    assert sms_to(stack, "Second rally") == Counter({phone(1): 1, phone(3): 1})
    assert emails_to(stack, "Second rally") == Counter({"two@example.org": 1})
    asks = latest(stack, ASKS)
    assert ask_id("rally-2", keys[2], "sms") not in asks and ask_id("rally-2", keys[3], "email") not in asks
