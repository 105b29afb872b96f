"""Internal records can evolve across a rolling deploy; partner events stay strict."""

import pytest
from pydantic import ValidationError

from contracts.asks import AskCommand, AskFact, TargetAction
from contracts.events import Envelope, partner_event
from contracts.facts import ActionRecord, Attendance, PersonRecord
from contracts.providers import ProviderEnvelope
from tests.factories import action, signup

T = "2026-11-22T15:00:00Z"
ASK = {"ask_id": "a:p0:sms", "action_id": "a", "person_key": "p0", "channel": "sms", "partner": "union-a"}
INTERNAL = [
    (Envelope, {"partner": "union-a", "received_at": T, "person_key": "p0", "event": signup("s1", phone="+15105550123")}),
    (TargetAction, {"partner": "union-a", "action": action("a")}),
    (AskCommand, {**ASK, "referral": "r", "to": "+15105550123", "body": "hi", "planned_at": T}),
    (AskFact, {**ASK, "status": "sent", "updated_at": T}),
    (ProviderEnvelope, {"person_key": "p0", "received_at": T, "event": {"kind": "sms_reply", "message_sid": "SM1", "keyword": "YES"}}),
    (PersonRecord, {"person_key": "p0", "recruited_by": "union-a", "recruited_at": T, "updated_at": T}),
    (Attendance, {"action_id": "a", "person_key": "p0"}),
    (ActionRecord, {"partner": "union-a", "action": action("a")}),
]


@pytest.mark.parametrize("model, record", INTERNAL, ids=lambda x: getattr(x, "__name__", ""))
def test_a_record_written_by_a_newer_worker_is_read_by_an_older_one(model, record):
    newer = {**record, "version": 2, "field_from_the_future": {"any": "thing"}}
    assert model.model_validate(newer) == model.model_validate({**record, "version": 2} if "version" in model.model_fields else record)


def test_partner_events_stay_strict_even_inside_an_envelope():
    with pytest.raises(ValidationError):
        partner_event.validate_python({**signup("s1", phone="+15105550123"), "colour": "red"})
    with pytest.raises(ValidationError):
        Envelope.model_validate({"partner": "union-a", "received_at": T, "event": {**action("a"), "colour": "red"}})
