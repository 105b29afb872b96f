"""What one batch of the events topic writes (``agents.intake.handle_batch``, over the real
tables in memory): one fact per key however often the batch names it, a bad record a dead letter
and never the end of the batch, and nothing before the batch's records are in order."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from agents.intake import handle_batch
from connectors.web.ingress import envelopes
from contracts.asks import TargetAction
from streams.data_keys import MemoryDataKeys
from streams.keys import fact_key
from tests.factories import action, checkin, pledge, rsvp
from tests.fakes import dead_letters, memory_pipeline

SECRET = b"secret"
RECEIVED = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)


def records(items: list[dict], received: datetime = RECEIVED, partner: str = "union-a") -> list[tuple[bytes, bytes]]:
    recs, result = asyncio.run(envelopes(items, partner, received, SECRET, "US", MemoryDataKeys()))
    assert result.accepted == len(items)
    return recs


def batch(recs: list[tuple[bytes | None, bytes | None]]) -> list[SimpleNamespace]:
    return [SimpleNamespace(topic="t.events", partition=0, offset=i, key=k, value=v) for i, (k, v) in enumerate(recs)]


def attendance_writes(p) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(key, value["rsvp"]) for _, key, value in p.attendance.table.changelog]


def test_one_batch_writes_one_fact_per_person_and_the_event_it_names_twice_once():
    yes, maybe = records([rsvp("r1", "rally", phone="+15105550101"), rsvp("r2", "rally", phone="+15105550102")])
    p = memory_pipeline()
    handle_batch(p, batch([yes, maybe, yes]), SECRET)  # the first event again, as a replay or a duplicate post brings it
    person = [k.decode() for k, _ in (yes, maybe)]
    assert attendance_writes(p) == [(fact_key("rally", person[0]), "yes"), (fact_key("rally", person[1]), "yes")]


def test_a_later_event_in_the_same_batch_overwrites_the_earlier_fact_in_order():
    [first] = records([rsvp("r1", "rally", "yes", phone="+15105550101")])
    [changed] = records([rsvp("r2", "rally", "no", phone="+15105550101")], RECEIVED.replace(minute=5))  # received later: it is in force
    p = memory_pipeline()
    handle_batch(p, batch([first, changed]), SECRET)
    key = fact_key("rally", first[0].decode())
    assert attendance_writes(p) == [(key, "yes"), (key, "no")] and p.attendance.get(key).rsvp == "no"


def test_a_bad_record_in_a_batch_is_a_dead_letter_and_the_records_after_it_are_applied():
    [good] = records([rsvp("r1", "rally", phone="+15105550101")])
    p = memory_pipeline()
    handle_batch(p, batch([(b"k", b"\xff not json"), (None, None), good]), SECRET)
    assert [d["reason"] for d in dead_letters(p)] == ["invalid envelope", "empty record (no value)"]
    assert [d["offset"] for d in dead_letters(p)] == [0, 1]  # where each one is, for whoever looks into it
    assert attendance_writes(p) == [(fact_key("rally", good[0].decode()), "yes")]


def test_a_rapid_response_action_posted_again_keeps_the_grace_of_its_first_posting():
    """Posting the action again (a partner's tool re-sending it, or an edit) must not open a new
    grace: planning's ``send_until`` counts the grace from the first posting, so the people who
    signed up since are not texted about an action that started long ago (the probe's finding)."""
    rapid = {**action("alarm"), "rapid_response": True, "templates": {"sms": {"en": "Come now"}}}
    edited = {**rapid, "event_id": "a-alarm-2", "title": "Come now, still"}
    later = RECEIVED + timedelta(hours=3)
    p = memory_pipeline()
    handle_batch(p, batch([*records([rapid]), *records([rapid], later), *records([edited], later)]), SECRET)
    posted = {TargetAction.model_validate_json(value).posted_at for _, value, _ in p.targeting.sent}
    assert posted == {RECEIVED}
    assert p.actions.get("alarm").first_received == RECEIVED and p.actions.get("alarm").action.title == "Come now, still"


def test_an_alerts_grace_counts_by_the_workers_clock_when_it_is_behind_the_web_apps():
    """A rehearsal's workers run on a file clock days behind the web app's, which stamped the
    posting: the grace counts from the workers' time (else an alert whose start the rehearsal
    has not reached seemed long over, or, counted from a later "now", never ended: texts went on
    hours after the start), fixed when the alert is fanned out, so that every partition and every
    later look at it count the same."""
    rapid = {**action("alarm"), "rapid_response": True, "templates": {"sms": {"en": "Come now"}}}
    behind = RECEIVED - timedelta(days=3)
    p = memory_pipeline()
    handle_batch(p, batch(records([rapid])), SECRET, clock=lambda: behind)
    sent = [TargetAction.model_validate_json(value) for _, value, _ in p.targeting.sent]
    assert {(t.posted_at, t.grace_from) for t in sent} == {(RECEIVED, behind)}  # posted_at stays the web app's: plan_again compares it with its stamps


def test_a_checkin_is_withdrawn_only_by_the_partner_credited_with_it():
    """faith-b cannot take back union-a's check-in (a dead letter says why, and nothing is
    written); union-a can, and the person is no longer in."""
    ana = "+15105550101"
    [tap] = records([checkin("c1", "rally", phone=ana)])
    undo = {**checkin("c2", "rally", phone=ana), "withdrawn": True}
    [theirs] = records([undo], RECEIVED.replace(minute=5), partner="faith-b")
    [ours] = records([undo], RECEIVED.replace(minute=6))
    p = memory_pipeline()
    handle_batch(p, batch([tap, theirs]), SECRET)
    key = fact_key("rally", tap[0].decode())
    assert p.attendance.get(key).attended_by == "union-a"
    assert [(d["reason"], d["partner"]) for d in dead_letters(p)] == [
        ("the check-in for 'rally' was posted by 'union-a': only it or the backbone may withdraw it", "faith-b")]
    handle_batch(p, batch([ours]), SECRET)
    assert not p.attendance.get(key).attended and len(dead_letters(p)) == 1


def pledges_of(p, action_id: str) -> dict[str, tuple[int, bool]]:  # noqa: ANN001
    return {raw["partner"]: (raw["count"], raw["inline"]) for key, raw in p.pledges.table.data.items() if key.startswith(f"{action_id}|")}


def round_trip(p, recs: list[tuple[bytes, bytes]]) -> None:  # noqa: ANN001
    """Apply ``recs``, then the inline pledges they sent back to the events topic (as the worker reads them next)."""
    handle_batch(p, batch(recs), SECRET)
    sent, p.events.sent[:] = list(p.events.sent), []
    handle_batch(p, batch([(k.encode(), v) for k, v, _ in sent]), SECRET)


def backbone(items: list[dict], received: datetime = RECEIVED, partner: str = "backbone") -> list[tuple[bytes, bytes]]:
    recs, result = asyncio.run(envelopes(items, partner, received, SECRET, "US", MemoryDataKeys(), role="backbone"))
    assert result.accepted == len(items), result
    return recs


def test_a_later_version_of_an_action_that_no_longer_lists_a_partner_takes_its_inline_pledge_back():
    """The console's edit form lists the action's pledges; an organizer who deletes a line (an
    outside probe: the partner still showed its 15) means that partner no longer pledges."""
    p = memory_pipeline()
    round_trip(p, backbone([action("rally", {"union-a": 40, "faith-b": 15})]))
    assert pledges_of(p, "rally") == {"union-a": (40, True), "faith-b": (15, True)}
    edited = {**action("rally", {"union-a": 45}), "event_id": "a-rally-2"}
    round_trip(p, backbone([edited], RECEIVED + timedelta(minutes=5)))
    assert pledges_of(p, "rally") == {"union-a": (45, True)}
    # The first version posted again late (a retry) is a repeat: nothing comes back.
    round_trip(p, backbone([action("rally", {"union-a": 40, "faith-b": 15})]))
    assert pledges_of(p, "rally") == {"union-a": (45, True)}


def test_both_versions_in_one_batch_leave_only_the_later_versions_pledges():
    """The first version's inline pledges come back through the topic after the second version
    was applied: they are from a version no longer in force, and count for nothing."""
    p = memory_pipeline()
    edited = {**action("rally", {"union-a": 45}), "event_id": "a-rally-2"}
    round_trip(p, backbone([action("rally", {"union-a": 40, "faith-b": 15})]) + backbone([edited], RECEIVED + timedelta(minutes=5)))
    assert pledges_of(p, "rally") == {"union-a": (45, True)}


def test_a_partners_own_pledge_and_a_pledge_its_poster_could_not_list_stay():
    """Dropping a line takes back only an inline pledge the poster could have listed: a member's
    edit of its own action leaves what the backbone listed for another partner, and a partner's own
    pledge is never an inline one to take back."""
    p = memory_pipeline()
    round_trip(p, records([action("rally", {"union-a": 40})]))  # union-a's action
    round_trip(p, backbone([{**action("rally", {"union-a": 40, "faith-b": 15, "tenants": 5}), "event_id": "a-rally-2"}], RECEIVED + timedelta(minutes=1)))
    round_trip(p, records([pledge("own", "rally", 7)], RECEIVED + timedelta(minutes=2), partner="tenants"))
    assert pledges_of(p, "rally") == {"union-a": (40, True), "faith-b": (15, True), "tenants": (7, False)}
    member_edit = {**action("rally", {"union-a": 50}), "event_id": "a-rally-3"}  # a member lists only its own
    round_trip(p, records([member_edit], RECEIVED + timedelta(minutes=5)))
    assert pledges_of(p, "rally") == {"union-a": (50, True), "faith-b": (15, True), "tenants": (7, False)}
    round_trip(p, backbone([{**action("rally", {}), "event_id": "a-rally-4"}], RECEIVED + timedelta(minutes=10)))
    assert pledges_of(p, "rally") == {"tenants": (7, False)}
