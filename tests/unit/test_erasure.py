"""Erasure: who a request matches, how it reaches every partition, and the organizer endpoint."""

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from agents.erasure import erased_ask, matches, scrubbed
from contracts.asks import AskFact, ask_id
from connectors.web.app import create_app
from connectors.web.publisher import ListPublisher
from contracts.erasure import ForgetPerson
from contracts.facts import PersonRecord
from contracts.tallies import TallyBook
from streams.keys import keys_for_every_partition, partition_of, person_key
from streams.settings import Settings

SECRET = b"k"
AT = datetime(2026, 11, 20, tzinfo=timezone.utc)


def record(phone=None, email=None):
    return PersonRecord(person_key=person_key(SECRET, phone, email), phone=phone, email=email, recruited_by="union-a", recruited_at=AT, updated_at=AT)


def test_an_email_finds_a_person_keyed_by_phone_and_nobody_else():
    ana = record("+15105550123", "ana@example.org")
    by_email = {person_key(SECRET, None, "ana@example.org")}
    assert matches(ana, by_email, SECRET)
    assert matches(ana, {person_key(SECRET, "+15105550123", None)}, SECRET)
    assert not matches(record("+15105550124", "ben@example.org"), by_email, SECRET)
    assert matches(PersonRecord(person_key=next(iter(by_email)), recruited_by="", recruited_at=AT, updated_at=AT), by_email, SECRET)


def ask(status="failed", error=None, **extra):
    pk = person_key(SECRET, "+15105550123", None)
    return AskFact(ask_id=ask_id("rally-1", pk, "email"), action_id="rally-1", person_key=pk, channel="email",
                   partner="union-a", status=status, updated_at=AT, error=error, **extra)


def test_erasure_drops_provider_error_text_but_keeps_status_and_code():
    bounced = ask(error="550 <ana@example.org> rejected", error_code="550")
    assert scrubbed(bounced) == bounced.model_copy(update={"error": "(removed on erasure)"})
    assert scrubbed(ask("delivered")) == ask("delivered")
    cancelled = erased_ask(ask("deferred", deferred_until=AT), AT)
    assert (cancelled.status, cancelled.error, cancelled.deferred_until) == ("cancelled", "person erased", None)
    assert scrubbed(cancelled) == cancelled


@pytest.mark.parametrize("partitions", [1, 4, 8, 64])
def test_commands_reach_every_partition(partitions):
    keys = keys_for_every_partition("forget:abc", partitions)
    assert sorted(partition_of(k, partitions) for k in keys) == list(range(partitions))


class NoReports:
    async def wait(self, request_id, partitions, timeout):
        return []


class Links:
    def __init__(self, entries=None):
        self._entries = entries or {}

    async def entries(self):
        return dict(self._entries)


def test_the_endpoint_needs_the_organizer_writes_hashes_only_and_says_when_it_is_not_done(tmp_path, monkeypatch):
    import connectors.web.people as people

    monkeypatch.setattr(people, "KafkaErasureReports", lambda s: NoReports())
    monkeypatch.setattr(people, "KafkaIdentityLinks", lambda s: Links())
    s = Settings(coalition=tmp_path / "c.toml", organizer_token=SecretStr("t"), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092", partitions=4)
    pub = ListPublisher()
    client = TestClient(create_app(s, publisher=pub, book=TallyBook()))
    assert client.post("/v1/people/forget", json={"email": "ana@example.org"}).status_code == 401
    auth = {"Authorization": "Bearer t"}
    assert client.post("/v1/people/forget", json={"email": "ana@example.org", "phone": "+15105550123"}, headers=auth).status_code == 422
    assert client.post("/v1/people/forget", json={"phone": "12"}, headers=auth).status_code == 422
    r = client.post("/v1/people/forget", json={"email": "Ana@Example.org"}, headers=auth)
    assert r.status_code == 202 and r.json()["complete"] is False and r.json()["partitions"] == 4
    assert len(pub.records) == 4 and all(b"ana" not in k + v for k, v in pub.records)
    assert {ForgetPerson.model_validate_json(v).contact_keys for _, v in pub.records} == {(person_key(b"k", None, "ana@example.org"),)}


@pytest.mark.parametrize("body, status, field", [
    (b'{"phone": "\\ud800"}', 422, "body.phone"),
    (b'{"phone": "+15105550123", "phone": "+15105550124"}', 422, "body.phone"),
    (b'{"phone": 15105550123}', 422, "body.phone"),
    (b'{"email": "ana@example.org", "extra": 1}', 422, "body.extra"),
    (b"[" * 5000 + b"]" * 5000, 400, None),
    (b'"ana@example.org"', 400, None),
])
def test_a_bad_forget_request_is_a_4xx_naming_the_field_and_writes_nothing(tmp_path, monkeypatch, body, status, field):
    import connectors.web.people as people

    monkeypatch.setattr(people, "KafkaErasureReports", lambda s: NoReports())
    s = Settings(coalition=tmp_path / "c.toml", organizer_token=SecretStr("t"), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    pub = ListPublisher()
    client = TestClient(create_app(s, publisher=pub, book=TallyBook()))
    r = client.post("/v1/people/forget", content=body, headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
    assert r.status_code == status and r.json()["detail"]
    assert field is None or [e["field"] for e in r.json()["errors"]] == [field]
    assert pub.records == []
    # Without the token the body is never read: 401, and the connection is closed.
    r = client.post("/v1/people/forget", content=(b" " * 65536 for _ in range(4)))
    assert r.status_code == 401 and r.headers["connection"] == "close"


def test_forgetting_by_email_names_the_person_and_every_identifier_linked_to_them(tmp_path, monkeypatch):
    """Ana's email was linked to her phone's person, into which a second phone's person was
    merged; Ben is someone else. Asking by email sends all three of Ana's keys, none of Ben's."""
    import connectors.web.people as people
    from contracts.identity import linked_keys

    phone, email, old_phone, ben = (person_key(b"k", "+15105550123", None), person_key(b"k", None, "ana@example.org"),
                                    person_key(b"k", "+15105550199", None), person_key(b"k", "+15105550124", None))
    entries = {email: phone, old_phone: phone, phone: phone, ben: ben}
    assert linked_keys(entries, old_phone) == linked_keys(entries, email) == {phone, email, old_phone}
    assert linked_keys({}, email) == {email}
    monkeypatch.setattr(people, "KafkaErasureReports", lambda s: NoReports())
    monkeypatch.setattr(people, "KafkaIdentityLinks", lambda s: Links(entries))
    s = Settings(coalition=tmp_path / "c.toml", organizer_token=SecretStr("t"), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092", partitions=4)
    pub = ListPublisher()
    client = TestClient(create_app(s, publisher=pub, book=TallyBook()))
    assert client.post("/v1/people/forget", json={"email": "ana@example.org"}, headers={"Authorization": "Bearer t"}).status_code == 202
    assert {ForgetPerson.model_validate_json(v).contact_keys for _, v in pub.records} == {tuple(sorted({phone, email, old_phone}))}


def test_forgetting_by_email_finds_the_person_posted_by_phone_too_before_any_worker_linked_them(tmp_path, monkeypatch):
    """An outside probe: a worker stopped, Jay signed up with phone and email, then forgotten by
    email: the workers had not linked the two yet, so the request named the email's key alone; the
    person's record, under the phone's key, and its data key survived, and Jay was emailed. The web
    app reads the events it accepted (the door's reader): an event naming both links them there."""
    import asyncio

    import connectors.web.people as people
    from connectors.web.door.directory import Directory
    from connectors.web.door.reader import apply_record
    from connectors.web.ingress import envelopes
    from streams.data_keys import MemoryDataKeys
    from tests.factories import signup

    monkeypatch.setattr(people, "KafkaErasureReports", lambda s: NoReports())
    monkeypatch.setattr(people, "KafkaIdentityLinks", lambda s: Links())  # no worker has linked anyone
    s = Settings(coalition=tmp_path / "c.toml", organizer_token=SecretStr("t"), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092", partitions=4)
    keys, directory = MemoryDataKeys(), Directory(b"k", b"ref", open=lambda name, value: value)
    records, _ = asyncio.run(envelopes([signup("s1", phone="+15105550183", email="jay@example.org", given_name="Jay")], "union-a",
                                       datetime.now(timezone.utc), b"k", "US", keys))
    assert records
    for key, value in records:
        assert apply_record(directory, key, value)
    pub = ListPublisher()
    client = TestClient(create_app(s, publisher=pub, book=TallyBook(), data_keys=keys, directory=directory))
    r = client.post("/v1/people/forget", json={"email": "jay@example.org"}, headers={"Authorization": "Bearer t"})
    assert r.status_code == 202 and r.json()["data_keys_erased"] == 1, r.json()
    phone, email = person_key(b"k", "+15105550183", None), person_key(b"k", None, "jay@example.org")
    assert {ForgetPerson.model_validate_json(v).contact_keys for _, v in pub.records} == {tuple(sorted({phone, email}))}


def test_a_worker_forgets_the_person_and_the_identities_and_asks_of_everyone_merged_into_them():
    import asyncio

    from agents.erasure import forget
    from contracts.facts import PersonRecord
    from tests.cluster import SECRET, Cluster
    from tests.factories import signup

    c = Cluster()
    for partner, item, minute in (("union-a", signup("a1", phone="+15105550123"), 0), ("faith-b", signup("b1", email="ana@example.org"), 1),
                                  ("faith-b", signup("b2", phone="+15105550123", email="ana@example.org"), 2),
                                  ("union-a", signup("a2", phone="+15105550124", email="ben@example.org"), 3)):
        c.post(partner, item, AT.replace(minute=minute))
    asyncio.run(c.run())
    phone, email = person_key(SECRET, "+15105550123", None), person_key(SECRET, None, "ana@example.org")
    part = partition_of(email, c.n)
    c.nodes[part].asks.put(part, ask_id("rally-1", email, "email"), ask(status="failed", error="550 <ana@example.org>").model_copy(
        update={"ask_id": ask_id("rally-1", email, "email"), "person_key": email}))  # emailed before the merge
    assert len(c.table("identities")) == 4 and len(c.table("people")) == 2
    from contracts.identity import linked_keys

    keys = tuple(sorted(linked_keys({k: v["person"] for k, v in c.table("identities").items()}, email)))
    cmd = ForgetPerson(request_id="r1", requested_at=AT, contact_keys=keys)
    reports = [forget(node, n, cmd, SECRET, AT) for n, node in enumerate(c.nodes)]
    assert sum(r.people_removed for r in reports) == 1
    assert [PersonRecord.model_validate(v).email for v in c.table("people").values()] == ["ben@example.org"]
    # Ben's entries, and the link of Ana's email to the person it was merged into (keyed hashes, as the merge record).
    kept = {k: v["person"] for k, v in c.table("identities").items()}
    assert kept == {person_key(SECRET, "+15105550124", None): person_key(SECRET, "+15105550124", None),
                    person_key(SECRET, None, "ben@example.org"): person_key(SECRET, "+15105550124", None), email: phone}
    assert c.table("asks")[ask_id("rally-1", email, "email")]["error"] == "(removed on erasure)"
    assert set(c.table("memberships")) == {f"union-a|{phone}", f"faith-b|{phone}", f"union-a|{person_key(SECRET, '+15105550124', None)}"}


def test_an_answer_from_the_rsvp_link_of_a_forgotten_person_writes_nothing():
    # The link in a text sent before the erasure still opens: an answer from it wrote a new fact
    # about the forgotten person (an RSVP under their person key), after we said they were gone.
    import asyncio

    from agents.erasure import forget
    from connectors.web.pages.opening import Opened, rsvp_record
    from contracts.events import ActionEvent
    from streams import links
    from tests.cluster import SECRET, Cluster
    from tests.factories import action, signup

    c = Cluster()
    c.post("union-a", signup("a1", phone="+15105550123"), AT)
    asyncio.run(c.run())
    ana = person_key(SECRET, "+15105550123", None)

    def answer(action_id: str, status: str, minute: int) -> None:  # what the RSVP page writes
        opened = Opened(links.Link(action_id, ana, "sms", "en"), ActionEvent.model_validate(action(action_id)), "union-a")
        key, value = rsvp_record(opened, status, AT.replace(minute=minute))
        c.enqueue("events", key.decode(), value)
        asyncio.run(c.run())

    answer("rally-1", "yes", 1)
    answer("rally-1", "maybe", 2)
    assert c.table("attendance")[f"rally-1|{ana}"]["rsvp"] == "maybe"
    for n, node in enumerate(c.nodes):
        forget(node, n, ForgetPerson(request_id="r1", requested_at=AT, contact_keys=(ana,)), SECRET, AT)
    answer("rally-1", "no", 3)
    answer("rally-2", "yes", 4)
    assert c.table("attendance")[f"rally-1|{ana}"]["rsvp"] == "maybe"  # counted before, as every fact is kept
    assert f"rally-2|{ana}" not in c.table("attendance")


def test_an_opt_out_outlives_the_erasure_of_the_person_who_made_it():
    """Forgotten on request, a person's "stop" went with their record: a partner re-posting its
    old sheet signed them up again and they were texted and emailed (an outside probe). What stays
    is a record under each of their keys (keyed hashes) with the channels they stopped, and no
    name, phone or email: a later sign-up by either finds it."""
    import asyncio

    from agents.erasure import forget
    from agents.outreach.agents import Outreach
    from agents.outreach.callbacks import receive
    from agents.outreach.planning import OutreachPolicy
    from contracts.identity import linked_keys
    from contracts.providers import ProviderEnvelope
    from tests.cluster import SECRET, Cluster
    from tests.factories import signup

    c = Cluster()
    outreach = Outreach(outbox=None, policy=OutreachPolicy(), clock=lambda: AT, partitions=c.n)

    async def on_provider(p, part, key, raw):
        receive(p, outreach, part, ProviderEnvelope.model_validate_json(raw))

    c.on_provider = on_provider
    ana = signup("a1", phone="+15105550123", email="ana@example.org", given_name="Ana")
    stop = {"type": "opt_out", "event_id": "o1", "occurred_at": "2026-11-22T15:00:00Z", "person": {"phone": "+15105550123"}, "channels": ["sms", "email"]}
    c.post("union-a", ana, AT)
    c.post("faith-b", stop, AT.replace(minute=1))
    asyncio.run(c.run())
    phone, email = person_key(SECRET, "+15105550123", None), person_key(SECRET, None, "ana@example.org")
    keys = tuple(sorted(linked_keys({k: v["person"] for k, v in c.table("identities").items()}, phone)))
    assert set(keys) == {phone, email}
    cmd = ForgetPerson(request_id="r1", requested_at=AT.replace(minute=2), contact_keys=keys)
    assert sum(forget(node, n, cmd, SECRET, AT.replace(minute=2)).people_removed for n, node in enumerate(c.nodes)) == 1
    for node in c.nodes:
        c._collect(node)  # what the erasures wrote to the provider topic, delivered as a worker's would be
    asyncio.run(c.run())
    for key in (phone, email):  # the email's entry links it to the person keyed by the phone: its stop is there
        kept = PersonRecord.model_validate(c.table("people")[c.person_of(key)])
        assert set(kept.opted_out) == {"sms", "email"} and (kept.phone, kept.email, kept.given_name, kept.partners) == (None, None, None, ()), key
    # Asked again to forget them: nobody is left to remove, and the opt-outs stay.
    again = ForgetPerson(request_id="r2", requested_at=AT.replace(minute=3), contact_keys=keys)
    assert sum(forget(node, n, again, SECRET, AT.replace(minute=3)).people_removed for n, node in enumerate(c.nodes)) == 0
    for node in c.nodes:
        c._collect(node)
    asyncio.run(c.run())
    # Signed up again, by email alone and by phone alone: opted out both ways.
    c.post("union-a", signup("a2", email="ana@example.org", given_name="Ana"), AT.replace(minute=4))
    c.post("union-a", signup("a3", phone="+15105550123", given_name="Ana"), AT.replace(minute=5))
    asyncio.run(c.run())
    for key in (phone, email):
        person = PersonRecord.model_validate(c.table("people")[c.person_of(key)])
        assert set(person.opted_out) == {"sms", "email"} and person.partners == ("union-a",), key


def test_a_forgotten_merged_person_posted_again_by_one_identifier_is_the_same_person_facts_included():
    """Quinn was known by email, then by phone (with an RSVP), then the two were merged. Forgotten,
    the retry of the phone's RSVP made a second person of the phone, who counted a second time
    (an outside probe: unique RSVP yes 2 → 3). What links the phone to the survivor stays, as the
    merge record stays: keyed hashes only."""
    import asyncio

    from agents.erasure import forget
    from contracts.identity import linked_keys
    from tests.cluster import SECRET, Cluster
    from tests.factories import rsvp, signup

    c = Cluster()
    answer = rsvp("g-r3", "rally-1", "yes", phone="+15105550143")
    for partner, item, minute in (("union-a", signup("u1", email="quinn@example.org"), 0), ("grace", signup("g1", phone="+15105550143"), 1),
                                  ("grace", answer, 2), ("hub", signup("h1", phone="+15105550143", email="quinn@example.org"), 3)):
        c.post(partner, item, AT.replace(minute=minute))
    asyncio.run(c.run())
    yes = lambda: [k for k, v in c.table("attendance").items() if v["rsvp"] == "yes"]  # noqa: E731
    assert len(yes()) == 1 and len(c.table("people")) == 1  # merged: one person, one RSVP
    phone = person_key(SECRET, "+15105550143", None)
    keys = tuple(sorted(linked_keys({k: v["person"] for k, v in c.table("identities").items()}, phone)))
    cmd = ForgetPerson(request_id="r1", requested_at=AT, contact_keys=keys)
    assert sum(forget(node, n, cmd, SECRET, AT.replace(minute=4)).people_removed for n, node in enumerate(c.nodes)) == 1
    asyncio.run(c.run())
    c.post("grace", answer, AT.replace(minute=5))  # the RSVP posted again: a retry
    asyncio.run(c.run())
    assert len(yes()) == 1, c.table("attendance")
    c.post("grace", signup("g2", phone="+15105550143", given_name="Quinn"), AT.replace(minute=6))  # signed up again
    asyncio.run(c.run())
    assert [c.person_of(k.partition("|")[2]) for k in yes()] == [c.person_of(phone)]  # their RSVP is theirs again


def test_an_erasure_the_broker_cannot_answer_is_a_503_to_retry_and_writes_nothing(tmp_path, monkeypatch):
    # An outside probe: with the broker frozen, the identity read's failure to bootstrap came out
    # as a 500 "internal error" after 40 s, saying neither "retry" nor whether anything was done.
    import time

    import connectors.web.people as people

    monkeypatch.setattr(people, "KafkaErasureReports", lambda s: NoReports())
    s = Settings(coalition=tmp_path / "c.toml", organizer_token=SecretStr("t"), person_key_secret=SecretStr("k"),
                 kafka_bootstrap_servers="127.0.0.1:9", partitions=4)  # nothing listens there
    pub = ListPublisher()
    client = TestClient(create_app(s, publisher=pub, book=TallyBook()))
    started = time.monotonic()
    r = client.post("/v1/people/forget", json={"email": "ana@example.org"}, headers={"Authorization": "Bearer t"})
    assert r.status_code == 503 and r.headers["retry-after"] and "broker" in r.json()["detail"]
    assert time.monotonic() - started < 30 and pub.records == []


def test_reading_the_identity_links_from_a_broker_that_answers_nothing_gives_up_in_time(tmp_path, monkeypatch):
    # The probe's frozen broker: nothing refuses, nothing answers (a bootstrap waits 40 s).
    import asyncio

    import connectors.web.people as people
    from connectors.web.publisher import BrokerUnavailable

    async def never(*args):
        await asyncio.Event().wait()

    monkeypatch.setattr(people, "carried_out", never)
    s = Settings(coalition=tmp_path / "c.toml", person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    with pytest.raises(BrokerUnavailable, match="did not answer in time"):
        asyncio.run(people.KafkaIdentityLinks(s, timeout=0.1).entries())
