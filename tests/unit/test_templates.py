from datetime import datetime, timezone

import pytest

from agents.outreach.templates import (
    local_time,
    render,
    SMS_FOOTER,
    segments,
    sms_body,
    validate_template,
)
from contracts.events import AskTemplates

VALUES = {"given_name": "Ana", "action_title": "Rally", "local_time": "Tue Dec 1, 6:00 PM PST",
          "place": "City Hall", "rsvp_link": "https://t.example/r/x"}


def test_known_placeholders_and_doubled_braces_are_valid():
    assert validate_template("Hi {given_name}! {action_title} {local_time} at {place}: {rsvp_link} {{literal}}") == []


def test_unknown_placeholder_is_named():
    problems = validate_template("Hi {first_name}")
    assert len(problems) == 1 and problems[0].startswith("unknown placeholder {first_name}")


def test_each_problem_is_reported_once():
    assert len(validate_template("{foo} {foo} {bar}")) == 2


@pytest.mark.parametrize("text", ["Hi {given_name", "Hi given_name}", "Hi {", "}"])
def test_malformed_braces(text):
    problems = validate_template(text)
    assert len(problems) == 1 and problems[0].startswith("malformed braces")


@pytest.mark.parametrize("text", ["{given_name.__class__}", "{given_name[0]}", "{place.__init__.__globals__}"])
def test_attribute_and_index_access_is_refused(text):
    assert validate_template(text)[0].startswith("attribute or index access")


@pytest.mark.parametrize("text", ["{0}", "{}", "{1}"])
def test_positional_placeholders_are_refused(text):
    assert validate_template(text)[0].startswith("positional placeholder")


@pytest.mark.parametrize("text", ["{given_name!r}", "{given_name:>40}", "{given_name:{place}}"])
def test_conversions_and_format_specs_are_refused(text):
    assert validate_template(text)[0].startswith("conversions and format specs")


def test_render_substitutes_values_and_unescapes_braces():
    assert render("Hi {given_name}, {action_title} at {place} {{ok}}", VALUES) == "Hi Ana, Rally at City Hall {ok}"


def test_render_does_not_reinterpret_braces_inside_values():
    assert render("{place}", {**VALUES, "place": "{given_name.__class__}"}) == "{given_name.__class__}"


@pytest.mark.parametrize("name", [None, "", "  "])
def test_missing_given_name_renders_a_neutral_fallback(name):
    values = {k: v for k, v in VALUES.items() if k != "given_name"}
    if name is not None:
        values["given_name"] = name
    assert render("Hi {given_name}!", values) == "Hi friend!"
    assert render("Hola {given_name}!", values, name_fallback="amiga") == "Hola amiga!"


def test_missing_other_value_raises():
    with pytest.raises(ValueError, match="rsvp_link"):
        render("RSVP: {rsvp_link}", {"given_name": "Ana"})


def test_render_refuses_an_invalid_template():
    with pytest.raises(ValueError, match="attribute or index access"):
        render("{given_name.__class__}", VALUES)


@pytest.mark.parametrize(("when", "tz", "expected"), [
    (datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc), "America/Los_Angeles", "Tue Dec 1, 6:00 PM PST"),
    (datetime(2026, 7, 4, 16, 5, tzinfo=timezone.utc), "America/New_York", "Sat Jul 4, 12:05 PM EDT"),
    (datetime(2026, 7, 4, 4, 30, tzinfo=timezone.utc), "America/New_York", "Sat Jul 4, 12:30 AM EDT"),
    (datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc), "America/Sao_Paulo", "Mon Jan 5, 12:00 PM UTC-03"),
    (datetime(2026, 3, 1, 9, 15, tzinfo=timezone.utc), "UTC", "Sun Mar 1, 9:15 AM UTC"),
])
def test_local_time(when, tz, expected):
    assert local_time(when, tz) == expected


@pytest.mark.parametrize(("when", "tz", "language", "expected"), [
    (datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc), "America/Los_Angeles", "es", "mar 1 dic, 6:00 p. m. PST"),
    (datetime(2026, 9, 5, 15, 30, tzinfo=timezone.utc), "America/Chicago", "es-MX", "sáb 5 sept, 10:30 a. m. CDT"),
    (datetime(2026, 9, 5, 15, 30, tzinfo=timezone.utc), "America/Chicago", "vi", "Sat Sep 5, 10:30 AM CDT"),  # no words of its own: English
])
def test_local_time_in_the_templates_language(when, tz, language, expected):
    assert local_time(when, tz, language) == expected


def test_a_spanish_saturday_never_makes_a_text_ucs2():
    # "sáb": the á is not GSM-7, so every Spanish text about a Saturday action went out UCS-2, at
    # twice the segments (an outside probe: 4 where the console said 2). Texts write "sab", as the
    # Spanish footer writes "SI"; an email keeps the accent.
    saturday = datetime(2026, 9, 5, 15, 30, tzinfo=timezone.utc)
    assert local_time(saturday, "America/Chicago", "es", sms=True) == "sab 5 sept, 10:30 a. m. CDT"
    assert local_time(saturday, "America/Chicago", "es") == "sáb 5 sept, 10:30 a. m. CDT"
    for day in range(7):  # every day, month and meridiem of a text is GSM-7
        for month in range(1, 13):
            written = local_time(datetime(2026, month, 1 + day, 15, tzinfo=timezone.utc), "America/Chicago", "es", sms=True)
            assert segments(written)[0] == "GSM-7", written


def test_local_time_needs_an_aware_datetime():
    with pytest.raises(ValueError):
        local_time(datetime(2026, 12, 1, 18), "America/Los_Angeles")


def test_sms_body_appends_the_footer_on_its_own_line():
    assert sms_body("Rally Tue!  ") == "Rally Tue!\nReply YES to RSVP, STOP to opt out"
    assert sms_body("Rally", footer="STOP to end") == "Rally\nSTOP to end"


def test_sms_body_keeps_a_footer_already_present():
    text = "Rally Tue! reply yes to rsvp, stop to opt out. See you"
    assert sms_body(text) == text


# --- segments: GSM-7 -------------------------------------------------------------------

@pytest.mark.parametrize(("length", "count"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)])
def test_gsm7_segment_boundaries(length, count):
    assert segments("a" * length) == ("GSM-7", count)


def test_gsm7_basic_accented_and_greek_letters_stay_gsm7():
    assert segments("Çafé Ñandù £5 @ 12:00 ΔΩ ¿sì? ÄÖÜß\n") == ("GSM-7", 1)
    assert segments("Café at 12:00, sí") == ("UCS-2", 1)  # í (unlike ì) is not in GSM 03.38


def test_extension_characters_count_two_septets():
    assert segments("a" * 158 + "€") == ("GSM-7", 1)  # 160 septets
    assert segments("a" * 159 + "€") == ("GSM-7", 2)  # 161 septets
    assert segments("{}" * 80) == ("GSM-7", 3)  # 160 characters but 320 septets: 153 + 153 + 14
    assert segments("a" + "€" * 152 + "a") == ("GSM-7", 2)  # 1+152 | 152+1: exactly 2 x 153
    assert segments("a" + "€" * 153) == ("GSM-7", 3)  # 307 septets
    assert segments("|" * 153) == ("GSM-7", 3)  # 306 septets, but 76 pairs fit a segment: 152 | 152 | 2


def test_extension_character_is_not_split_across_segments():
    # 152 septets then a 2-septet character: it cannot straddle, so it opens segment 2.
    body = "a" * 152 + "^" + "a" * 152  # 306 septets, but 152 | 2+152 = 154 > 153
    assert segments(body) == ("GSM-7", 3)
    assert segments("a" * 151 + "^" + "a" * 153) == ("GSM-7", 2)


# --- segments: UCS-2 -------------------------------------------------------------------

@pytest.mark.parametrize(("length", "count"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_ucs2_segment_boundaries(length, count):
    assert segments("ж" * length) == ("UCS-2", count)


def test_one_non_gsm_character_switches_the_whole_message_to_ucs2():
    assert segments("a" * 69 + "ç") == ("UCS-2", 1)  # lower-case ç is not in GSM 03.38
    assert segments("a" * 70 + "ç") == ("UCS-2", 2)


def test_emoji_count_two_utf16_units():
    assert segments("👍" * 35) == ("UCS-2", 1)  # 70 units
    assert segments("a" + "👍" * 35) == ("UCS-2", 2)  # 71 units


def test_surrogate_pair_is_not_split_across_segments():
    assert segments("a" * 66 + "👍" + "a" * 66) == ("UCS-2", 3)  # 66 | 2+66 = 68 > 67
    assert segments("a" * 65 + "👍" + "a" * 67) == ("UCS-2", 2)  # 67 | 67


def test_escape_character_itself_is_not_gsm7_text():
    assert segments("a\x1b") == ("UCS-2", 1)


def test_empty_body_is_no_segments():
    assert segments("") == ("GSM-7", 0)


def test_footer_can_push_a_message_into_a_second_segment():
    room = 160 - 1 - len(SMS_FOOTER)  # the newline before the footer is one septet
    assert segments(sms_body("a" * room)) == ("GSM-7", 1)
    assert segments(sms_body("a" * (room + 1))) == ("GSM-7", 2)


# --- templates in a posted action ----------------------------------------------------

def test_a_posted_action_with_a_bad_template_is_refused_naming_the_field():
    from pydantic import ValidationError

    from contracts.events import partner_event
    from tests.factories import action

    item = action("rally-1")
    item["templates"] = {"sms": {"en": "Hi {given_name} {rsvp_link}", "es": "Hola {nombre}"},
                         "email": {"en": {"subject": "{action_title}", "body": "{given_name.__class__}"}}}
    with pytest.raises(ValidationError) as exc:
        partner_event.validate_python(item)
    problems = {".".join(map(str, e["loc"][1:])): e["msg"] for e in exc.value.errors()}
    assert set(problems) == {"templates.sms.es", "templates.email.en.body"}
    assert "unknown placeholder {nombre}" in problems["templates.sms.es"]
    assert "attribute or index access" in problems["templates.email.en.body"]


def test_valid_templates_are_accepted():
    templates = AskTemplates.model_validate({"sms": {"en": "{given_name}: {rsvp_link}"},
                                             "email": {"en": {"subject": "{action_title}", "body": "{place}"}}})
    assert templates.sms["en"] == "{given_name}: {rsvp_link}"
