from datetime import datetime, timezone

import pytest

from agents.outreach.eligibility import decide, in_target, may_be_asked, partner_credit, referral_code, region_of, zip5
from contracts.events import ActionEvent, TargetArea
from contracts.facts import PersonRecord
from contracts.people import ConsentRecord
from tests.factories import action as action_event

AT = datetime(2026, 11, 22, 15, tzinfo=timezone.utc)
SECRET = b"coalition-secret"


def person(consent=("sms", "email"), opted_out=(), phone="+15105550123", email="ana@example.org",
           postal_code="94607", **kw) -> PersonRecord:
    return PersonRecord(
        person_key="p1", phone=phone, email=email, postal_code=postal_code,
        consent={c: ConsentRecord(granted=True, partner="union-a", at=AT) for c in consent},
        opted_out={c: AT for c in opted_out},
        partners=("union-a",), recruited_by="union-a", recruited_at=AT, updated_at=AT, **kw,
    )


def action(**target) -> ActionEvent:
    item = {**action_event("rally-1"), "templates": {"sms": {"en": "Rally {rsvp_link}"}, "email": {"en": {"subject": "Rally", "body": "Come {rsvp_link}"}}}}
    if target:
        item["target"] = target
    return ActionEvent.model_validate(item)


def decided(p=None, a=None, recent_asks=0, cap=3):
    return decide(p or person(), a or action(), recent_asks=recent_asks, cap=cap)


def test_consented_person_in_area_is_asked_on_both_channels_sms_first():
    verdict = decided()
    assert verdict.channels == ("sms", "email")
    assert verdict.reasons == {}


def test_no_consent_excludes_only_that_channel():
    verdict = decided(person(consent=("email",)))
    assert verdict.channels == ("email",)
    assert verdict.reasons == {"sms": "no consent"}


def test_consent_recorded_as_not_granted_is_no_consent():
    p = person(consent=()).model_copy(update={"consent": {"sms": ConsentRecord(granted=False, partner="x", at=AT)}})
    assert decided(p).reasons == {"sms": "no consent", "email": "no consent"}


def test_opt_out_blocks_the_channel_even_with_consent():
    verdict = decided(person(opted_out=("sms",)))
    assert verdict.channels == ("email",)
    assert verdict.reasons == {"sms": "opted out"}


def test_opt_out_is_reported_before_missing_consent():
    assert decided(person(consent=(), opted_out=("email",))).reasons == {"sms": "no consent", "email": "opted out"}


@pytest.mark.parametrize(("field", "channel", "reason"), [("phone", "sms", "no phone"), ("email", "email", "no email")])
def test_channel_without_an_address_is_excluded(field, channel, reason):
    verdict = decided(person(**{field: None}))
    assert channel not in verdict.channels
    assert verdict.reasons == {channel: reason}


def test_out_of_area_excludes_every_channel():
    verdict = decided(person(postal_code="10001"))
    assert verdict.channels == ()
    assert verdict.reasons == {"sms": "out of area", "email": "out of area"}


def test_frequency_cap_counts_asks_already_received():
    verdict = decided(recent_asks=3, cap=3)
    assert verdict.channels == ()
    assert verdict.reasons == {"sms": "frequency cap", "email": "frequency cap"}


def test_when_the_cap_allows_one_more_ask_sms_is_preferred():
    verdict = decided(recent_asks=2, cap=3)
    assert verdict.channels == ("sms",)
    assert verdict.reasons == {"email": "frequency cap"}


def test_cap_leaves_room_for_email_when_sms_is_not_possible():
    verdict = decided(person(consent=("email",)), recent_asks=2, cap=3)
    assert verdict.channels == ("email",)
    assert verdict.reasons == {"sms": "no consent"}


def test_a_channel_the_action_has_no_template_for_takes_no_room_under_the_cap():
    email_only = action().model_copy(update={"templates": action().templates.model_copy(update={"sms": {}})})
    verdict = decided(a=email_only, recent_asks=2, cap=3)
    assert verdict.channels == ("email",)
    assert verdict.reasons == {"sms": "no template"}


def test_cap_of_zero_sends_nothing():
    assert decided(cap=0).channels == ()


def test_zip_plus_four_matches_a_five_digit_target():
    assert in_target(person(postal_code="94607-1234"), TargetArea(postal_codes=["94607"]))
    assert in_target(person(postal_code="94607"), TargetArea(postal_codes=["94607-9999"]))
    assert not in_target(person(postal_code="94608"), TargetArea(postal_codes=["94607"]))


def test_region_matches_state_code_in_any_case():
    assert in_target(person(postal_code="90012"), TargetArea(regions=["ca"]))
    assert in_target(person(postal_code="10001"), TargetArea(regions=["CA", "NY"]))
    assert not in_target(person(postal_code="10001"), TargetArea(regions=["CA"]))


def test_full_state_names_are_not_regions():
    assert not in_target(person(postal_code="90012"), TargetArea(regions=["California"]))


def test_empty_target_reaches_nobody():
    assert not in_target(person(), TargetArea())
    assert decided(a=action(postal_codes=[], regions=[])).reasons["sms"] == "out of area"


def test_person_without_postal_code_is_never_in_target():
    assert not in_target(person(postal_code=None), TargetArea(regions=["CA"], postal_codes=["94607"]))


def test_non_us_postal_codes_match_ignoring_spaces_and_case():
    assert in_target(person(postal_code="SW1A1AA"), TargetArea(postal_codes=["sw1a 1aa"]))
    assert not in_target(person(postal_code="SW1A 1AA"), TargetArea(regions=["GB", "CA"]))


@pytest.mark.parametrize(("code", "state"), [
    ("94607", "CA"), ("10001-1234", "NY"), ("00601", "PR"), ("20001", "DC"),
    ("00000", None), ("9460", None), ("SW1A 1AA", None), ("", None), (None, None),
])
def test_region_of(code, state):
    assert region_of(code) == state


def test_zip5_reads_zip_and_zip_plus_four_only():
    assert [zip5(c) for c in ("94607", "94607-1234", "94607 1234", "946071234", "946071", "A4607")] == \
        ["94607", "94607", "94607", "94607", None, None]


def test_partner_credit_is_the_first_touch_recruiter():
    p = person().model_copy(update={"partners": ("faith-b", "union-a"), "recruited_by": "union-a"})
    assert partner_credit(p) == "union-a"


def test_referral_code_is_short_url_safe_and_keyed():
    code = referral_code("union-a", "rally-1", SECRET)
    assert len(code) == 10
    assert set(code) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert code == referral_code("union-a", "rally-1", SECRET)
    others = {referral_code("faith-b", "rally-1", SECRET), referral_code("union-a", "rally-2", SECRET),
              referral_code("union-a", "rally-1", b"other-secret")}
    assert code not in others and len(others) == 3
    assert "union" not in code



@pytest.mark.parametrize("who, target, asked", [
    (person(), {"postal_codes": ["94607"]}, True),
    (person(consent=("email",)), {"postal_codes": ["94607"]}, True),
    (person(consent=()), {"postal_codes": ["94607"]}, False),
    (person(opted_out=("sms", "email")), {"postal_codes": ["94607"]}, False),
    (person(), {"postal_codes": ["10001"]}, False),
])
def test_may_be_asked_agrees_with_decide_on_whether_any_channel_is_left(who, target, asked):
    a = action(**target)
    assert may_be_asked(who, a, who.postal_code) is asked
    assert bool(decided(who, a).channels) is asked
