"""Who may be asked for which action: consent scope (partner or coalition) against an action's
sponsors (its owner and the partners that co-sponsor it with a pledge of their own)."""

from datetime import datetime, timezone

import pytest

from agents.outreach.eligibility import decide, partner_credit
from agents.outreach.planning import OutreachPolicy, plan
from agents.people import merge_person
from contracts.events import ActionEvent, SignupEvent
from tests.factories import action, signup

T = datetime(2026, 11, 22, 15, tzinfo=timezone.utc)
ACTION = ActionEvent.model_validate({**action("rally-1"), "templates": {"sms": {"en": "Rally {rsvp_link}"}}})


def signed_up(*grants: tuple[str, str]):
    """A person signed up by each (partner, scope) in ``grants``, with SMS consent."""
    person = None
    for i, (partner, scope) in enumerate(grants):
        item = signup(f"s{i}", phone="+15105550123", postal_code="94607")
        item["consent"] = {"sms": {"granted": True, "scope": scope}}
        person = merge_person(person, SignupEvent.model_validate(item), partner, "pk", T)
    return person


@pytest.mark.parametrize("grants, sponsors, asked", [
    # A member's alert reaches the people whose consent covers it ...
    ([("union-a", "partner")], {"union-a"}, True),
    # ... never those whose consent covers only another partner,
    ([("faith-b", "partner")], {"union-a"}, False),
    # unless that partner co-sponsors the action;
    ([("faith-b", "partner")], {"union-a", "faith-b"}, True),
    # consent given to the whole coalition covers every sponsor, the backbone's alerts included;
    ([("faith-b", "coalition")], {"union-a"}, True),
    ([("faith-b", "coalition")], {"backbone"}, True),
    # a backbone alert reaches a partner's own people only if that partner co-sponsors it.
    ([("faith-b", "partner")], {"backbone"}, False),
    ([("faith-b", "partner"), ("union-a", "partner")], {"union-a"}, True),
    ([("faith-b", "partner"), ("seniors-c", "partner")], {"union-a", "backbone"}, False),
])
def test_an_ask_needs_consent_that_covers_a_sponsor(grants, sponsors, asked):
    verdict = decide(signed_up(*grants), ACTION, recent_asks=0, cap=3, sponsors=frozenset(sponsors))
    assert ("sms" in verdict.channels) == asked
    if not asked:
        assert verdict.reasons["sms"] == "consent covers no sponsor"


def test_credit_goes_to_a_sponsor_whose_consent_covers_the_person():
    person = signed_up(("faith-b", "partner"), ("union-a", "partner"))
    assert person.recruited_by == "faith-b"
    assert partner_credit(person, frozenset({"union-a", "backbone"})) == "union-a"
    assert partner_credit(person, frozenset({"faith-b", "union-a"})) == "faith-b"  # the recruiter, when it sponsors


def test_someone_who_consented_for_the_whole_coalition_is_asked_on_behalf_of_the_actions_owner():
    """An outside probe: tenants-c's people with coalition-wide consent got union-a's alert as
    "Grace Congregation: …", credited to faith-b, the co-sponsor whose id sorts first."""
    from agents.outreach.eligibility import sponsor_order

    person = signed_up(("tenants-c", "coalition"))
    assert partner_credit(person, sponsor_order("union-a", ["faith-b", "seniors-d"])) == "union-a"
    assert partner_credit(person, sponsor_order("union-a", ["tenants-c", "faith-b"])) == "tenants-c"  # its recruiter sponsors it
    only_members = signed_up(("faith-b", "partner"), ("seniors-d", "partner"))
    assert partner_credit(only_members, sponsor_order("union-a", ["seniors-d", "faith-b"])) == "faith-b"  # its recruiter again


def test_each_channels_ask_is_sent_on_behalf_of_a_sponsor_whose_consent_on_that_channel_covers_the_person():
    """Texts allowed by union-a, emails by comm-c only: the email is not sent "on behalf of"
    union-a, whose consent does not cover it (both asks were credited to the SMS's sponsor)."""
    person = None
    for i, (partner, channel) in enumerate((("union-a", "sms"), ("comm-c", "email"))):
        item = signup(f"s{i}", phone="+15105550123", email="ana@example.org", postal_code="94607")
        item["consent"] = {channel: {"granted": True, "scope": "partner"}}
        person = merge_person(person, SignupEvent.model_validate(item), partner, "pk", T)
    sponsors = frozenset({"union-a", "comm-c"})
    assert (partner_credit(person, sponsors, "sms"), partner_credit(person, sponsors, "email")) == ("union-a", "comm-c")
    both = ActionEvent.model_validate({**action("rally-1"), "templates": {"sms": {"en": "Rally"}, "email": {"en": {"subject": "Rally", "body": "Rally"}}}})
    text, email = plan(person, both, None, set(), T, OutreachPolicy(), sponsors=sponsors)
    assert (text.partner, email.partner) == ("union-a", "comm-c")
    assert text.body.startswith("union-a: Rally") and "Sent on behalf of comm-c." in email.body and "union-a" not in email.body


def test_intake_fans_an_alert_out_with_its_owner_and_co_sponsors_and_refuses_a_hijack():

    from agents.intake import handle
    from contracts.asks import TargetAction
    from contracts.events import Envelope
    from tests.factories import pledge
    from tests.fakes import dead_letters, memory_pipeline

    p = memory_pipeline()
    alert = {**action("vigil"), "rapid_response": True, "templates": {"sms": {"en": "Vigil tonight"}}}

    def post(partner, item, role="member", minute=0):
        env = Envelope(partner=partner, role=role, received_at=T.replace(minute=minute), event=item)
        handle(p, 0, "k", env.model_dump_json().encode(), b"secret")

    post("union-a", action("vigil"), minute=0)
    post("faith-b", pledge("fb-1", "vigil", 12), minute=1)     # faith-b co-sponsors
    post("seniors-c", {**alert, "title": "Hijacked"}, minute=2)  # not the owner: refused
    post("union-a", alert, minute=3)                            # the owner's alert goes out
    targets = [TargetAction.model_validate_json(v) for _, v, _ in p.targeting.sent]
    assert {(t.partner, t.sponsors, t.action.title) for t in targets} == {("union-a", ("union-a", "faith-b"), "Rally for fair funding")}  # the owner first
    assert p.actions.get("vigil").partner == "union-a"
    assert [d["reason"] for d in dead_letters(p)] == ["action 'vigil' belongs to 'union-a': only it or the backbone may change it"]
    assert dead_letters(p)[0]["partner"] == "seniors-c"
