from itertools import permutations

from agents.people import membership, merge_person
from contracts.events import SignupEvent
from streams.keys import person_key
from tests.factories import signup

SECRET = b"coalition-secret"


def event(event_id, at="2026-11-22T15:00:00Z", consent=None, **kw):
    item = signup(event_id, at=at, **kw)
    if consent is not None:
        item["consent"] = consent
    return SignupEvent.model_validate(item)


def merged(pairs, key="pk"):
    record = None
    for partner, ev in pairs:
        record = merge_person(record, ev, partner, key)
    return record


def test_person_key_is_a_keyed_hash_of_phone_else_email():
    k = person_key(SECRET, "+15105550123", "ana@example.org")
    assert k == person_key(SECRET, "+15105550123", None)
    assert k != person_key(b"other-secret", "+15105550123", None)
    assert k != person_key(SECRET, None, "ana@example.org")
    assert k.startswith("p") and len(k) == 33
    assert "5105550123" not in k


def test_merge_keeps_one_record_with_every_membership_and_the_first_recruiter():
    a = ("union-a", event("a1", at="2026-11-20T10:00:00Z", phone="+15105550123", given_name="Ana"))
    b = ("faith-b", event("b1", at="2026-11-21T10:00:00Z", phone="+15105550123", email="ana@example.org"))
    c = ("seniors-c", event("c1", at="2026-11-22T10:00:00Z", phone="+15105550123", postal_code="94607"))
    records = [merged(order) for order in permutations([a, b, c])]
    assert all(r == records[0] for r in records), "the merge must not depend on arrival order"
    record = records[0]
    assert record.partners == ("faith-b", "seniors-c", "union-a")
    assert record.recruited_by == "union-a"
    assert (record.given_name, record.email, record.postal_code) == ("Ana", "ana@example.org", "94607")


def test_merge_is_idempotent():
    a = ("union-a", event("a1", phone="+15105550123", given_name="Ana"))
    once = merged([a])
    assert merged([a, a, a]) == once


def test_the_newest_signup_wins_profile_fields_and_older_ones_only_fill_gaps():
    old = ("union-a", event("a1", at="2026-11-20T10:00:00Z", phone="+15105550123", given_name="Ana", postal_code="94601"))
    new = ("faith-b", event("b1", at="2026-11-21T10:00:00Z", phone="+15105550123", postal_code="94607"))
    for order in ([old, new], [new, old]):
        record = merged(order)
        assert record.postal_code == "94607" and record.given_name == "Ana"


def test_a_signup_without_consent_never_revokes_consent_given_elsewhere():
    granted = ("union-a", event("a1", phone="+15105550123"))
    silent = ("faith-b", event("b1", at="2026-11-23T10:00:00Z", phone="+15105550123", consent={}))
    for order in ([granted, silent], [silent, granted]):
        record = merged(order)
        assert record.consent["sms"].granted and record.consent["sms"].partner == "union-a"
        assert "email" not in record.consent


def test_first_touch_ties_go_to_the_smaller_partner_id():
    a = ("zeta", event("z1", phone="+15105550123"))
    b = ("alpha", event("a1", phone="+15105550123"))
    assert merged([a, b]).recruited_by == merged([b, a]).recruited_by == "alpha"


def test_membership_dates_from_the_first_signup():
    from datetime import datetime, timezone

    t1, t2 = datetime(2026, 11, 20, tzinfo=timezone.utc), datetime(2026, 11, 21, tzinfo=timezone.utc)
    assert membership(membership(None, "u", "pk", t2), "u", "pk", t1).joined_at == t1
    assert membership(membership(None, "u", "pk", t1), "u", "pk", t2) == membership(None, "u", "pk", t1)


def test_a_signup_naming_phone_and_email_marks_when_its_link_was_sent_and_merged_records_keep_the_latest():
    from datetime import datetime, timezone

    from agents.people import join_people

    t1, t2 = datetime(2026, 11, 22, 15, 1, tzinfo=timezone.utc), datetime(2026, 11, 22, 15, 2, tzinfo=timezone.utc)
    both = merge_person(None, event("s1", phone="+15105550123", email="ana@example.org"), "union-a", "pk", t1)
    assert both.link_sent_at == t1
    phone_only = merge_person(both, event("s2", phone="+15105550123"), "faith-b", "pk", t2)
    assert phone_only.link_sent_at == t1  # a sign-up with one identifier sends no link
    assert merge_person(None, event("s3", phone="+15105550123"), "union-a", "pk", t1).link_sent_at is None
    later = merge_person(None, event("s4", phone="+15105550199", email="ana@example.org"), "union-a", "pe", t2)
    assert join_people(both, later, "pk").link_sent_at == t2 == join_people(later, both, "pk").link_sent_at
    assert join_people(both, phone_only, "pk").link_sent_at == t1
