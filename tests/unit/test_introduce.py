"""RSVPs and check-ins may introduce a person: sign-up fields and consent on `person`, a new
person recruited by the poster, an existing one never overwritten by a thinner record."""

import io
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from agents.intake import handle
from connectors.csv_import import read
from connectors.mobilize import translate
from contracts.events import Envelope, partner_event
from streams.keys import event_person_key, fact_key
from tests.factories import checkin, rsvp, signup
from tests.fake_mobilize import attendance
from tests.fakes import memory_pipeline

SECRET = b"secret"
T = datetime(2026, 11, 22, 15, tzinfo=timezone.utc)
ANA = "+15105550123"


def introducing_rsvp(event_id="r1", **person):
    item = rsvp(event_id, "rally-1", phone=ANA)
    item["person"] |= {"given_name": "Ana", "postal_code": "94607", **person}
    item["consent"] = {"sms": {"granted": True, "scope": "coalition"}}
    return item


def post(p, partner, item, minute=0):
    event = partner_event.validate_python(item)
    key = event_person_key(SECRET, event)
    env = Envelope(partner=partner, received_at=T.replace(minute=minute), person_key=key, event=event)
    handle(p, 0, key, env.model_dump_json().encode(), SECRET)
    return key


def test_rsvp_and_checkin_take_the_signup_fields_and_consent_with_the_same_validation():
    event = partner_event.validate_python(introducing_rsvp())
    assert (event.person.given_name, event.person.postal_code, event.consent.sms.scope) == ("Ana", "94607", "coalition")
    assert event.introduces
    assert not partner_event.validate_python(checkin("c1", "rally-1", email="ana@example.org")).introduces
    item = checkin("c1", "rally-1", email="ana@example.org") | {"consent": {"sms": True}}
    with pytest.raises(ValidationError, match="person.phone is missing"):
        partner_event.validate_python(item)
    with pytest.raises(ValidationError, match="postal_code"):
        partner_event.validate_python(introducing_rsvp(postal_code="!"))


def test_an_introducing_rsvp_creates_the_person_recruited_by_its_poster():
    p = memory_pipeline()
    pk = post(p, "faith-b", introducing_rsvp())
    person = p.people.get(pk)
    assert (person.given_name, person.postal_code, person.recruited_by, person.partners) == ("Ana", "94607", "faith-b", ("faith-b",))
    assert person.consent["sms"].covers_partner("union-a")  # coalition scope, as the form said
    assert p.memberships.get(fact_key("faith-b", pk)) is not None
    assert p.attendance.get(fact_key("rally-1", pk)).rsvp == "yes"
    # A bare RSVP introduces nobody.
    bare = post(p, "faith-b", rsvp("r2", "rally-1", phone="+15105550124"))
    assert p.people.get(bare) is None and p.memberships.get(fact_key("faith-b", bare)) is None


@pytest.mark.parametrize("rsvp_first", [True, False])
def test_an_existing_person_is_never_overwritten_by_a_thinner_record(rsvp_first):
    p = memory_pipeline()
    signed = signup("s1", phone=ANA, given_name="Ana María", at="2026-11-20T10:00:00Z")
    thinner = introducing_rsvp(given_name="A.", language="es")
    steps = [("faith-b", thinner, 5), ("union-a", signed, 1)]
    for partner, item, minute in (steps if rsvp_first else steps[::-1]):
        pk = post(p, partner, item, minute)
    person = p.people.get(pk)
    assert person.given_name == "Ana María"  # the sign-up's, whichever came first
    assert (person.postal_code, person.language) == ("94607", "es")  # gaps filled
    assert person.recruited_by == "union-a" and person.partners == ("faith-b", "union-a")  # received first
    assert person.consent["sms"].scope == "coalition"  # consent is added, never taken away


def test_csv_rsvp_and_checkin_sheets_carry_names_and_consent():
    sheet = "First Name,Phone,ZIP,Text OK,Status\nAna,5105550123,94607,yes,yes\nBen,5105550124,,,no\n"
    rows, problems = read(io.StringIO(sheet), "rsvp", partner="union-a", secret="s", action="rally-1", default_at=T)
    assert problems == []
    ana, ben = (partner_event.validate_python(r.event) for r in rows)
    assert (ana.person.given_name, ana.person.postal_code, ana.consent.sms.granted) == ("Ana", "94607", True)
    assert (ben.status, ben.consent.sms.granted, ben.introduces) == ("no", False, True)
    rows, _ = read(io.StringIO("email\nana@example.org\n"), "checkin", partner="union-a", secret="s", action="rally-1", default_at=T)
    assert not partner_event.validate_python(rows[0].event).introduces


def test_mobilize_attendances_carry_the_person_and_the_text_opt_in():
    att = attendance(1, 7001, "REGISTERED", 1000, phone="5105550123", attended=True)
    att["person"]["sms_opt_in_status"] = "OPT_IN"
    for item in translate(att, "union-a", {"7001": "rally-m"}, {}).events:
        event = partner_event.validate_python(item)
        assert (event.person.given_name, event.person.family_name, event.person.postal_code) == ("P1", "Test", "94607")
        assert event.consent.sms.granted and not event.consent.email.granted
    att["person"]["sms_opt_in_status"] = "UNSPECIFIED"
    (only,) = translate({**att, "attended": None}, "union-a", {"7001": "rally-m"}, {}).events
    assert "consent" not in only
