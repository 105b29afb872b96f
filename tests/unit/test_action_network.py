"""Action Network webhooks: the OSDI mapping (pure) and the partner URL (no broker)."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings, strategies as st
from pydantic import SecretStr

from connectors.action_network import translate
from connectors.web.app import create_app
from connectors.web.publisher import ListPublisher
from contracts.events import Envelope, partner_event
from contracts.tallies import TallyBook
from streams.coalition import add_partner, load, map_action_network_event, rotate_action_network_token
from streams.settings import Settings
from streams.topology import dead_letter_topic

FIXTURES = Path(__file__).parents[1] / "fixtures" / "action_network"
EVENT = "https://actionnetwork.org/api/v2/events/d91b4b2e-6c3a-4f5e-8d7c-9b0a1f2e3d4c"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def test_submissions_and_signatures_are_signups_with_consent_from_address_statuses():
    events, rejected = translate(fixture("submission.json"), {})
    assert rejected == []
    (_, ana), (_, ben) = [(i, e) for i, e in events if e["type"] == "signup"]
    assert ana["type"] == "signup" and ana["event_id"] == "an-8d4e6f0a2b1c3d5e7f9a0b2c4d6e8f01"
    assert ana["person"] == {"given_name": "Ana", "family_name": "Diaz", "email": "ana.diaz@example.org", "phone": "15105550123", "postal_code": "94607", "language": "es"}
    assert ana["consent"]["email"]["granted"] and ana["consent"]["sms"]["granted"]
    assert ben["consent"]["email"]["granted"] is False and ben["consent"]["sms"]["granted"] is False
    for _, e in events:
        partner_event.validate_python(e)


def test_an_address_stopped_at_action_network_is_passed_on_as_an_opt_out():
    # Ben unsubscribed his email at Action Network: his sign-up grants no consent, and turnout
    # must also stop the email another partner's consent would still allow (an outside probe).
    events, rejected = translate(fixture("submission.json"), {})
    assert rejected == []
    assert [e["type"] for _, e in events] == ["signup", "signup", "opt_out"]
    index, stop = events[2]
    assert index == 1 and stop["person"] == {"email": "Ben.Okafor@example.org"} and stop["channels"] == ["email"]
    assert stop["event_id"] != events[1][1]["event_id"] and stop["occurred_at"] == events[1][1]["occurred_at"]
    partner_event.validate_python(stop)
    # Every address stopped there, primary or not, and each channel as its own event; a bounce is
    # not an opt-out, and a subscribed address stops nothing.
    person = {"email_addresses": [{"address": "a@example.org", "primary": True, "status": "subscribed"},
                                  {"address": "old@example.org", "status": "Spam Complaint"},
                                  {"address": "gone@example.org", "status": "bouncing"}],
              "phone_numbers": [{"number": "15105550123", "status": "unsubscribed"}]}
    events, rejected = translate([{"idempotency_key": "k" * 120, "osdi:submission": {"created_date": "2026-11-20T10:00:00Z", "person": person}}], {})
    assert rejected == [] and [e["type"] for _, e in events] == ["signup", "opt_out", "opt_out"]
    assert [(e["person"], e["channels"]) for _, e in events[1:]] == [({"email": "old@example.org"}, ["email"]), ({"phone": "15105550123"}, ["sms"])]
    assert len({e["event_id"] for _, e in events}) == 3
    for _, e in events:
        partner_event.validate_python(e)
    # The same item delivered again gives the same events (Action Network redelivers).
    again, _ = translate([{"idempotency_key": "k" * 120, "osdi:submission": {"created_date": "2026-11-20T10:00:00Z", "person": person}}], {})
    assert again == events


def test_an_optional_field_turnout_cannot_use_does_not_lose_the_sign_up():
    # A language written as a name, or a primary email entry with no address before a usable one:
    # the whole sign-up was refused, consent included, for want of an optional field.
    person = {"given_name": "Ana", "languages_spoken": ["Spanish"],
              "email_addresses": [{"primary": True, "status": "subscribed"}, {"address": "ana@example.org", "status": "subscribed"}]}
    events, rejected = translate([{"idempotency_key": "k1", "osdi:submission": {"created_date": "2026-11-20T10:00:00Z", "person": person}}], {})
    assert rejected == []
    [(_, ana)] = events
    assert ana["person"] == {"given_name": "Ana", "email": "ana@example.org", "language": "es"} and ana["consent"]["email"]["granted"]
    for spoken, tag in ((["English"], "en"), (["Español"], "es"), (["es-MX"], "es-MX"), (["Klingon"], None), ([5], None), ("en", None)):
        person = {"email_addresses": [{"address": "ana@example.org"}], "languages_spoken": spoken}
        events, rejected = translate([{"idempotency_key": "k2", "osdi:submission": {"created_date": "2026-11-20T10:00:00Z", "person": person}}], {})
        assert rejected == [] and events[0][1]["person"].get("language") == tag, spoken
        partner_event.validate_python(events[0][1])


def test_attendances_are_rsvps_for_the_mapped_action_whether_mapped_by_id_or_url():
    for key in (EVENT, EVENT.rsplit("/", 1)[1]):
        events, rejected = translate(fixture("attendance.json"), {key: "rally-1201"})
        assert rejected == [] and events[0][1]["action_id"] == "rally-1201" and events[0][1]["status"] == "yes"
        # The attendance carries the person and consent, so it can introduce someone nobody signed up.
        assert events[0][1]["person"] == {"given_name": "Ana", "family_name": "Diaz", "email": "ana.diaz@example.org",
                                          "phone": "15105550123", "postal_code": "94607"}
        assert events[0][1]["consent"]["sms"]["granted"] and events[0][1]["consent"]["email"]["granted"]
        assert partner_event.validate_python(events[0][1]).introduces


def test_a_reason_quotes_a_long_event_link_cut_short():
    """An outside probe posted a 100,000-letter event link: the reason (answered, dead-lettered,
    logged) quoted it whole. Now its first 200 characters and an ellipsis."""
    link = "https://actionnetwork.org/api/v2/events/" + "x" * 100_000
    item = {"idempotency_key": "k", "osdi:attendance": {"created_date": "2026-11-20T10:00:00Z", "person": {"email_addresses": [{"address": "a@example.org"}]},
                                                      "_links": {"osdi:event": {"href": link}}}}
    [rejected] = translate([item], {})[1]
    assert rejected.reason.startswith(f"no turnout action is mapped to Action Network event '{link[:200]}…'") and len(rejected.reason) < 300


def test_unknown_types_unmapped_events_and_malformed_items_are_rejected_with_reasons():
    events, rejected = translate(fixture("mixed.json") + ["nonsense", {"idempotency_key": "x"}], {})
    assert [i for i, _ in events] == [3]
    reasons = {r.index: r.reason for r in rejected}
    assert "action_network:action is not something turnout takes" in reasons[0]
    assert "osdi:outreach" in reasons[1]
    assert "no turnout action is mapped" in reasons[2]
    assert reasons[4] == "not an object" and "expected one resource" in reasons[5]
    # Each says what is wrong, not something else (an outside probe: "idempotency_key is missing"
    # for a number, "event None" for no link, a bad date blamed on consent fields never sent).
    person = {"email_addresses": [{"address": "a@example.org"}]}
    said = [translate([item], {EVENT: "rally-1201"})[1][0].reason for item in (
        {"idempotency_key": 5, "osdi:submission": {"created_date": "2026-11-20T10:00:00Z", "person": person}},
        {"idempotency_key": "k", "osdi:attendance": {"created_date": "2026-11-20T10:00:00Z", "person": person, "_links": None}},
        {"idempotency_key": "k", "osdi:submission": {"created_date": 17, "person": person}})]
    assert said == ["idempotency_key must be a string, not 5", "the attendance has no osdi:event link: which event is it for?",
                    "created_date must be a date and time (ISO 8601), not 17"]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
KEYS = st.sampled_from(["idempotency_key", "osdi:submission", "osdi:attendance", "person", "email_addresses", "phone_numbers",
                        "postal_addresses", "languages_spoken", "_links", "osdi:event", "href", "status", "created_date", "address", "number"])
SHAPED = st.recursive(JSON, lambda inner: st.dictionaries(KEYS, inner, max_size=5), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(st.lists(SHAPED, max_size=3))
def test_any_json_is_translated_or_rejected_with_a_reason_never_an_exception(items):
    events, rejected = translate(items, {"e1": "rally-1"})
    assert sorted([i for i, _ in events] + [r.index for r in rejected]) == list(range(len(items)))
    assert all(r.reason for r in rejected)


@pytest.fixture
def env(tmp_path):
    path = tmp_path / "coalition.toml"
    add_partner(path, "union-a", "Union A", "union")
    add_partner(path, "faith-b", "Faith B", "faith")
    token = rotate_action_network_token(path, "union-a")
    map_action_network_event(path, "union-a", EVENT, "rally-1201")
    s = Settings(coalition=path, organizer_token=SecretStr("t"), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    publisher = ListPublisher()
    return TestClient(create_app(s, publisher=publisher, book=TallyBook())), publisher, token, s


def test_only_the_hash_of_the_token_is_stored_and_rotation_replaces_it(env, tmp_path):
    client, pub, token, s = env
    text = s.coalition.read_text()
    assert token not in text and load(s.coalition).get("union-a").action_network.actions == {"d91b4b2e-6c3a-4f5e-8d7c-9b0a1f2e3d4c": "rally-1201"}
    new = rotate_action_network_token(s.coalition, "union-a")
    assert client.post(f"/v1/partners/union-a/action-network/{token}", json=fixture("submission.json")).status_code == 404
    assert client.post(f"/v1/partners/union-a/action-network/{new}", json=fixture("submission.json")).status_code == 200


def test_the_partner_url_writes_events_as_that_partner(env):
    client, pub, token, _ = env
    r = client.post(f"/v1/partners/union-a/action-network/{token}", json=fixture("submission.json") + fixture("attendance.json"))
    assert r.status_code == 200 and r.json() == {"accepted": 4, "duplicates": 0, "rejected": []}
    envs = [Envelope.model_validate_json(v, context={"normalized": True}) for _, v in pub.records]
    assert {e.partner for e in envs} == {"union-a"} and [e.event.type for e in envs] == ["signup", "signup", "opt_out", "rsvp"]
    assert envs[0].person_key == envs[3].person_key  # the RSVP is the same person
    assert envs[2].person_key == envs[1].person_key  # Ben's unsubscribed email: his own key, stopped


def test_every_rsvp_of_a_batch_passes_its_stopped_address_on(env):
    # Two attendances in one delivery, each with an unsubscribed email: the second one's opt-out
    # took the first one's event id (made from the Action Network event, not the item), was
    # refused as a repeat id, and only dead-lettered while Action Network got 200 (an outside probe).
    client, pub, token, _ = env
    [ana] = fixture("attendance.json")
    items = []
    for i, address in enumerate(("ann1@example.org", "bob2@example.org")):
        person = {**ana["osdi:attendance"]["person"], "email_addresses": [{"primary": True, "address": address, "status": "unsubscribed"}],
                  "phone_numbers": [{"primary": True, "number": f"1510555012{i}", "status": "subscribed"}]}
        items.append({**ana, "idempotency_key": f"k2{i}", "osdi:attendance": {**ana["osdi:attendance"], "person": person}})
    r = client.post(f"/v1/partners/union-a/action-network/{token}", json=items)
    assert r.status_code == 200 and r.json() == {"accepted": 4, "duplicates": 0, "rejected": []}
    envs = [Envelope.model_validate_json(v, context={"normalized": True}) for _, v in pub.records]
    assert sorted(e.event.type for e in envs) == ["opt_out", "opt_out", "rsvp", "rsvp"]


@pytest.mark.parametrize("partner, token", [("union-a", "wrong"), ("faith-b", None), ("nobody", None), ("union-a", "")])
def test_wrong_token_or_partner_is_404_and_writes_nothing(env, partner, token):
    client, pub, good, _ = env
    url = f"/v1/partners/{partner}/action-network/{good if token is None else token}"
    r = client.post(url, json=fixture("submission.json"))
    assert r.status_code in (404, 405) and pub.by_topic == {}


def test_unusable_items_are_answered_200_and_kept_as_dead_letters(env):
    client, pub, token, s = env
    r = client.post(f"/v1/partners/union-a/action-network/{token}", json=fixture("mixed.json"))
    assert r.status_code == 200
    assert r.json()["accepted"] == 1 and [x["index"] for x in r.json()["rejected"]] == [0, 1, 2]
    letters = [json.loads(v) for _, v in pub.by_topic[dead_letter_topic(s)]]
    assert [(x["source"], x["partner"], x["index"]) for x in letters] == [("action-network", "union-a", i) for i in (0, 1, 2)]
    bad = client.post(f"/v1/partners/union-a/action-network/{token}", content=b"not json")
    assert bad.status_code == 400


def test_a_dead_letter_keeps_no_custom_field_a_partner_asked_for(env):
    # Action Network custom fields are the partner's own questions ("cell", "notes"): free text,
    # often a phone number without separators, which nothing else would recognise as one.
    client, pub, token, s = env
    person = {"email_addresses": [{"address": "a@example.org", "primary": True}],
              "custom_fields": {"cell": "5105550177", "notes": "call after 6, 5105550178"}}
    item = {"idempotency_key": "k", "osdi:attendance": {"created_date": "2026-11-20T10:00:00Z", "person": person,
                                                         "_links": {"osdi:event": {"href": "https://actionnetwork.org/api/v2/events/unmapped"}}}}
    long = {**item, "osdi:attendance": {**item["osdi:attendance"], "comment": "x" * 70_000}}  # too long to read whole as JSON
    r = client.post(f"/v1/partners/union-a/action-network/{token}", json=[item, long])
    assert r.status_code == 200 and r.json()["accepted"] == 0
    letters = [letter for _, letter in pub.by_topic[dead_letter_topic(s)]]
    assert len(letters) == 2
    for letter in letters:
        assert b"custom_fields" in letter and b"555017" not in letter and b"a@example.org" not in letter


@pytest.mark.parametrize("item", [
    {"idempotency_key": "k", "osdi:submission": {"person": {"email_addresses": 5}}},
    {"idempotency_key": "k", "osdi:attendance": {"person": {"email_addresses": []}, "_links": ["osdi:event"]}},
    {"idempotency_key": "k\ud800", "osdi:submission": {"person": {"email_addresses": [{"address": "a@example.org"}]}}},
    # A status that is not a word is not read as "yes".
    {"idempotency_key": "k", "osdi:attendance": {"status": 5, "created_date": "2026-11-20T10:00:00Z", "_links": {"osdi:event": {"href": EVENT}},
                                                  "person": {"email_addresses": [{"address": "a@example.org", "primary": True}]}}},
])
def test_malformed_items_are_answered_200_and_dead_lettered_not_a_500(env, item):
    client, pub, token, s = env
    r = client.post(f"/v1/partners/union-a/action-network/{token}", content=json.dumps([item]).encode())
    assert r.status_code == 200 and r.json()["accepted"] == 0 and len(r.json()["rejected"]) == 1
    assert len(pub.by_topic[dead_letter_topic(s)]) == 1 and pub.records == []


def test_an_item_refused_with_its_opt_out_is_one_rejection_and_one_dead_letter(env):
    client, pub, token, s = env
    person = {"email_addresses": [{"address": "not-an-email", "primary": True, "status": "unsubscribed"}]}
    item = {"idempotency_key": "k", "osdi:submission": {"created_date": "2026-11-20T10:00:00Z", "person": person}}
    r = client.post(f"/v1/partners/union-a/action-network/{token}", json=[item])
    assert r.status_code == 200 and r.json()["accepted"] == 0
    [rejection] = r.json()["rejected"]
    assert rejection["index"] == 0 and rejection["reason"].count("person.email:") == 1
    assert len(pub.by_topic[dead_letter_topic(s)]) == 1 and pub.records == []


def test_an_rsvp_whose_phone_turnout_refuses_is_written_without_it_when_its_email_names_the_person(env):
    """An outside probe (of the Mobilize connector, the same here): a phone with letters lost
    the whole RSVP, which Action Network never sends again."""
    client, pub, token, s = env
    [ana] = fixture("attendance.json")
    person = {**ana["osdi:attendance"]["person"], "phone_numbers": [{"primary": True, "number": "510-555-CALL", "status": "subscribed"}]}
    item = {**ana, "osdi:attendance": {**ana["osdi:attendance"], "person": person}}
    r = client.post(f"/v1/partners/union-a/action-network/{token}", json=[item])
    assert r.status_code == 200 and r.json()["accepted"] == 1
    [rsvp] = [Envelope.model_validate_json(v, context={"normalized": True}) for _, v in pub.records]
    assert rsvp.event.type == "rsvp" and rsvp.event.person.phone is None and rsvp.event.person.email and not rsvp.event.consent.sms.granted
    [rejection] = r.json()["rejected"]
    assert "person.phone" in rejection["reason"] and rejection["reason"].endswith("(written without it)")
    [(_, letter)] = pub.by_topic[dead_letter_topic(s)]
    assert b"(written without it)" in letter and b"CALL" not in letter


def test_an_item_with_deeply_nested_content_turnout_does_not_read_is_answered_200(env):
    """An outside probe: an unknown field nested 40 deep (past the signed API's 32) refused the
    whole delivery with a 400, and Action Network does not retry; its neighbour was lost."""
    client, pub, token, s = env
    person = {"email_addresses": [{"address": "a@example.org", "primary": True}], "x": json.loads("[" * 40 + "1" + "]" * 40)}
    item = {"idempotency_key": "k10", "osdi:submission": {"created_date": "2026-11-20T10:00:00Z", "person": person}}
    r = client.post(f"/v1/partners/union-a/action-network/{token}", json=[item, {"idempotency_key": "k11", "osdi:nothing": {}}])
    assert r.status_code == 200 and r.json()["accepted"] == 1 and [x["index"] for x in r.json()["rejected"]] == [1], r.text
    assert len(pub.records) == 1 and len(pub.by_topic[dead_letter_topic(s)]) == 1


def test_a_body_nested_past_the_limit_is_a_400(env):
    client, pub, token, _ = env
    assert client.post(f"/v1/partners/union-a/action-network/{token}", content=b"[" * 5000 + b"]" * 5000).status_code == 400
    assert pub.by_topic == {}


@pytest.mark.parametrize("href", ["https://evil.example/whatever/d91b4b2e-6c3a-4f5e-8d7c-9b0a1f2e3d4c",
                                  "https://evilactionnetwork.org/api/v2/events/d91b4b2e-6c3a-4f5e-8d7c-9b0a1f2e3d4c"])
def test_an_attendance_for_an_event_on_another_host_is_not_the_mapped_event(href):
    # An outside probe: the last path segment alone was matched, on any host.
    item = fixture("attendance.json")[0]
    resource = item["osdi:attendance"]
    moved = {**item, "osdi:attendance": {**resource, "_links": {**resource["_links"], "osdi:event": {"href": href}}}}
    events, rejected = translate([moved], {EVENT.rsplit("/", 1)[1]: "rally-1201"})
    assert events == [] and "is not an Action Network event" in rejected[0].reason
    assert translate([moved], {href: "rally-1201"})[0] == []  # nor mapped by that URL (the map takes none)
