"""Provider webhooks in the ingress, signed with the providers' own SDK helpers (no broker)."""

import json
import time
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.datastructures import MultiDict
from twilio.request_validator import RequestValidator

from connectors.sandbox.signing import EventSigner
from connectors.web.app import create_app
from connectors.web.providers import reply_keyword
from connectors.web.publisher import ListPublisher
from contracts.providers import ProviderEnvelope
from contracts.tallies import TallyBook
from streams.keys import person_key
from streams.settings import Settings
from streams.topology import provider_topic

PUBLIC = "https://turnout.example.org"
TOKEN = "twilio-auth-token"
ASK = "rally-1:p0123456789abcdef0123456789abcdef:sms"


@pytest.fixture
def env(tmp_path):
    signer = EventSigner()
    s = Settings(coalition=tmp_path / "c.toml", person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092",
                 public_url=PUBLIC, twilio_auth_token=SecretStr(TOKEN), sendgrid_public_key=signer.public_key)
    pub = ListPublisher()
    return TestClient(create_app(s, publisher=pub, book=TallyBook())), pub, signer, s


def twilio_post(client, path, params, token=TOKEN):
    signature = RequestValidator(token).compute_signature(PUBLIC + path, params)
    return client.post(path, content=urlencode(params), headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})


def written(pub, s):
    return [ProviderEnvelope.model_validate_json(v) for _, v in pub.by_topic.get(provider_topic(s), [])]


def test_a_signed_status_callback_is_written_under_the_person_key(env):
    client, pub, _, s = env
    r = twilio_post(client, f"/v1/providers/twilio/status?ask={ASK}", {"MessageSid": "SM1", "MessageStatus": "delivered"})
    assert r.status_code == 204
    [env_] = written(pub, s)
    assert env_.person_key == ASK.split(":")[1] and env_.event.status == "delivered"


def test_a_twilio_form_with_too_many_fields_is_refused_in_words(env):
    """An outside probe: a signed callback of 252 fields was refused as "not an
    application/x-www-form-urlencoded form in UTF-8", which it was."""
    client, pub, _, s = env
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", **{f"X{i}": "1" for i in range(250)}}
    r = twilio_post(client, f"/v1/providers/twilio/status?ask={ASK}", params)
    assert r.status_code == 400 and "more than 200 fields" in r.json()["detail"] and written(pub, s) == []


def test_every_message_status_the_twilio_sdk_names_is_taken(env):
    """A status Twilio sends and we refused (422) was a callback lost: "partially_delivered" was."""
    from twilio.rest.api.v2010.account.message import MessageInstance

    client, pub, _, s = env
    statuses = [v for k, v in vars(MessageInstance.Status).items() if k.isupper()]
    for status in statuses:
        r = twilio_post(client, f"/v1/providers/twilio/status?ask={ASK}", {"MessageSid": "SM1", "MessageStatus": status})
        assert r.status_code == 204, (status, r.text)
    assert [e.event.status for e in written(pub, s)] == statuses


def test_forged_or_rewritten_twilio_requests_get_403_and_write_nothing(env):
    client, pub, _, s = env
    assert twilio_post(client, f"/v1/providers/twilio/status?ask={ASK}", {"MessageSid": "SM1", "MessageStatus": "delivered"}, token="wrong").status_code == 403
    # The signature is checked first: a query that is no ask's does not tell an unsigned caller more.
    for query in ("", "?ask=x", f"?ask={ASK}"):
        for headers in ({}, {"X-Twilio-Signature": "bad"}):
            r = client.post(f"/v1/providers/twilio/status{query}", data={"MessageSid": "SM1", "MessageStatus": "delivered"}, headers=headers)
            assert r.status_code == 403, (query, headers, r.text)
    params = {"From": "+15105550123", "Body": "STOP", "MessageSid": "SM2"}
    sig = RequestValidator(TOKEN).compute_signature(PUBLIC + "/v1/providers/twilio/inbound", params)
    tampered = {**params, "Body": "YES"}
    r = client.post("/v1/providers/twilio/inbound", content=urlencode(tampered), headers={"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403
    assert written(pub, s) == []


def test_an_inbound_reply_keeps_only_the_keyword_and_no_phone_number(env):
    client, pub, _, s = env
    r = twilio_post(client, "/v1/providers/twilio/inbound", {"From": "+15105550123", "Body": "stop texting me", "MessageSid": "SM3"})
    assert r.status_code == 200 and "<Response>" in r.text
    [env_] = written(pub, s)
    assert env_.event.keyword == "STOP"
    assert env_.person_key == env_.event.sender == person_key(b"k", "+15105550123", None)  # answers go to that number only
    assert "5550123" not in env_.model_dump_json()
    # Twilio's opt-out only takes a text that is one keyword: turnout confirms "stop texting me" itself.
    assert not env_.event.opt_out_handled_by_twilio
    twilio_post(client, "/v1/providers/twilio/inbound", {"From": "+15105550123", "Body": " Stop ", "MessageSid": "SM4"})
    assert [e.event.opt_out_handled_by_twilio for e in written(pub, s)] == [False, True]


@pytest.mark.parametrize("advanced, body, counts", [
    (True, "START", True), (True, " unstop ", True), (True, "Start please", False), (True, "yes, see you there", False),
    (False, "Start please", False),
])
def test_an_opt_in_counts_only_when_twilio_takes_it_too(tmp_path, advanced, body, counts):
    """Twilio lifts its block on a number only for a keyword that is the whole text, Advanced
    Opt-Out or not ("Start please" leaves it blocked, and every text to it fails 21610)."""
    s = Settings(coalition=tmp_path / "c.toml", person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092",
                 public_url=PUBLIC, twilio_auth_token=SecretStr(TOKEN), twilio_advanced_opt_out=advanced)
    pub = ListPublisher()
    client = TestClient(create_app(s, publisher=pub, book=TallyBook()))
    twilio_post(client, "/v1/providers/twilio/inbound", {"From": "+15105550123", "Body": body, "MessageSid": "SM5"})
    [env_] = written(pub, s)
    assert env_.event.opt_in_counts is counts


@pytest.mark.parametrize("body, keyword", [
    ("STOP", "STOP"), ("stop texting me", "STOP"), ("  Yes!", "YES"), ("yes, see you there", "YES"),
    ("...help?", "HELP"), ("", ""), ("123 456", ""), ("👍", ""), ("¡Sí!", "SÍ"), ("si, ahí estaré", "SI"),
    ("Maria here, yes", ""), ("Rosalía", ""),  # not a keyword: nothing of the text is kept
    # Written otherwise, the same word (an outside probe: a full-width STOP was texted the next alert):
    ("ＳＴＯＰ", "STOP"), ("Ｓｔｏｐ please", "STOP"),
    # Two words the FCC's revocation rule names (an outside probe: "Opt out" was texted the next alerts):
    ("Opt out", "OPTOUT"), ("opt-out please", "OPTOUT"), ("OPTOUT", "OPTOUT"), ("opt in", ""),
    # The FCC's words anywhere in the reply revoke consent, as a reasonable person reads them (an
    # outside probe: "Please stop" was a reply and nothing more); they win over a YES before them.
    ("Please stop", "STOP"), ("please STOP texting me", "STOP"), ("I want to opt out", "OPTOUT"),
    ("yes but then unsubscribe me", "UNSUBSCRIBE"), ("no more texts, quit it", "QUIT"), ("Yes, see you at the stopgap", "YES"),
])
def test_a_reply_is_reduced_to_an_opt_out_word_it_holds_else_its_first_word_when_it_is_a_keyword(body, keyword):
    assert reply_keyword(body) == keyword


OURS = ("Reply YES to RSVP, STOP to opt out", "Responde SI para confirmar, STOP para no recibir mensajes")
TEXT = "Fair Care Coalition: Rally at City Hall, Sat 6pm: https://t.example.org/r/a/b\nReply YES to RSVP, STOP to opt out"


@pytest.mark.parametrize("body, keyword", [
    # A phone's reaction quotes the text it reacts to, footer and all (an outside probe: each of
    # these opted the person out, with "You are unsubscribed" texted back): a reaction says nothing.
    (f"Liked “{TEXT}”", ""), (f"Loved “{TEXT}”", ""), (f"Emphasized “{TEXT}”", ""), (f"Questioned “{TEXT}”", ""),
    (f"Laughed at “{TEXT}”", ""), (f'Liked "{TEXT}"', ""), (f"Removed a like from “{TEXT}”", ""), (f"Reacted 🙏 to “{TEXT}”", ""),
    (f"Le gustó “Rally hoy. {OURS[1]}”", ""), ("Liked “Stop the cuts: rally at City Hall, Sat 6…", ""),  # cut short: a reaction still
    # A reply quoting our text is read without the quote.
    (f"Yes! “{TEXT}”", "YES"), (f"STOP “{TEXT}”", "STOP"), (f"“{TEXT}” yes", "YES"),
    # A quote of something else is read: a person may quote the word itself.
    ("“STOP”", "STOP"), ('Please "stop" texting me', "STOP"), ("Liked it, but STOP", "STOP"),
    # Said in other words, the FCC's "any reasonable means" (an outside probe: each was texted the next alert).
    ("Opt me out", "OPTOUT"), ("Remove me from this list", "OPTOUT"), ("please remove my number", "OPTOUT"),
    ("No more texts please", "OPTOUT"), ("no more messages", "OPTOUT"), ("S T O P", "STOP"), ("s.t.o.p", "STOP"),
    ("Please don't text me again", "OPTOUT"), ("Do not text me", "OPTOUT"), ("dont message me", "OPTOUT"),
    ("take me off your list", "OPTOUT"), ("BAJA", "OPTOUT"), ("dame de baja", "OPTOUT"), ("no me manden mensajes", "OPTOUT"),
    ("No más mensajes", "OPTOUT"), ("cancelar", "OPTOUT"), ("AYUDA", "HELP"), ("ayuda por favor", "HELP"),
    # ... and not every "stop" or "don't" is one.
    ("Yes, I'll stop by after work!", "YES"), ("Don't worry, I'll be there", ""), ("yes! no more than 10 min late", "YES"),
    ("Yes, stop by stop", "STOP"),
])
def test_a_reply_is_read_as_a_reasonable_person_reads_it(body, keyword):
    assert reply_keyword(body, OURS) == keyword


def test_the_inbound_webhook_reads_a_reaction_to_our_text_as_nothing(tmp_path):
    s = Settings(coalition=tmp_path / "c.toml", person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092",
                 public_url=PUBLIC, twilio_auth_token=SecretStr(TOKEN), sms_footer="Text YES to come, STOP to end these")
    pub = ListPublisher()
    client = TestClient(create_app(s, publisher=pub, book=TallyBook()))
    twilio_post(client, "/v1/providers/twilio/inbound", {"From": "+15105550123", "Body": "Yes! “Rally 6pm. Text YES to come, STOP to end these”", "MessageSid": "SM6"})
    assert [e.event.keyword for e in written(pub, s)] == ["YES"]  # the configured footer, quoted, is ours


def test_signed_sendgrid_events_are_verified_with_ecdsa(env):
    client, pub, signer, s = env
    body = json.dumps([{"event": "delivered", "sg_event_id": "e1", "sg_message_id": "m1", "email": "ana@example.org", "ask_id": ASK.replace(":sms", ":email")},
                       {"event": "open", "sg_event_id": "e2", "email": "x@example.org"}]).encode()
    r = client.post("/v1/providers/sendgrid/events", content=body, headers=signer.headers(body, int(time.time())))
    assert r.status_code == 200 and r.json() == {"accepted": 1, "skipped": 1, "skips": [{"index": 1, "reason": "not about one of turnout's asks (no ask_id)"}]}
    [env_] = written(pub, s)
    assert env_.event.event == "delivered" and "ana@" not in env_.model_dump_json()
    tampered = body.replace(b"delivered", b"bounce___")
    assert client.post("/v1/providers/sendgrid/events", content=tampered, headers=signer.headers(body, int(time.time()))).status_code == 403
    other = EventSigner()
    assert client.post("/v1/providers/sendgrid/events", content=body, headers=other.headers(body, int(time.time()))).status_code == 403


def test_sendgrid_events_turnout_does_not_read_are_skipped_with_a_reason(env):
    """An outside probe: an event no SendGrid sends ("exploded"), one about a text's ask and one
    under a person key no ask has were counted accepted (and written)."""
    client, pub, signer, s = env
    ok = {"sg_event_id": "e1", "event": "delivered", "ask_id": EMAIL_ASK}
    items = [{**ok, "event": "exploded"}, {**ok, "event": "open"}, {**ok, "ask_id": ASK},
             {**ok, "ask_id": EMAIL_ASK.replace(":p", ":p" + "a" * 80)}, ok]
    body = json.dumps(items).encode()
    r = client.post("/v1/providers/sendgrid/events", content=body, headers=signer.headers(body, int(time.time())))
    assert r.status_code == 200 and r.json()["accepted"] == 1 and [k["index"] for k in r.json()["skips"]] == [0, 1, 2, 3]
    reasons = [k["reason"] for k in r.json()["skips"]]
    assert reasons[:2] == ["'exploded' is not an event turnout reads", "'open' is not an event turnout reads"]
    assert reasons[2] == reasons[3] == "ask_id is not one of turnout's email asks"
    [env_] = written(pub, s)
    assert env_.event.event == "delivered"


@pytest.mark.parametrize("event, reason, kept", [
    # A receiving server's text went onto the provider topic, out of erasure's reach: first with
    # the address (an outside probe), then with the person's name ("... of Cordelia Gallowglass").
    ("bounce", "550 5.1.1 <Ana.Diaz@example.org> does not exist; call (510) 555-0123", "550 5.1.1"),
    ("bounce", "550 5.2.1 The email account of Cordelia Gallowglass <cordelia@example.org> is disabled", "550 5.2.1"),
    ("deferred", "421-4.7.0 Try again later, Ana", "421-4.7.0"),
    ("bounce", "Mailbox of Ana Diaz unavailable", None),
    # SendGrid's own words for its drops are kept: the receipts agent reads them.
    ("dropped", "Bounced Address", "Bounced Address"),
    ("dropped", "Unsubscribed Address", "Unsubscribed Address"),
    ("dropped", "Dropped for Ana Diaz", None),
])
def test_a_bounce_reason_is_written_as_its_smtp_codes_only(env, event, reason, kept):
    client, pub, signer, s = env
    body = json.dumps([{"event": event, "sg_event_id": "e1", "sg_message_id": "m1", "ask_id": ASK.replace(":sms", ":email"),
                        "reason": reason}]).encode()
    assert client.post("/v1/providers/sendgrid/events", content=body, headers=signer.headers(body, int(time.time()))).status_code == 200
    [env_] = written(pub, s)
    assert env_.event.reason == kept


@pytest.mark.parametrize("body, says", [
    (b'{"event": "delivered"}', "JSON array"), (b"not json", "not valid JSON"), (b"[1, 2", "not valid JSON"),
    # Signed, but not UTF-8: its signature holds, so it is the body that is wrong (was a 403,
    # "invalid signature": the SDK's check decodes the body first).
    (b'[{"event": "delivered", "reason": "\xff"}]', "not UTF-8 (byte 35)"),
])
def test_a_signed_sendgrid_body_that_is_not_an_array_is_a_400(env, body, says):
    client, pub, signer, s = env
    r = client.post("/v1/providers/sendgrid/events", content=body, headers=signer.headers(body, int(time.time())))
    assert r.status_code == 400 and says in r.text and written(pub, s) == []


EMAIL_ASK = ASK.replace(":sms", ":email")


def delivered(event_id: str = "e1") -> bytes:
    return json.dumps([{"event": "delivered", "sg_event_id": event_id, "ask_id": EMAIL_ASK}]).encode()


@pytest.mark.parametrize("age, status", [(26 * 3600, 403), (10**9, 403), (-3600, 403), (23 * 3600, 200), (60, 200)])
def test_a_signed_sendgrid_batch_is_taken_only_within_its_replay_window(env, age, status):
    """Captured batches replay for 25 h at most; SendGrid's own retries (up to 24 h, perhaps with
    the first attempt's timestamp) still pass, and so does a clock a little ahead."""
    client, pub, signer, s = env
    body = delivered()
    r = client.post("/v1/providers/sendgrid/events", content=body, headers=signer.headers(body, int(time.time()) - age))
    assert r.status_code == status, r.text
    assert len(written(pub, s)) == (1 if status == 200 else 0)


def test_a_sendgrid_post_without_a_signature_is_refused_before_its_body_is_read(env):
    client, pub, signer, s = env
    r = client.post("/v1/providers/sendgrid/events", content=(b" " * 65536 for _ in range(4)))
    assert r.status_code == 403 and r.headers["connection"] == "close"
    body = delivered()
    stale = signer.headers(body, int(time.time()) - 30 * 3600)
    r = client.post("/v1/providers/sendgrid/events", content=(b" " * 65536 for _ in range(4)), headers=stale)
    assert r.status_code == 403 and r.headers["connection"] == "close" and written(pub, s) == []


@pytest.mark.parametrize("garble", [b'"reason": "x\\ud800"', b'"timestamp": 1' + b"0" * 5000, b'"reason": "a", "reason": "b"'])
def test_sendgrid_events_that_cannot_be_read_are_skipped_and_the_rest_written(env, garble):
    client, pub, signer, s = env
    body = b'[{"event": "delivered", "sg_event_id": "e1", "ask_id": "%s", %s},' % (EMAIL_ASK.encode(), garble) + delivered("e2")[1:]
    r = client.post("/v1/providers/sendgrid/events", content=body, headers=signer.headers(body, int(time.time())))
    assert r.status_code == 200 and r.json()["accepted"] == 1 and r.json()["skipped"] == 1
    assert [s_["index"] for s_ in r.json()["skips"]] == [0] and r.json()["skips"][0]["reason"]
    assert [e.event.sg_event_id for e in written(pub, s)] == ["e2"]


@pytest.mark.parametrize("item, reason", [
    ({"event": "delivered", "sg_event_id": {"x": 1}, "ask_id": EMAIL_ASK}, "sg_event_id is not a string"),
    ({"event": "delivered", "sg_event_id": "e1", "ask_id": "nonsense"}, "ask_id is not one of turnout's email asks"),
    ({"event": "delivered", "ask_id": EMAIL_ASK}, "sg_event_id is missing"),
    ("delivered", "not an object"),
])
def test_a_sendgrid_event_skipped_is_said_why(env, item, reason):
    # An outside probe: {"x": 1} as sg_event_id was made a string and taken; skips said nothing.
    client, pub, signer, s = env
    body = json.dumps([item]).encode()
    r = client.post("/v1/providers/sendgrid/events", content=body, headers=signer.headers(body, int(time.time())))
    assert r.status_code == 200 and r.json() == {"accepted": 0, "skipped": 1, "skips": [{"index": 0, "reason": reason}]}
    assert written(pub, s) == []


@pytest.mark.parametrize("query, params, field, kind", [
    ("?ask=nonsense", {"MessageSid": "SM1", "MessageStatus": "delivered"}, "query.ask", "string_pattern_mismatch"),
    # An outside probe: no person key, a NUL, 5,000 characters, and a 100,000-character sid were taken with a 204.
    *((f"?ask={ask}", {"MessageSid": "SM1", "MessageStatus": "delivered"}, "query.ask", "string_pattern_mismatch")
      for ask in ("a:p:sms", "%00:p1:sms", "a" * 5000 + ":p1:sms")),
    (f"?ask={ASK}", {"MessageSid": "S" * 100_000, "MessageStatus": "delivered"}, "body.MessageSid", "string_too_long"),
    (f"?ask={ASK}", {"MessageStatus": "delivered"}, "body.MessageSid", "missing"),
    (f"?ask={ASK}", {"MessageSid": "SM1"}, "body.MessageStatus", "missing"),
    (f"?ask={ASK}", {"MessageSid": "SM1", "MessageStatus": "exploded"}, "body.MessageStatus", "literal_error"),
    # Twilio's error codes are numbers (an outside probe: "abc", "1e5" and 5,000 digits were taken).
    *((f"?ask={ASK}", {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": code}, "body.ErrorCode", "string_pattern_mismatch")
      for code in ("abc", "1e5", "9" * 5000)),
])
def test_a_signed_status_callback_that_is_not_ours_is_a_422_naming_the_field(env, query, params, field, kind):
    client, pub, _, s = env
    r = twilio_post(client, f"/v1/providers/twilio/status{query}", params)
    assert r.status_code == 422
    assert [(e["field"], e["type"]) for e in r.json()["errors"]] == [(field, kind)] and "unpack" not in r.text
    assert written(pub, s) == []


def test_twilio_posts_without_a_signature_are_refused_before_their_body_is_read(env):
    client, pub, _, s = env
    r = client.post(f"/v1/providers/twilio/status?ask={ASK}", content=(b"a=b&" * 16384 for _ in range(4)),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403 and r.headers["connection"] == "close" and written(pub, s) == []


@pytest.mark.parametrize("sender", ["12345", "TURNOUT", ""])
def test_an_inbound_sms_from_a_sender_that_is_not_a_phone_number_is_answered_and_writes_nothing(env, sender):
    client, pub, _, s = env
    r = twilio_post(client, "/v1/providers/twilio/inbound", {"From": sender, "Body": "STOP", "MessageSid": "SM9"})
    assert r.status_code == 200 and "<Response>" in r.text
    assert written(pub, s) == []


def test_a_signed_twilio_form_that_repeats_a_key_is_taken(env):
    """Twilio signs every value of a repeated key (the SDK's ``compute_signature`` over a
    multi-valued form): such a callback is Twilio's, not a forgery, and must not be lost."""
    client, pub, _, s = env
    path = f"/v1/providers/twilio/status?ask={ASK}"
    pairs = [("MessageSid", "SM1"), ("MessageStatus", "delivered"), ("ErrorCode", ""), ("ErrorCode", "30007")]
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, MultiDict(pairs))
    r = client.post(path, content=urlencode(pairs), headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 204, r.text
    [env_] = written(pub, s)
    assert (env_.event.message_sid, env_.event.status) == ("SM1", "delivered")
    forged = RequestValidator(TOKEN).compute_signature(PUBLIC + path, dict(pairs))  # the last value only: not what Twilio signs
    r = client.post(path, content=urlencode(pairs), headers={"X-Twilio-Signature": forged, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403 and len(written(pub, s)) == 1
