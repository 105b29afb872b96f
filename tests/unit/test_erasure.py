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


def test_the_endpoint_needs_the_organizer_writes_hashes_only_and_says_when_it_is_not_done(tmp_path, monkeypatch):
    import connectors.web.people as people

    monkeypatch.setattr(people, "KafkaErasureReports", lambda s: NoReports())
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
