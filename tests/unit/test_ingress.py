"""The ingress over HTTP, with an in-memory publisher (no broker)."""

import json
import time
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.signing import headers
from connectors.web.app import create_app
from connectors.web.door.directory import Directory
from connectors.web.publisher import ListPublisher
from contracts.events import SLUG_PATTERN, ActionEvent, Envelope
from contracts.facts import ActionRecord
from contracts.tallies import TallyBook
from streams.coalition import add_partner, load
from streams.settings import Settings
from tests.factories import action, checkin, pledge, rsvp, signup

TOKEN = "organizer-token"


@pytest.fixture
def env(tmp_path):
    path = tmp_path / "coalition.toml"
    secrets = {pid: add_partner(path, pid, pid.title(), "union").secret.get_secret_value() for pid in ("union-a", "faith-b")}
    s = Settings(coalition=path, organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    add_partner(path, "backbone", "Backbone", "backbone", role="backbone")
    secrets["backbone"] = next(p for p in load(path).partners.values() if p.id == "backbone").secret.get_secret_value()
    publisher, book = ListPublisher(), TallyBook()
    # faith-b owns lock-x, as the web app would have read from the actions fact topic.
    book.apply("action", "lock-x", ActionRecord(partner="faith-b", action=ActionEvent.model_validate(action("lock-x"))))
    client = TestClient(create_app(s, publisher=publisher, book=book))
    return client, publisher, secrets


def post(client, secrets, partner, payload, *, secret=None, body=None, ts=None):
    body = body if body is not None else json.dumps(payload).encode()
    h = headers(partner, secret or secrets[partner], body, ts or time.time())
    return client.post("/v1/events", content=body, headers=h)


def envelopes(publisher):
    # As workers read them: personal fields are sealed (streams.crypto), which only turnout's own records may be.
    return [Envelope.model_validate_json(v, context={"normalized": True}) for _, v in publisher.records]


def test_a_signed_batch_is_accepted_and_stamped_with_the_authenticated_partner(env):
    client, pub, secrets = env
    r = post(client, secrets, "union-a", [signup("u1", phone="+15105550123"), pledge("u2", "rally-1", 40)])
    assert r.status_code == 202
    assert r.json() == {"accepted": 2, "duplicates": 0, "rejected": [], "warnings": [
        {"index": 1, "event_id": "u2", "message": "no partner has posted action 'rally-1' yet: this is kept and counted once the action is posted (check the id)"}]}
    assert {e.partner for e in envelopes(pub)} == {"union-a"}


def test_raw_contact_details_never_become_kafka_keys(env):
    client, pub, secrets = env
    post(client, secrets, "union-a", [signup("u1", phone="+15105550123", email="ana@example.org")])
    key = pub.records[0][0].decode()
    assert "5550123" not in key and "ana" not in key and key == envelopes(pub)[0].person_key


def test_a_body_cannot_claim_another_partner(env):
    client, pub, secrets = env
    r = post(client, secrets, "union-a", [{**pledge("u2", "rally-1", 40), "partner": "faith-b"}])
    assert r.status_code == 422 and r.json()["rejected"][0]["errors"][0]["field"] == "partner"
    r = post(client, secrets, "faith-b", [pledge("u2", "rally-1", 40)], secret=secrets["union-a"])
    assert r.status_code == 401
    assert pub.records == []


@pytest.mark.parametrize("case", ["wrong secret", "stale", "unknown partner", "missing headers", "a timestamp of 400 digits"])
def test_bad_authentication_gets_401_and_writes_nothing(env, case):
    client, pub, secrets = env
    payload = [checkin("c1", "rally-1", phone="+15105550123")]
    if case == "a timestamp of 400 digits":  # was a 500: no float compares with it
        r = client.post("/v1/events", json=payload, headers={"X-Turnout-Partner": "union-a", "X-Turnout-Timestamp": "9" * 400,
                                                              "X-Turnout-Signature": "v1=00"})
        assert r.json() == {"detail": "signature rejected: X-Turnout-Timestamp is not unix seconds", "errors": []}
    elif case == "wrong secret":
        r = post(client, secrets, "union-a", payload, secret="forged")
    elif case == "stale":
        r = post(client, secrets, "union-a", payload, ts=time.time() - 301)
    elif case == "unknown partner":
        r = post(client, {"nobody": "x"}, "nobody", payload)
    else:
        r = client.post("/v1/events", json=payload)
        assert r.json()["detail"] == "no X-Turnout-Partner header: say which partner signs the request"  # not "unknown partner"
    assert r.status_code == 401
    assert pub.records == []


def test_invalid_events_are_reported_by_index_and_field_and_valid_neighbours_kept(env):
    client, pub, secrets = env
    batch = [signup("u1", phone="+15105550123"), signup("u2", phone="+1510555"), rsvp("u3", "rally-1", status="perhaps", phone="+15105550123"), pledge("u4", "rally-1", 3)]
    r = post(client, secrets, "union-a", batch)
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 2
    assert [(x["index"], x["event_id"], x["errors"][0]["field"]) for x in body["rejected"]] == [(1, "u2", "person.phone"), (2, "u3", "status")]
    assert [e.event.event_id for e in envelopes(pub)] == ["u1", "u4"]
    # Said as a person would: not with the "Value error, " pydantic puts before a validator's words.
    assert body["rejected"][0]["errors"][0]["message"].startswith("not a valid phone number"), body["rejected"][0]


def test_a_rule_across_fields_names_the_field_it_is_about(env):
    # They came back as field "(event)", the field's name only in the words (an outside probe).
    client, pub, secrets = env
    twice = {**action("rally-9"), "pledges": [{"partner": "union-a", "count": 1}, {"partner": "union-a", "count": 2}]}
    consent = {**signup("u7", phone="+15105550123"), "consent": {"email": True}}
    r = post(client, secrets, "union-a", [twice, consent])
    assert [(x["index"], x["errors"]) for x in r.json()["rejected"]] == [
        (0, [{"field": "pledges", "message": "each partner may appear once", "type": "value_error"}]),
        (1, [{"field": "consent.email", "message": "is granted but person.email is missing", "type": "value_error"}])]


@pytest.mark.parametrize("zone", ["America", "x" * 300, "zone1970.tab", "../etc/passwd", "localtime", "Factory"])
def test_a_time_zone_that_is_a_directory_or_too_long_a_name_or_no_place_is_refused_not_a_500(env, zone):
    """``ZoneInfo`` reads a name as a path: the first four raised OSError (the fuzzer's 500, the
    batch lost). "localtime" is whatever zone the worker's machine is in, "Factory" no zone."""
    client, pub, secrets = env
    r = post(client, secrets, "union-a", [{**action("rally-9"), "time_zone": zone}, pledge("u5", "rally-1", 3)])
    assert r.status_code == 202, r.text
    assert [(x["index"], x["errors"][0]["field"]) for x in r.json()["rejected"]] == [(0, "time_zone")]
    assert [e.event.event_id for e in envelopes(pub)] == ["u5"]


def test_a_single_invalid_event_gets_422_naming_the_field(env):
    client, pub, secrets = env
    r = post(client, secrets, "union-a", {**pledge("u1", "rally-1", 3), "count": "many"})
    assert r.status_code == 422
    assert r.json()["rejected"][0]["errors"][0]["field"] == "count"
    assert r.json()["detail"] and r.json()["errors"] == [{**r.json()["rejected"][0]["errors"][0], "field": "0.count"}]  # as every refusal
    assert pub.records == []


def test_repeated_event_ids_in_one_request_are_duplicates(env):
    client, pub, secrets = env
    r = post(client, secrets, "union-a", [pledge("u1", "rally-1", 3), pledge("u1", "rally-1", 3)])
    assert {k: v for k, v in r.json().items() if k != "warnings"} == {"accepted": 1, "duplicates": 1, "rejected": []}
    assert len(pub.records) == 1


def test_an_event_id_repeated_in_one_request_with_other_content_is_refused_not_dropped(env):
    # Which pledge did the partner mean, 5 or 50? The first was kept and the second silently
    # dropped as a duplicate (an outside probe); a later request with the id replaces it, as documented.
    client, pub, secrets = env
    r = post(client, secrets, "union-a", [pledge("u1", "rally-1", 5), pledge("u1", "rally-1", 50), pledge("u1", "rally-1", 5)])
    assert r.status_code == 202 and (r.json()["accepted"], r.json()["duplicates"]) == (1, 1)
    ((index, errors),) = [(x["index"], x["errors"]) for x in r.json()["rejected"]]
    assert index == 1 and errors[0]["field"] == "event_id" and "earlier in this request" in errors[0]["message"]
    assert len(pub.records) == 1


@pytest.mark.parametrize("body, status", [
    (b"{not json", 400), (b"42", 400), (b"[]", 400), (b"x" * (1024 * 1024 + 1), 413),
    (b"[" * 10_000 + b"]" * 10_000, 400), (b"[NaN]", 400),
    (json.dumps([pledge("u1", "rally-1", 3)]).encode("utf-16"), 400), (b'[{"event_id": "\xff"}]', 400),
])
def test_bad_bodies(env, body, status):
    client, pub, secrets = env
    r = post(client, secrets, "union-a", None, body=body)
    assert r.status_code == status and r.json()["detail"]
    assert pub.records == []


def test_an_event_with_a_lone_surrogate_is_refused_by_field_and_its_valid_neighbour_written(env):
    client, pub, secrets = env
    bad = json.dumps(signup("u2", phone="+15105550123")).replace('"person": {', '"person": {"given_name": "Ana\\ud800", ')
    body = ("[" + json.dumps(pledge("u1", "rally-1", 3)) + "," + bad + "]").encode()
    r = post(client, secrets, "union-a", None, body=body)
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == 1
    [rejection] = r.json()["rejected"]
    assert (rejection["index"], rejection["event_id"], rejection["errors"][0]["field"]) == (1, "u2", "person.given_name")
    assert [e.event.event_id for e in envelopes(pub)] == ["u1"]
    # A retry of the same batch writes the same record again (the workers count it once).
    assert post(client, secrets, "union-a", None, body=body).json()["accepted"] == 1
    assert [k for k, _ in pub.records] == [pub.records[0][0]] * 2


def test_an_event_id_with_a_lone_surrogate_is_rejected_and_not_echoed(env):
    client, pub, secrets = env
    bad = json.dumps(pledge("PLACEHOLDER", "rally-1", 3)).replace("PLACEHOLDER", "bad\\ud800")
    r = post(client, secrets, "union-a", None, body=("[" + json.dumps(pledge("u1", "rally-1", 3)) + "," + bad + "]").encode())
    assert r.status_code == 202, r.text
    assert r.json()["rejected"] == [{"index": 1, "event_id": None, "errors": [
        {"field": "event_id", "message": "not valid Unicode (lone surrogate)", "type": "invalid_json"}]}]
    assert [e.event.event_id for e in envelopes(pub)] == ["u1"]


def test_a_number_too_long_to_read_refuses_its_event_naming_the_field(env):
    client, pub, secrets = env
    huge = json.dumps(pledge("u1", "rally-1", 3)).replace('"count": 3', '"count": 1' + "0" * 5000).encode()
    r = post(client, secrets, "union-a", None, body=b"[" + huge + b"," + json.dumps(pledge("u2", "rally-1", 3)).encode() + b"]")
    assert r.status_code == 202, r.text
    assert [(x["index"], x["errors"][0]["field"]) for x in r.json()["rejected"]] == [(0, "count")]
    assert "5001 characters" in r.json()["rejected"][0]["errors"][0]["message"]
    assert [e.event.event_id for e in envelopes(pub)] == ["u2"]
    assert post(client, secrets, "union-a", None, body=huge).status_code == 422


def test_duplicate_keys_refuse_the_event_that_has_them(env):
    client, pub, secrets = env
    body = b'[{"type": "pledge", "event_id": "u1", "occurred_at": "2026-11-22T15:00:00Z", "action_id": "rally-1", "count": 3, "count": 300},' \
           + json.dumps(pledge("u2", "rally-1", 3)).encode() + b"]"
    r = post(client, secrets, "union-a", None, body=body)
    assert r.status_code == 202
    assert [(x["index"], x["errors"][0]["field"]) for x in r.json()["rejected"]] == [(0, "count")]
    assert [e.event.event_id for e in envelopes(pub)] == ["u2"]


@pytest.mark.parametrize("field, value", [("count", False), ("count", True), ("count", "5"), ("count", 5.0), ("occurred_at", 1_700_000_000)])
def test_values_of_another_json_type_are_refused_not_converted(env, field, value):
    client, pub, secrets = env
    r = post(client, secrets, "union-a", {**pledge("u1", "rally-1", 3), field: value})
    assert r.status_code == 422
    assert r.json()["detail"] and r.json()["rejected"][0]["errors"][0]["field"] == field
    assert pub.records == []


@pytest.mark.parametrize("field, value, says", [
    ("occurred_at", "2026-11-22 15:00:00Z", "as RFC 3339 writes it"), ("occurred_at", "2026-11-22T15:00Z", "as RFC 3339 writes it"),
    ("occurred_at", "1700000000", "as RFC 3339 writes it"), ("event_id", " u1", "printable ASCII characters, no spaces"),
    ("action_id", "rally-1 ", "should be an id: lower-case letters"),
])
def test_what_the_published_schema_refuses_the_api_refuses(env, field, value, says):
    """A partner's JSON Schema validator and the API agree (an outside probe: pydantic alone took a
    space for the "T", no seconds, Unix time in a string, and trimmed ids the schema's pattern refuses)."""
    client, pub, secrets = env
    r = post(client, secrets, "union-a", {**pledge("u1", "rally-1", 3), field: value})
    assert r.status_code == 422 and pub.records == []
    (error,) = r.json()["rejected"][0]["errors"]
    assert error["field"] == field and says in error["message"], error
    ok = post(client, secrets, "union-a", {**pledge("u1", "rally-1", 3), "occurred_at": "2026-11-22t15:00:00.5+01:00"})
    assert ok.status_code == 202 and ok.json()["accepted"] == 1  # RFC 3339 itself: lower-case t, fractions, an offset


def test_the_consent_shorthand_is_still_taken(env):
    client, pub, secrets = env
    event = signup("u1", phone="+15105550123", email="ana@example.org")
    event["consent"] = {"sms": True, "email": {"granted": True, "given_at": "2026-11-22T15:00:00Z", "method": "web form"}}
    r = post(client, secrets, "union-a", [event])
    assert r.json()["accepted"] == 1 and r.json()["rejected"] == []
    assert envelopes(pub)[0].event.consent.sms.granted


def test_an_answer_given_before_the_body_is_read_closes_the_connection(env):
    client, pub, _ = env
    body = (b"x" * 65536 for _ in range(4))  # chunked: no length declared
    r = client.post("/v1/events", content=body, headers={"X-Turnout-Partner": "nobody", "X-Turnout-Timestamp": str(int(time.time())), "X-Turnout-Signature": "v1=0"})
    assert r.status_code == 401 and r.headers["connection"] == "close"
    r = post(client, {"union-a": "forged"}, "union-a", [pledge("u1", "rally-1", 3)])
    assert r.status_code == 401 and "connection" not in r.headers  # read whole, then refused: the connection may stay


def test_every_refusal_has_the_same_body(env):
    client, *_ = env
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for r in (client.get("/v1/nothing-here"), client.delete("/v1/tallies", headers=auth), client.get("/v1/tallies"),
              client.post("/v1/people/forget", json={"phone": "12", "email": "a@example.org"}, headers=auth)):
        assert r.status_code >= 400 and set(r.json()) == {"detail", "errors"} and r.json()["detail"], (r.status_code, r.text)
    assert client.delete("/v1/tallies", headers=auth).headers["allow"] == "GET, HEAD"


def test_head_is_answered_as_get_headers_only_and_a_405_lists_every_allowed_method(env):
    """RFC 9110: HEAD wherever GET (a monitor's HEAD /healthz); a 405's Allow names the methods
    of every route on the path, those of included routers too."""
    client, *_ = env
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/healthz", "/v1/tallies", "/dashboard/login"):
        get, head = client.get(path, headers=auth), client.head(path, headers=auth)
        assert (head.status_code, head.content) == (get.status_code, b""), path
        assert head.headers["content-type"] == get.headers["content-type"] and head.headers["content-length"] == str(len(get.content))
    assert client.get("/v1/events").headers["allow"] == "POST"
    assert client.delete("/dashboard/login").headers["allow"] == "GET, HEAD, POST"
    assert client.post("/healthz").headers["allow"] == "GET, HEAD"


def test_too_many_events_in_one_request(env):
    client, _, secrets = env
    r = post(client, secrets, "union-a", [pledge(f"u{i}", "rally-1", 1) for i in range(501)])
    assert r.status_code == 400 and "at most 500" in r.json()["detail"]


def test_no_acknowledgement_means_503_with_retry_after_never_2xx(env):
    client, pub, secrets = env
    pub.down = True
    r = post(client, secrets, "union-a", [pledge("u1", "rally-1", 3)])
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0


def test_tallies_need_the_organizer_token(env):
    client, *_ = env
    assert client.get("/v1/tallies").status_code == 401
    assert client.get("/v1/tallies", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/tallies", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    nope = client.get("/v1/actions/nope/tallies", headers={"Authorization": f"Bearer {TOKEN}"})
    assert nope.status_code == 404 and nope.json()["detail"].startswith("no partner has posted action 'nope' (yet)")  # not "nothing seen"
    # An id no action can have is said to be one, not promised its RSVPs are kept (an outside probe);
    # as the parameter that is wrong, 422 naming it (another probe: a 404 with no errors, echoing 5,000 characters).
    for bad_id in ("BAD%20ID", "x" * 5000):
        bad = client.get(f"/v1/actions/{bad_id}/tallies", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bad.status_code == 422 and bad.json()["detail"] == (
            "not an action id: ids are lower-case letters, digits and dashes, starting with a letter or digit, "
            "at most 63 characters, e.g. union-local-1")
        assert [e["field"] for e in bad.json()["errors"]] == ["path.action_id"]


def test_openapi_documents_the_partner_events(env):
    client, *_ = env
    spec = client.get("/openapi.json").json()
    assert "SignupEvent" in spec["components"]["schemas"]
    assert "/v1/events" in spec["paths"] and client.get("/docs").status_code == 200
    # A client reads there what an action id may be (an outside probe: a plain string, and the
    # id "Rally_1" a client made of it was a 422).
    [param] = spec["paths"]["/v1/actions/{action_id}/tallies"]["get"]["parameters"]
    assert param["schema"]["pattern"] == SLUG_PATTERN


def test_a_disabled_partner_is_refused(env, tmp_path):
    client, pub, secrets = env
    path = tmp_path / "coalition.toml"
    path.write_text(path.read_text().replace("enabled = true", "enabled = false", 1))
    r = post(client, secrets, "union-a", [pledge("u1", "rally-1", 3)])
    assert r.status_code == 401 and "disabled" in r.json()["detail"]
    assert post(client, secrets, "faith-b", [pledge("f1", "rally-1", 3)]).status_code == 202


def test_a_partner_cannot_change_another_partners_action_and_is_told_who_owns_it(env):
    client, pub, secrets = env
    hijack = {**action("lock-x", at="2026-11-22T15:00:00Z"), "title": "Hijacked", "event_id": "h1"}
    r = post(client, secrets, "union-a", [hijack, action("own-1")])
    assert r.status_code == 202
    assert r.json()["rejected"] == [{"index": 0, "event_id": "h1", "errors": [
        {"field": "action_id", "message": "action 'lock-x' belongs to 'faith-b': only it or the backbone may change it", "type": "not_owner"}]}]
    assert [e.event.action_id for e in envelopes(pub)] == ["own-1"]
    # The owner and the backbone may; the envelope says who posted and with which role.
    assert post(client, secrets, "faith-b", [hijack]).json()["accepted"] == 1
    assert post(client, secrets, "backbone", [hijack]).json()["accepted"] == 1
    assert [(e.partner, e.role) for e in envelopes(pub)[1:]] == [("faith-b", "member"), ("backbone", "backbone")]


def test_times_more_than_five_minutes_ahead_and_member_quiet_hour_overrides_are_refused(env):
    client, pub, secrets = env
    ahead = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    loud = {**action("alarm"), "override_quiet_hours": True}
    r = post(client, secrets, "union-a", [checkin("c1", "lock-x", phone="+15105550123", at=ahead), loud])
    assert r.status_code == 422
    assert [(x["index"], x["errors"][0]["field"]) for x in r.json()["rejected"]] == [(0, "occurred_at"), (1, "override_quiet_hours")]
    assert pub.records == []
    assert post(client, secrets, "backbone", [loud]).json()["accepted"] == 1


def test_an_action_just_accepted_is_known_before_its_fact_is_read(env):
    client, pub, secrets = env  # the book never learns of new-1 here: the fact topic's lag, made long
    assert post(client, secrets, "union-a", [action("new-1")]).json() == {"accepted": 1, "duplicates": 0, "rejected": [], "warnings": []}
    r = post(client, secrets, "union-a", [pledge("p1", "new-1", 5)])
    assert r.json()["warnings"] == []  # not "no partner has posted action 'new-1' yet"
    r = post(client, secrets, "faith-b", [{**action("new-1"), "event_id": "h2"}])
    assert r.status_code == 422 and r.json()["rejected"][0]["errors"][0]["type"] == "not_owner"


def test_events_posted_with_their_action_in_one_request_get_no_warning_that_it_is_unknown(env):
    # "no partner has posted action 'pg-a' yet" for a pledge and RSVPs listed right after the
    # action in the same request (an outside probe).
    client, pub, secrets = env
    r = post(client, secrets, "union-a", [action("same-1"), pledge("p1", "same-1", 5), rsvp("r1", "same-1", phone="+15105550123"),
                                         pledge("p2", "other-1", 5)])
    assert r.json()["accepted"] == 4 and [w["index"] for w in r.json()["warnings"]] == [3]
    r = post(client, secrets, "union-a", [rsvp("r2", "same-2", phone="+15105550123"), action("same-2")])  # before it, too
    assert r.json()["accepted"] == 2 and r.json()["warnings"] == []


def test_a_new_rapid_response_alert_whose_start_is_long_past_is_kept_with_a_warning_that_nobody_is_asked(env):
    """An outside probe posted the README's example as it stands (its start weeks past) and got a
    bare 202, and texts naming a time long gone. The workers no longer send such an alert; the
    poster is told why nobody hears of it (the action is kept: people may still be checked in)."""
    client, pub, secrets = env
    now = time.time()
    stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    alert = lambda action_id, starts: {**action(action_id, at=stamp(now)), "starts_at": stamp(starts), "rapid_response": True,  # noqa: E731
                                       "templates": {"sms": {"en": "Come now"}}}
    r = post(client, secrets, "union-a", [alert("old-1", now - 3 * 3600), alert("now-1", now - 600), alert("soon-1", now + 3600)])
    assert r.status_code == 202 and r.json()["accepted"] == 3
    assert r.json()["warnings"] == [{"index": 0, "event_id": "a-old-1", "message":
        "starts_at is more than 2 hours past: nobody is texted or emailed for this alert (one is sent until its start, or for "
        "2 hours after it is first posted when it started less than that before); the action is kept"}]


def test_the_warning_counts_the_grace_as_configured_and_by_the_workers_clock(tmp_path):
    """Under a rehearsal's file clock days behind, an alert whose start is 3 hours gone by the real
    time is still ahead by the workers': they text it, and nothing warns (a review); a grace of 30
    minutes warns of a start 45 minutes gone."""
    path = tmp_path / "coalition.toml"
    secret = add_partner(path, "union-a", "Union A", "union").secret.get_secret_value()
    now = time.time()
    stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    alert = lambda ago: {**action("old-1", at=stamp(now)), "starts_at": stamp(now - ago), "rapid_response": True,  # noqa: E731
                         "templates": {"sms": {"en": "Now"}}}
    (tmp_path / "clock.txt").write_text(stamp(now - 3 * 86400))
    for overrides, ago, warned in (({"clock": f"file:{tmp_path / 'clock.txt'}"}, 3 * 3600, False), ({"rapid_response_grace_minutes": 30}, 45 * 60, True)):
        s = Settings(coalition=path, organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092",
                     **overrides)
        client = TestClient(create_app(s, publisher=ListPublisher(), book=TallyBook()))
        r = post(client, {"union-a": secret}, "union-a", [alert(ago)])
        assert r.status_code == 202 and [w["message"][:41] for w in r.json()["warnings"]] == (
            ["starts_at is more than 30 minutes past: n"] if warned else [])


def test_an_edit_that_moves_an_alerts_start_past_its_grace_is_warned_of_too(tmp_path):
    """An outside probe: an alert first posted with a start ahead, posted again with its start
    moved hours back (before its first posting by more than the grace) got a bare 202 while its
    held asks were expired. The grace counts from the first posting, as the workers count it."""
    path = tmp_path / "coalition.toml"
    secret = add_partner(path, "union-a", "Union A", "union").secret.get_secret_value()
    s = Settings(coalition=path, organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    book = TallyBook()
    client = TestClient(create_app(s, publisher=ListPublisher(), book=book))
    now = time.time()
    stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))  # noqa: E731
    alert = lambda event_id, starts: {**action("alarm", at=stamp(now)), "event_id": event_id, "starts_at": stamp(starts),  # noqa: E731
                                      "rapid_response": True, "templates": {"sms": {"en": "Now"}}}
    first = datetime.fromtimestamp(now - 1800, timezone.utc)  # as the web app read it back from the actions topic
    book.apply("action", "alarm", ActionRecord(partner="union-a", action=ActionEvent.model_validate(alert("a1", now + 3600)),
                                               received_at=first, first_received=first))
    still = post(client, {"union-a": secret}, "union-a", [alert("a2", now - 3 * 3600)])  # 2.5 h before its first posting
    assert still.status_code == 202 and [w["message"][:38] for w in still.json()["warnings"]] == ["starts_at is more than 2 hours past: n"]
    within = post(client, {"union-a": secret}, "union-a", [alert("a3", now - 2 * 3600)])  # 1.5 h before it: texted until 2 h after it
    assert within.status_code == 202 and within.json()["warnings"] == []


def test_two_partners_racing_to_post_a_new_action_one_owns_it_and_the_other_is_refused(env):
    """Both requests are validated before either is written (the broker takes a moment): the
    first claims the id at once, so the second is refused, not told "accepted" and then
    dead-lettered by the worker. A claim whose write failed is let go."""
    import asyncio

    import httpx

    client, pub, secrets = env
    written = pub.publish

    async def slow(records, topic=None, partition=None):
        await asyncio.sleep(0.05)
        await written(records, topic, partition)

    pub.publish = slow

    async def race(*partners):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url="http://testserver") as http:
            bodies = {p: json.dumps([{**action("race-1"), "event_id": f"e-{p}"}]).encode() for p in partners}
            return await asyncio.gather(*(http.post("/v1/events", content=bodies[p], headers=headers(p, secrets[p], bodies[p], time.time()))
                                          for p in partners))

    pub.down = True
    assert [r.status_code for r in asyncio.run(race("faith-b"))] == [503]
    pub.down = False
    first, second = asyncio.run(race("union-a", "faith-b"))
    assert (first.status_code, second.status_code) == (202, 422)
    assert second.json()["rejected"][0]["errors"][0]["message"].startswith("action 'race-1' belongs to 'union-a'")
    assert [e.partner for e in envelopes(pub)] == ["union-a"]


def test_just_posted_actions_are_forgotten_once_the_facts_know_them_then_oldest_first(monkeypatch):
    from connectors.web import ingress
    monkeypatch.setattr(ingress, "MAX_POSTED", 3)
    known: dict[str, str] = {}
    owners = ingress.JustPosted(known.get)
    post = lambda *ids: owners.claim([(0, ActionEvent.model_validate(action(a))) for a in ids], "union-a")  # noqa: E731
    post("a1", "a2", "a3")
    known["a2"] = "union-a"  # its fact has been read
    post("a4")
    assert list(owners.posted) == ["a1", "a3", "a4"] and owners.owner("a2") == "union-a"
    post("a5", "a6")
    assert list(owners.posted) == ["a4", "a5", "a6"] and owners.owner("a1") is None


def test_an_inline_pledge_must_name_a_partner_of_the_coalition(env):
    client, pub, secrets = env
    typo = action("own-2", pledges={"union-a": 40, "faith-bb": 5})
    r = post(client, secrets, "union-a", [typo, action("own-3", pledges={"union-a": 8})])
    assert r.status_code == 202 and r.json()["accepted"] == 1
    assert r.json()["rejected"] == [{"index": 0, "event_id": "a-own-2", "errors": [
        {"field": "pledges.1.partner", "message": "no partner 'faith-bb' in the coalition", "type": "unknown_partner"}]}]
    assert [e.event.action_id for e in envelopes(pub)] == ["own-3"]


def test_a_bug_is_a_500_with_the_same_error_body(tmp_path):
    s = Settings(coalition=tmp_path / "c.toml", organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    app = create_app(s, publisher=ListPublisher(), book=TallyBook())

    @app.get("/boom")
    async def boom():
        raise RuntimeError("a bug")

    r = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert r.status_code == 500 and r.json() == {"detail": "internal error", "errors": []}
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"  # as every answer


def test_a_wrapped_batch_a_missing_or_unknown_type_and_wrong_json_types_are_said_in_words(env):
    client, publisher, secrets = env
    r = post(client, secrets, "union-a", {"events": [pledge("w1", "rally-1", 3)]})
    assert r.status_code == 400 and r.json()["detail"] == 'send the events themselves: one event object, or a JSON array of events, not {"events": [...]}'
    r = post(client, secrets, "union-a", [{"event_id": "w2"}, {**pledge("w3", "rally-1", 3), "type": "pledges"},
                                          {**pledge("w4", "rally-1", 3), "count": "five", "action_id": 7}])
    assert r.status_code == 422
    said = {e["index"]: [(f["field"], f["message"]) for f in e["errors"]] for e in r.json()["rejected"]}
    assert said == {
        0: [("type", "missing: every event says what it is: signup, action, pledge, rsvp, checkin or opt_out")],
        1: [("type", "'pledges' is not a type of event: use one of 'signup', 'action', 'pledge', 'rsvp', 'checkin', 'opt_out'")],
        2: [("action_id", "should be a valid string"), ("count", "should be a valid integer, unable to parse string as an integer")],
    }
    assert publisher.records == []
    # A postal code or a language tag that is none is said in words, not as a regular expression.
    r = post(client, secrets, "union-a", [signup("w5", phone="+15105550100", postal_code="#94607", language="english!")])
    said = {f["field"]: f["message"] for f in r.json()["rejected"][0]["errors"]}
    assert said == {"person.postal_code": "should be a postal code: letters, digits, spaces and hyphens, first a letter or a digit",
                    "person.language": "should be a language tag, such as en or es-MX"}, said


def test_an_sms_template_too_long_for_twilio_once_filled_in_is_refused_at_posting(env):
    """An outside probe: a 1,720-character SMS template was accepted (202) and every text of it then
    failed at Twilio (21617: the body is over 1,600 characters)."""
    client, publisher, secrets = env
    long = {**action("rally-9"), "rapid_response": True, "target": {"postal_codes": ["94607"]},
            "templates": {"sms": {"en": "Please come. " * 120 + "{rsvp_link}"}}}
    r = post(client, secrets, "union-a", [long])
    assert r.status_code == 422 and publisher.records == []
    [error] = r.json()["rejected"][0]["errors"]
    assert error["field"] == "templates.sms.en" and "more than the 1,600 Twilio takes in one message: shorten it" in error["message"]
    fits = {**long, "templates": {"sms": {"en": "Please come. " * 80 + "{rsvp_link}"}}}
    assert post(client, secrets, "union-a", [fits]).status_code == 202


@pytest.mark.parametrize("twice", ["X-Turnout-Partner", "X-Turnout-Timestamp", "X-Turnout-Signature"])
def test_an_authentication_header_given_twice_is_refused(env, twice):
    # An outside probe: a second X-Turnout-Partner (or signature, or timestamp) was ignored and the
    # first one won, where a proxy reading the last one would disagree about who signed.
    client, pub, secrets = env
    body = json.dumps([checkin("c1", "rally-1", phone="+15105550123")]).encode()
    h = list(headers("union-a", secrets["union-a"], body, time.time()).items())
    h.append((twice, {"X-Turnout-Partner": "faith-b", "X-Turnout-Timestamp": "1", "X-Turnout-Signature": "v1=00"}[twice]))
    r = client.post("/v1/events", content=body, headers=h)
    assert r.status_code == 400 and r.json()["detail"] == f"{twice} is given more than once: give it once", r.text
    assert pub.records == []


def test_a_compressed_body_is_refused_for_what_it_is(env):
    # An outside probe: a signed gzip body was refused as "body is not UTF-8 (byte 1)".
    import gzip

    client, pub, secrets = env
    body = gzip.compress(json.dumps([checkin("c1", "rally-1", phone="+15105550123")]).encode())
    r = client.post("/v1/events", content=body, headers={**headers("union-a", secrets["union-a"], body, time.time()), "Content-Encoding": "gzip"})
    assert r.status_code == 400 and r.json()["detail"] == "Content-Encoding 'gzip' is not taken: send the JSON body uncompressed", r.text
    assert pub.records == []


def test_consent_given_in_the_future_or_a_method_with_a_control_character_is_refused(env):
    # An outside probe: consent "given" in the year 10000, and a method holding a NUL, were taken.
    client, pub, secrets = env
    ahead = signup("s1", phone="+15105550123") | {"consent": {"sms": {"granted": True, "given_at": "9999-12-31T23:59:59+14:00"}}}
    nul = signup("s2", phone="+15105550124") | {"consent": {"email": {"granted": True, "method": "a\u0000b"}}}
    r = post(client, secrets, "union-a", [ahead, nul])
    assert r.status_code == 422, r.text
    fields = [(x["index"], e["field"], e["message"]) for x in r.json()["rejected"] for e in x["errors"]]
    assert fields[0] == (0, "consent.sms.given_at", "is more than 5 minutes in the future"), fields
    assert fields[1][:2] == (1, "consent.email.method") and "U+0000" in fields[1][2], fields
    assert pub.records == []


def test_only_the_backbone_lists_pledges_for_other_partners(env):
    # An outside probe: a member's action listed 5000 pledged for another member, whose production
    # ratio fell to 0.0016; that partner's only way out was a pledge of its own, which made it a
    # co-sponsor of the alert. A partner writes as itself; the backbone keeps the books.
    client, pub, secrets = env
    r = post(client, secrets, "union-a", [action("own-4", pledges={"union-a": 40, "faith-b": 5000})])
    assert r.status_code == 422 and r.json()["rejected"][0]["errors"] == [
        {"field": "pledges.1.partner", "message": "only the backbone lists pledges for other partners: 'faith-b' posts its own pledge",
         "type": "not_allowed"}]
    assert post(client, secrets, "backbone", [action("hub-1", pledges={"union-a": 40, "faith-b": 15})]).status_code == 202
    assert [e.event.action_id for e in envelopes(pub)] == ["hub-1"]


def test_a_members_withdrawal_of_another_partners_checkin_is_accepted_with_a_warning(tmp_path):
    # An outside probe: faith-b's withdrawal of union-a's check-in was answered 202 with no word;
    # only the dead-letter topic said it took nothing back.
    from datetime import datetime, timezone

    from contracts.facts import Attendance, PartnerCheckins
    from streams.keys import fact_key, person_key

    path = tmp_path / "coalition.toml"
    secrets = {pid: add_partner(path, pid, pid.title(), "union").secret.get_secret_value() for pid in ("union-a", "faith-b")}
    s = Settings(coalition=path, organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    book = TallyBook()
    book.apply("action", "rally-1", ActionRecord(partner="union-a", action=ActionEvent.model_validate(action("rally-1"))))
    pk, at = person_key(b"k", "+15105550140", None), datetime(2026, 11, 22, 18, tzinfo=timezone.utc)
    book.apply("attendance", fact_key("rally-1", pk), Attendance(action_id="rally-1", person_key=pk, attended=True, attended_by="union-a",
                                                               checkins={"union-a": PartnerCheckins(first_received=at, first_at=at, last_received=at, last_at=at)}))
    directory = Directory(b"k", b"r")
    client, pub = TestClient(create_app(s, publisher=(pub := ListPublisher()), book=book, directory=directory)), pub
    undo = {**checkin("w1", "rally-1", phone="+15105550140"), "withdrawn": True}
    # Someone faith-b never posted: no word (another security probe: the warning, naming the
    # partner, told any member who was checked in, and by whom, for any phone or email it tried).
    r = post(client, secrets, "faith-b", [undo])
    assert r.status_code == 202 and r.json()["warnings"] == []
    # One of its own people (the door list shows it whether they are in): said, naming no partner.
    directory.apply({"event": rsvp("r1", "rally-1", phone="+15105550140"), "partner": "faith-b", "person_key": pk, "received_at": at.isoformat()})
    r = post(client, secrets, "faith-b", [{**undo, "event_id": "w3"}])
    assert r.status_code == 202 and r.json()["warnings"] == [{"index": 0, "event_id": "w3", "message":
        "the check-in that counts for 'rally-1' is another partner's: only it or the backbone may withdraw it; this withdrawal takes nothing back"}]
    assert len(pub.records) == 2  # kept all the same: the workers decide, in whatever order events arrive
    assert post(client, secrets, "union-a", [{**undo, "event_id": "w2"}]).json()["warnings"] == []  # its own


def test_a_postal_code_or_region_that_matches_nothing_is_accepted_with_a_warning(env):
    """An outside probe: a person's ZIP "9460" (a spreadsheet's dropped zero), a target ZIP
    "abcde" and a region "ZZ" were taken without a word, though the CSV import refuses such a
    ZIP and the console flags it: each reaches nobody by its area. Kept as given (postal codes
    abroad are fine), with a warning that says why, in the default region US."""
    client, pub, secrets = env
    area = {"postal_codes": ["94607", "abcde", "2134"], "regions": ["ca", "ZZ"]}
    r = post(client, secrets, "union-a", [signup("s1", phone="+15105550123", postal_code="9460"),
                                         {**action("area-1"), "target": area}, signup("s2", phone="+15105550124", postal_code="94607")])
    assert r.json()["accepted"] == 3
    assert [(w["index"], w["message"]) for w in r.json()["warnings"]] == [
        (0, "person.postal_code '9460' has 4 digits: a spreadsheet may have dropped its leading zero (format the column as text); "
            "kept as given, but no target of US ZIPs or states includes it"),
        (1, "target.postal_codes 'ABCDE' is not a US ZIP (5 digits, or ZIP+4); kept as given, but nobody with a US ZIP is in it"),
        (1, "target.postal_codes '2134' has 4 digits: a spreadsheet may have dropped its leading zero (format the column as text); "
            "kept as given, but nobody with a US ZIP is in it"),
        (1, "target.regions 'ZZ' is not a US state code (such as CA); kept as given, but nobody is in it")]


def test_only_an_event_that_introduces_a_forgotten_person_opens_their_old_links_again():
    """An outside probe: after an erasure, another partner's RSVP naming the person's email alone
    (which makes no record of them) made their old RSVP link open and take an answer it dropped."""
    import asyncio

    from connectors.web.ingress import envelopes
    from streams.data_keys import MemoryDataKeys
    from streams.keys import person_key

    keys, secret, email = MemoryDataKeys(), b"secret", "qtwo@example.net"
    pk = person_key(secret, None, email)
    post = lambda items: asyncio.run(envelopes(items, "faith-b", datetime.now(timezone.utc), secret, "US", keys))  # noqa: E731
    post([signup("s1", email=email)])
    asyncio.run(keys.forget([pk]))
    post([rsvp("r1", "race-1", "no", email=email), checkin("c1", "race-1", email=email)])
    assert keys.ring.forgotten(pk)
    post([{**rsvp("r2", "race-1", email=email), "person": {"email": email, "given_name": "Q"}}])  # a name: introduced
    assert not keys.ring.forgotten(pk)


@pytest.mark.parametrize("given", ["yes", 1, None])
def test_a_consent_that_is_no_yes_or_no_is_named_in_the_contracts_words(given):
    """An outside probe: "yes" got "should be a valid dictionary or instance of ChannelConsent"."""
    from connectors.web.ingress import Authority, validate_events

    item = signup("s1", phone="+15105550123") | {"consent": {"sms": given}}
    result = validate_events([item], "US", Authority("union-a", "member", datetime.now(timezone.utc), lambda a: None)).result()
    [[error]] = [rej.errors for rej in result.rejected]
    assert error.field == "consent.sms" and error.message.startswith('give true or false, or an object such as {"granted": true'), error


def test_an_event_is_written_without_a_refused_contact_only_when_the_other_names_the_person_and_its_consent_goes_with_it():
    from connectors.web.ingress import without_contact

    consent = {"sms": {"granted": True}, "email": {"granted": True}}
    both = {"type": "rsvp", "person": {"given_name": "Ana", "phone": "510-CALL", "email": "ana@example.org"}, "consent": consent}
    assert without_contact(both, ["person.phone"]) == {"type": "rsvp", "person": {"given_name": "Ana", "email": "ana@example.org"},
                                                      "consent": {"email": {"granted": True}}}
    assert without_contact(both, ["person.email"])["consent"] == {"sms": {"granted": True}}
    assert without_contact({**both, "consent": {"sms": {"granted": True}}}, ["person.phone"]).keys() == {"type", "person"}
    assert without_contact(both, ["person.phone", "person.email"]) is None  # nobody left to name
    assert without_contact(both, ["person.phone", "occurred_at"]) is None  # refused for more than a contact
    assert without_contact({"type": "rsvp", "person": {"phone": "510-CALL"}}, ["person.phone"]) is None
