import pytest
from pydantic import ValidationError

from contracts.events import Envelope, SignupEvent, partner_event
from contracts.people import normalize_email, normalize_phone
from tests.factories import action, checkin, pledge, rsvp, signup

WIRE_EXAMPLE = [
    {"type": "signup", "event_id": "u-001", "occurred_at": "2026-11-22T15:00:00Z",
     "person": {"given_name": "Ana", "family_name": "Diaz", "phone": "+15105550123", "email": "ana@example.org", "postal_code": "94607", "language": "es"},
     "consent": {"sms": True, "email": True}},
    {"type": "pledge", "event_id": "u-002", "occurred_at": "2026-11-22T15:00:00Z", "action_id": "rally-1201", "count": 40},
    {"type": "rsvp", "event_id": "u-003", "occurred_at": "2026-11-22T15:01:00Z", "action_id": "rally-1201", "status": "yes", "person": {"phone": "+15105550123"}},
    {"type": "checkin", "event_id": "u-004", "occurred_at": "2026-12-01T18:05:00Z", "action_id": "rally-1201", "person": {"phone": "+15105550123"}},
]


def errors_of(item, **context):
    with pytest.raises(ValidationError) as exc:
        partner_event.validate_python(item, context=context or None)
    return {".".join(str(x) for x in e["loc"][1:]): e["msg"] for e in exc.value.errors()}


def test_the_documented_wire_shape_validates():
    events = [partner_event.validate_python(item) for item in WIRE_EXAMPLE]
    assert [e.type for e in events] == ["signup", "pledge", "rsvp", "checkin"]
    assert events[0].person.phone == "+15105550123"
    assert events[0].consent.sms.granted and events[0].consent.email.granted


@pytest.mark.parametrize("raw", ["(510) 555-0123", "510.555.0123", "+1 510 555 0123", "1-510-555-0123"])
def test_phones_are_normalized_to_e164(raw):
    event = partner_event.validate_python(signup("e1", phone=raw))
    assert event.person.phone == "+15105550123"


def test_default_region_comes_from_the_validation_context():
    event = partner_event.validate_python(signup("e1", phone="020 7946 0018"), context={"default_region": "GB"})
    assert event.person.phone == "+442079460018"
    assert normalize_phone("020 7946 0018", "GB") == "+442079460018"


@pytest.mark.parametrize("bad", ["555", "not a phone", "+1 510 555", "+999 123"])
def test_bad_phones_are_rejected_naming_the_field(bad):
    assert "person.phone" in errors_of(signup("e1", phone=bad))


@pytest.mark.parametrize("bad, says", [("not a phone", "not a phone number"), ("12345678901234567890", "not a phone number (too long)"),
                                       ("+999 123", "not a phone number (no such country code)"), ("555", "not a valid phone number for region US")])
def test_a_bad_phone_is_said_once_in_plain_words(bad, says):
    with pytest.raises(ValueError) as refused:
        normalize_phone(bad)
    assert str(refused.value) == says


@pytest.mark.parametrize("mangled", ["5105550126.0", "15105550126.0", "5.10555E+09", "5.105550126e+09", "5,10555E+09"])
def test_a_phone_a_spreadsheet_turned_into_a_number_gets_a_hint(mangled):
    # Excel shows a long number column as 5.10555E+09 and may save it so, or as 5105550126.0:
    # the digits are gone or a float's, and the fix is on the partner's side.
    with pytest.raises(ValueError) as refused:
        normalize_phone(mangled)
    assert "spreadsheet" in str(refused.value) and "format the column as text" in str(refused.value)
    assert normalize_phone("510.555.0126") == "+15105550126"  # dots as separators are a phone


@pytest.mark.parametrize("extended", ["+1 510 555 0180 ext. 12", "(510) 555-0180 x34", "510-555-0180;ext=7"])
def test_a_phone_with_an_extension_is_refused_not_cut(extended):
    # E.164 has no extension: cut off, every desk at one switchboard would be one person.
    with pytest.raises(ValueError) as refused:
        normalize_phone(extended)
    assert "extension" in str(refused.value) and "mobile" in str(refused.value)


@pytest.mark.parametrize("lettered", ["510-555-CALL", "not-a-phone-5105550199", "1-800-FLOWERS", "5105550142 mom"])
def test_a_phone_with_letters_is_refused_not_read_as_keypad_digits(lettered):
    # An outside probe: phonenumbers reads letters as a keypad's digits and drops words around
    # the digits, so "510-555-CALL" became +15105552255, someone else's number.
    with pytest.raises(ValueError) as refused:
        normalize_phone(lettered)
    assert "letters" in str(refused.value)
    assert "person.phone" in errors_of(signup("e1", phone="510-555-CALL"))


def test_emails_are_normalized_and_validated():
    assert normalize_email("  Ana.Diaz@EXAMPLE.org ") == "ana.diaz@example.org"
    assert partner_event.validate_python(signup("e1", email="Ana@Example.ORG")).person.email == "ana@example.org"
    assert "person.email" in errors_of(signup("e1", email="ana@@example"))
    assert "person.email" in errors_of(signup("e1", email="ana.example.org"))
    # RFC 5321: 64 octets before the @ at most (an outside probe: 65 were taken, and a mail server refuses them).
    assert "64" in errors_of(signup("e1", email="a" * 65 + "@example.org"))["person.email"]
    assert normalize_email("a" * 64 + "@example.org") == "a" * 64 + "@example.org"


@pytest.mark.parametrize("typed", ["ｂen@example.org", "ben＠example.org", "ＢＥＮ@ＥＸＡＭＰＬＥ.ORG"])
def test_an_email_typed_in_full_width_letters_is_the_same_address(typed):
    # An outside probe: "ｂen@example.org" (a Japanese keyboard's full-width b) was a second
    # person beside ben@example.org; full-width digits in a phone were already the same number.
    assert normalize_email(typed) == "ben@example.org"
    assert partner_event.validate_python(signup("e1", email=typed)).person.email == "ben@example.org"
    assert normalize_email("zoë@example.org") == "zoë@example.org"  # a letter of its own stays as it is


def test_a_person_needs_a_phone_or_an_email():
    msgs = errors_of({**signup("e1", phone="+15105550123"), "person": {"given_name": "Ana"}, "consent": {}})
    assert any("phone or an email" in m for m in msgs.values())
    assert any("phone or an email" in m for m in errors_of(rsvp("r1", "rally-1", phone=None)).values())


def test_consent_for_a_channel_needs_that_channel():
    item = signup("e1", email="ana@example.org")
    item["consent"] = {"sms": True, "email": True}
    assert any("person.phone is missing" in m for m in errors_of(item).values())


def test_consent_takes_the_long_form_with_when_and_how():
    item = signup("e1", phone="+15105550123")
    item["consent"] = {"sms": {"granted": True, "given_at": "2026-11-01T10:00:00-07:00", "method": "paper sign-in sheet"}}
    event = partner_event.validate_python(item)
    assert event.consent.sms.method == "paper sign-in sheet"
    assert event.consent.email.granted is False


def test_timestamps_need_an_offset():
    assert "occurred_at" in errors_of({**pledge("p1", "rally-1", 3), "occurred_at": "2026-11-22T15:00:00"})


def test_unknown_type_and_unknown_fields_are_named():
    assert errors_of({"type": "petition", "event_id": "x", "occurred_at": "2026-11-22T15:00:00Z"})
    assert "given-name" in errors_of({**signup("e1", phone="+15105550123"), "given-name": "Ana"})
    assert "count" in errors_of(pledge("p1", "rally-1", -1))
    assert "status" in errors_of(rsvp("r1", "rally-1", status="perhaps", phone="+15105550123"))


def test_actions_validate_time_zone_and_unique_pledges():
    assert partner_event.validate_python(action("rally-1", {"union-a": 5})).pledges[0].count == 5
    assert "time_zone" in errors_of({**action("rally-1"), "time_zone": "Mars/Olympus"})
    bad = action("rally-1")
    bad["pledges"] = [{"partner": "a", "count": 1}, {"partner": "a", "count": 2}]
    assert any("once" in m for m in errors_of(bad).values())


@pytest.mark.parametrize("start", ["1970-01-01T00:00:00+14:00", "1969-12-31T23:00:00Z", "2999-12-31T23:00:00-05:00",
                                   # Beyond the calendar in UTC: an OverflowError, a 500 and a worker that stopped (an outside probe).
                                   "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+12:00"])
def test_a_start_outside_the_years_1970_to_2999_is_refused_whatever_its_offset(start):
    # 1970-01-01T00:00+14:00 is 1969 in UTC: accepted by its local year, its RSVP links could not be
    # signed (a time before 1970), and the worker planning it stopped, and with it all outreach
    # (an outside probe).
    assert "starts_at" in errors_of({**action("rally-1"), "starts_at": start})


def test_a_template_that_says_where_needs_an_action_that_says_where():
    """{place} is the venue and the city: without either, thousands of texts said "at , Thu Dec 10"."""
    nowhere = {**action("vigil-1"), "templates": {"sms": {"en": "Vigil at {place}, {local_time}"}, "email": {}}}
    assert "{place} is used but the action has no location" in errors_of(nowhere)["templates"]
    assert partner_event.validate_python({**nowhere, "location": {"locality": "Oakland"}}).location.locality == "Oakland"
    stored = partner_event.validate_python(nowhere, context={"normalized": True})  # an action accepted before this rule still reads
    assert stored.templates.sms["en"].startswith("Vigil")


def test_a_language_given_twice_in_a_templates_map_is_refused():
    """An outside probe: {"en": "a", " en ": "b"} was taken, one of the two texts kept without a word."""
    twice = {**action("vigil-1"), "templates": {"sms": {"en": "Come {rsvp_link}", " EN ": "Venga {rsvp_link}"}, "email": {}}}
    assert errors_of(twice)["templates.sms"] == "Value error, 'en' and ' EN ' are one language (en): give its text once"
    once = {**action("vigil-1"), "templates": {"sms": {" en ": "Come {rsvp_link}", "es": "Venga {rsvp_link}"}, "email": {}}}
    assert sorted(partner_event.validate_python(once).templates.sms) == ["en", "es"]


def test_an_action_title_needs_a_visible_character():
    """An outside probe: a title of one zero-width space was taken (a blank row on the dashboard,
    texts naming nothing); names already needed a visible character."""
    assert errors_of({**action("vigil-1"), "title": "\u200b"})["title"] == "Value error, must have a visible character"
    assert partner_event.validate_python({**action("vigil-1"), "title": "\u200b"}, context={"normalized": True}).title == "\u200b"  # stored before


def test_a_rapid_response_action_that_would_reach_nobody_is_refused_saying_why():
    # The console's confirmation called a targetless alert one "to everywhere"; it reached nobody.
    alert = {**action("alert-1"), "rapid_response": True, "templates": {"sms": {"en": "Call now {rsvp_link}"}, "email": {}}}
    assert partner_event.validate_python(alert).rapid_response
    nowhere = {**alert, "target": {"postal_codes": [], "regions": []}}
    assert "needs a target area" in " ".join(errors_of(nowhere).values())
    assert "needs an sms or email template" in " ".join(errors_of({**alert, "templates": {"sms": {}, "email": {}}}).values())
    assert partner_event.validate_python({**nowhere, "rapid_response": False}).target.postal_codes == []  # pledges only: fine
    assert partner_event.validate_python(nowhere, context={"normalized": True}).rapid_response  # one accepted before this rule still reads
    # Left out rather than written empty (an outside probe: accepted, 202, and planned to nobody).
    unsaid = {k: v for k, v in alert.items() if k not in ("target", "templates")}
    errors = errors_of(unsaid)
    assert "needs a target area" in errors["target"] and "needs an sms or email template" in errors["templates"], errors
    assert partner_event.validate_python(unsaid, context={"normalized": True}).rapid_response


def test_rules_about_the_whole_action_are_said_with_its_fields_problems_at_once():
    # An outside probe: a partner (or the console's organizer) fixing a title then learned that the
    # alert had no target, and after that that a pledge was listed twice: a round trip each.
    alert = {**action("alert-1"), "rapid_response": True, "title": "x" * 300, "target": {"postal_codes": [], "regions": []},
             "templates": {"sms": {}, "email": {}}, "pledges": [{"partner": "a", "count": 1}, {"partner": "a", "count": 2}]}
    errors = errors_of(alert)
    assert set(errors) == {"title", "target", "templates", "pledges"}, errors
    assert "needs a target area" in errors["target"] and "needs an sms or email template" in errors["templates"]
    assert "each partner may appear once" in errors["pledges"]
    texts = {**action("alert-2"), "kind": "nonsense", "templates": {"sms": {"en": "{rsvp_link} " + "x" * 1600}, "email": {}}}
    assert set(errors_of(texts)) == {"kind", "templates"} and "1,600 Twilio takes" in errors_of(texts)["templates"]


def test_control_characters_are_refused_in_names_titles_and_places_and_templates_keep_their_line_breaks():
    """A NUL or an escape sequence in a title or a name would reach CSV exports and an
    organizer's terminal (`turnout tallies`) as it came."""
    person = {"given_name": "Nul\u0000Byte", "family_name": "Esc\u001b[31m", "phone": "+15105550123"}
    errors = errors_of({**signup("s1"), "person": person})
    assert set(errors) == {"person.given_name", "person.family_name"} and "control character U+0000" in errors["person.given_name"]
    loud = {**action("a1"), "title": "ctl\u001b[31mred", "location": {"venue": "Hall\u0007"}, "target": {"regions": ["CA\u009b"]}}
    assert set(errors_of(loud)) == {"title", "location.venue", "target.regions.0"}
    lines = {"sms": {"en": "Hi {given_name}\nRally at {place}\r\n\tRSVP {rsvp_link}"}, "email": {"en": {"subject": "Rally", "body": "Hi\n\nJoin us"}}}
    assert partner_event.validate_python({**action("a2"), "location": {"venue": "City Hall"}, "templates": lines}).templates.sms["en"].count("\n") == 2
    bad = {"sms": {"en": "Hi\u0000"}, "email": {"en": {"subject": "Rally\nBcc: x@example.org", "body": "Hi"}}}
    assert set(errors_of({**action("a3"), "templates": bad})) == {"templates.sms.en", "templates.email.en.subject"}


def test_a_name_that_shows_nothing_or_turns_text_around_is_refused():
    # A zero-width space alone made a blank line on the door list; a right-to-left override made
    # the name read backwards there, and in exports (and could disguise what follows it).
    # Blank "letters" (Hangul fillers, the braille blank), a combining mark alone and an
    # unassigned code point show nothing either (an outside probe).
    blank = ("\u3164", "\u115f", "\u2800", "\u0301", "\ud7ff", "\uffa0 \u3164")
    for name, says in (("\u200b", "visible"), ("\u2060\ufeff ", "visible"), ("Ana\u202eziD", "U+202E"), ("\u2066Ana\u2069", "U+2066"),
                       *((b, "visible") for b in blank)):
        errors = errors_of({**signup("s1"), "person": {"given_name": name, "phone": "+15105550123"}})
        assert says in errors["person.given_name"], (name, errors)
    for name in ("Ana", "Zo\u0308e", "\u674e", "O'Brien", "\u0410\u043d\u044f", "7"):
        assert partner_event.validate_python({**signup("s1"), "person": {"given_name": name, "phone": "+15105550123"}}).person.given_name == name
    assert "U+202E" in errors_of({**action("a1"), "title": "Rally \u202eevil"})["title"]
    # A line or paragraph separator breaks a one-line text (an email subject, a title) in some
    # mail clients and spreadsheets, as a newline would (an outside probe).
    assert "U+2028" in errors_of({**action("a1"), "title": "Rally\u2028Bring a friend"})["title"]
    email = {"en": {"subject": "Hi\u2029there", "body": "Come"}}
    assert "U+2029" in str(errors_of({**action("a1"), "templates": {"sms": {}, "email": email}}))
    # A template breaks its lines with a newline only, as the README says (U+2028 also makes a text UCS-2).
    assert "U+2028" in str(errors_of({**action("a1"), "templates": {"sms": {"en": "A\u2028B"}, "email": {}}}))
    assert "U+2029" in str(errors_of({**action("a1"), "templates": {"sms": {}, "email": {"en": {"subject": "Hi", "body": "A\u2029B"}}}}))
    stored = partner_event.validate_python({**action("a1"), "title": "Rally \u202eevil"}, context={"normalized": True})
    assert stored.title.endswith("evil")  # an action stored before this rule still reads
    for fine in ("Zoë", "مریم\u200cجان", "José\u200e", "李 小龍"):  # a zero-width non-joiner in Persian, a direction mark
        assert partner_event.validate_python({**signup("s1"), "person": {"given_name": fine, "phone": "+15105550123"}}).person.given_name == fine


def test_contracts_are_frozen():
    event = partner_event.validate_python(checkin("c1", "rally-1", phone="+15105550123"))
    with pytest.raises(ValidationError):
        event.action_id = "other"


def test_envelopes_of_person_events_must_carry_a_person_key():
    event = SignupEvent.model_validate(signup("e1", phone="+15105550123"))
    with pytest.raises(ValidationError):
        Envelope(partner="union-a", received_at="2026-11-22T15:00:00Z", event=event)


def test_a_leap_second_is_refused_in_words():
    # RFC 3339 writes one as second 60; the parser's own message was about "extra characters".
    assert errors_of({**signup("s1"), "occurred_at": "2016-12-31T23:59:60Z"})["occurred_at"] == (
        "Value error, is a leap second (second 60), which turnout cannot keep: give second 59 instead")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_a_time_that_is_no_time_in_utc_is_refused_wherever_it_is_given(when):
    # An outside probe: an RSVP dated 0001-01-01T00:00+01:00 (the year 0 in UTC) was accepted with
    # a 202; every worker reading it stopped on an OverflowError, again at each restart, and
    # counting stopped with it. The calendar's own edges in UTC stay times (a backdated check-in).
    message = "Value error, is outside the calendar once written in UTC (years 1 to 9999)"
    assert errors_of({**rsvp("r1", "rally-1", phone="+15105550123"), "occurred_at": when})["occurred_at"] == message
    consent = {"sms": {"granted": True, "given_at": when}}
    assert errors_of({**signup("s1", phone="+15105550123"), "consent": consent})["consent.sms.given_at"] == message
    with pytest.raises(ValidationError) as exc:  # the ingress's own stamp, as a record on the events topic carries it
        Envelope.model_validate({"partner": "union-a", "received_at": when, "person_key": "p" * 33, "event": rsvp("r1", "rally-1", phone="+15105550123")})
    assert [e["msg"] for e in exc.value.errors() if e["loc"] == ("received_at",)] == [message]
    for edge in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00-01:00", "9999-12-31T23:59:59+01:00"):
        assert partner_event.validate_python({**checkin("c1", "rally-1", phone="+15105550123"), "occurred_at": edge}).occurred_at.year in (1, 9999)


def test_answers_are_taken_until_the_time_after_the_start_and_not_at_it():
    from datetime import datetime, timedelta, timezone

    start = datetime(2026, 12, 12, 2, 0, tzinfo=timezone.utc)
    rally = partner_event.validate_python({**action("rally-9"), "starts_at": start.isoformat()})
    three = timedelta(hours=3)
    assert rally.takes_answers(start + three - timedelta(seconds=1), three)
    assert not rally.takes_answers(start + three, three)
