"""The OpenAPI document tells the truth: its examples validate and are accepted, every route
that needs credentials declares them, and every error it documents has the one error body."""

import json
import time

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.signing import headers
from connectors.web.app import create_app
from connectors.web.publisher import ListPublisher
from contracts.tallies import TallyBook
from streams.coalition import add_partner
from streams.settings import Settings

PUBLIC = {"/healthz", "/v1/partners/{partner_id}/action-network/{token}"}  # the latter's secret is in its URL


@pytest.fixture
def env(tmp_path):
    path = tmp_path / "coalition.toml"
    secret = add_partner(path, "union-a", "Union A", "union").secret.get_secret_value()
    s = Settings(coalition=path, organizer_token=SecretStr("t"), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    publisher = ListPublisher()
    client = TestClient(create_app(s, publisher=publisher, book=TallyBook()))
    return client, client.get("/openapi.json").json(), secret, publisher


def operations(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_every_request_example_validates_against_its_schema(env):
    _, document, *_ = env
    found = 0
    for path, method, op in operations(document):
        for media in op.get("requestBody", {}).get("content", {}).values():
            schema = {**media["schema"], "components": document["components"]}
            for example in media.get("examples", {}).values():
                jsonschema_rs.validator_for(schema).validate(example["value"])
                found += 1
    assert found >= 5


def test_a_batch_is_not_an_event_even_to_a_validator_that_skips_the_union(env):
    """Redocly checks an example against the event union by its discriminator alone; the union
    itself must say an event is an object, or the batch example (an array) matches both of the
    request body's branches and is reported ambiguous."""
    _, document, *_ = env
    union = document["components"]["schemas"]["PartnerEvent"]
    loose = {k: v for k, v in union.items() if k not in ("oneOf", "discriminator")}
    assert not jsonschema_rs.validator_for(loose).is_valid([{"type": "signup"}])
    assert jsonschema_rs.validator_for(loose).is_valid({"type": "signup"})


def test_an_event_without_its_type_is_refused_by_the_schema_as_by_the_api(env):
    """Every event type requires ``type`` in the document: the API cannot tell the model without it."""
    client, document, secret, publisher = env
    event = {"event_id": "u-1", "occurred_at": "2026-11-22T15:00:00Z", "person": {"phone": "+15105550100"}}
    schema = {"$ref": "#/components/schemas/PartnerEvent", "components": document["components"]}
    assert jsonschema_rs.validator_for(schema).is_valid({**event, "type": "signup"})
    assert not jsonschema_rs.validator_for(schema).is_valid(event)
    body = json.dumps([event]).encode()
    r = client.post("/v1/events", content=body, headers=headers("union-a", secret, body, time.time()))
    assert r.status_code == 422 and publisher.records == [], r.text


def test_the_document_names_its_license_and_every_component_is_at_the_top(env):
    _, document, *_ = env
    assert document["info"]["license"]["identifier"] == "AGPL-3.0-or-later"
    assert all("$defs" not in schema for schema in document["components"]["schemas"].values())
    assert "#/components/schemas/FieldError" in json.dumps(document["components"]["schemas"]["ErrorBody"])
    assert "FieldError" in document["components"]["schemas"]


def test_the_event_examples_are_accepted_whole(env):
    client, document, secret, publisher = env
    examples = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    for example in examples.values():
        body = json.dumps(example["value"]).encode()
        r = client.post("/v1/events", content=body, headers=headers("union-a", secret, body, time.time()))
        assert r.status_code == 202 and r.json()["rejected"] == [], r.text
    assert len(publisher.records) == 6  # the batch of four, the action, the opt-out


def test_every_route_but_the_public_ones_declares_its_credentials(env):
    _, document, *_ = env
    schemes = document["components"]["securitySchemes"]
    for path, method, op in operations(document):
        if path in PUBLIC:
            assert op["security"] == [], (method, path)  # public, and says so
            continue
        assert op.get("security"), (method, path)
        assert all(name in schemes for requirement in op["security"] for name in requirement)
        assert {"401", "403"} & set(op["responses"]), (method, path)


def test_every_documented_error_is_the_error_body(env):
    _, document, *_ = env
    for path, method, op in operations(document):
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")) and path != "/healthz":  # its 503 is a health report, not a refusal
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith(("/ErrorBody", "/IngestRefusal")), (method, path, status)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_the_event_stream_is_documented_as_what_it_answers(env):
    """``/dashboard/events`` answers Server-Sent Events, not JSON, and each event is what the
    document's schema says (before OpenAPI 3.2, a ``text/event-stream`` schema is per event)."""
    client, document, *_ = env
    documented = document["paths"]["/dashboard/events"]["get"]["responses"]["200"]["content"]
    assert list(documented) == ["text/event-stream"]
    with client.stream("GET", "/dashboard/events", headers={"Authorization": "Bearer t"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].split(";")[0] == "text/event-stream"
        first = first_event(r.iter_lines())
    assert first["event"] == "view" and json.loads(first["data"])["viewer"]["role"] == "organizer"
    jsonschema_rs.validator_for(documented["text/event-stream"]["schema"]).validate(first)


def first_event(lines) -> dict:
    """The stream's first event as its fields, ``retry`` a number, as a validator reads it."""
    fields: dict = {}
    for line in lines:
        if not line and fields:
            return fields
        name, _, value = line.partition(":")
        if name:
            fields[name] = int(value) if name == "retry" else value.removeprefix(" ")
    raise AssertionError("the stream ended before its first event")


@pytest.mark.parametrize("withdrawal, valid", [
    ({"person": {"phone": "+15105550100"}}, True),
    ({"person": {"email": "ana@example.org"}}, True),
    ({"person": {"phone": "+15105550100", "email": "ana@example.org"}}, False),
    ({"person": {"phone": "+15105550100", "given_name": "Ana"}}, False),
    ({"person": {"phone": "+15105550100", "email": None}}, False),
    ({"person": {"phone": "+15105550100"}, "consent": {"sms": False}}, False),
])
def test_a_withdrawn_checkin_is_refused_by_the_schema_as_by_the_api(env, withdrawal, valid):
    """The withdrawal's rules are in the document too (an outside probe: a partner's validator
    passed what the API refused)."""
    client, document, secret, publisher = env
    event = {"type": "checkin", "event_id": "w-1", "occurred_at": "2026-11-22T15:00:00Z", "action_id": "rally-1", "withdrawn": True, **withdrawal}
    schema = {"$ref": "#/components/schemas/PartnerEvent", "components": document["components"]}
    assert jsonschema_rs.validator_for(schema).is_valid(event) == valid
    body = json.dumps([event]).encode()
    r = client.post("/v1/events", content=body, headers=headers("union-a", secret, body, time.time()))
    assert (r.status_code == 202) == valid, r.text


@pytest.mark.parametrize("person, valid", [
    ({"language": " en"}, True),
    ({"language": "en\n"}, True),
    ({"postal_code": " 94607"}, True),
    ({"postal_code": "94607\t"}, True),
    ({"language": "e n"}, False),
    ({"postal_code": "#94607"}, False),
])
def test_what_the_api_trims_the_schema_takes_and_what_it_refuses_the_schema_refuses(env, person, valid):
    """A person's language and postal code are trimmed by the API: the schema must not refuse
    them padded (an outside probe with a third-party validator: " en" refused by the schema,
    accepted by the API)."""
    client, document, secret, publisher = env
    event = {"type": "signup", "event_id": "s-1", "occurred_at": "2026-11-22T15:00:00Z", "person": {"phone": "+15105550100", **person}}
    schema = {"$ref": "#/components/schemas/PartnerEvent", "components": document["components"]}
    assert jsonschema_rs.validator_for(schema).is_valid(event) == valid
    body = json.dumps([event]).encode()
    r = client.post("/v1/events", content=body, headers=headers("union-a", secret, body, time.time()))
    assert (r.status_code == 202) == valid, r.text
