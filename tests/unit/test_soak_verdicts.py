"""How the soak reads its evidence: the storm the sandbox's attempt log (benchmarks/soak/verdicts.py), the
fan-out the asks changelog (benchmarks/soak/outreach.py)."""

from collections import Counter

from benchmarks.soak.outreach import ask_errors, undelivered
from benchmarks.soak.verdicts import expected_tallies, storm_verdicts, verdict


def test_each_sequence_of_answers_has_its_verdict():
    assert verdict(["429", "5xx", "ok"], attempts=8) == "accepted"
    assert verdict(["ok", "ok"], attempts=8) == "double"
    assert verdict(["429", "21211"], attempts=8) == "refused"
    assert verdict(["21211", "21211"], attempts=8) == "resent"  # a permanent failure sent again
    assert verdict(["ok", "429"], attempts=8) == "resent"  # sent again after it was accepted
    assert verdict(["5xx", "timeout"], attempts=8) == "in_doubt"
    assert verdict(["429"] * 8, attempts=8) == "exhausted"
    assert verdict(["429", "5xx"], attempts=8) == "pending"  # still being retried
    assert verdict([], attempts=8) == "pending"  # not attempted yet


def test_an_email_request_counts_for_each_of_its_recipients_and_the_tallies_follow():
    log = [{"channel": "sms", "to": ["+15105550001"], "outcome": "ok"},
           {"channel": "sms", "to": ["+15105550002"], "outcome": "21610"},
           {"channel": "email", "to": ["a@example.org", "b@example.org"], "outcome": "timeout"},
           {"channel": "sms", "to": ["+15105550003"], "outcome": "ok"}]
    asks = [("sms", "+15105550001"), ("sms", "+15105550002"), ("sms", "+15105550003"), ("email", "a@example.org"), ("email", "b@example.org")]
    verdicts = storm_verdicts(log, asks, attempts=8)
    assert Counter(verdicts.values()) == {"accepted": 2, "refused": 1, "in_doubt": 2}
    landline = {("sms", "+15105550003")}  # accepted, then undelivered in the callback
    assert expected_tallies(verdicts, landline) == {"asked_sms": 3, "asked_email": 2, "delivered": 1, "failed": 2, "in_doubt": 2}


def test_the_fan_out_reads_why_from_the_asks_changelog():
    def fact(status: str, at: str, error: str | None = None, action: str = "rally") -> dict:
        return {"status": status, "channel": "sms", "action_id": action, "updated_at": f"2026-11-24T{at}+00:00", "error": error}

    history = {
        b"rally:p1:sms": [(0, 1, fact("planned", "18:00:00.000")), (0, 7, fact("sending", "18:00:01.000")), (0, 9, fact("delivered", "18:00:02.000"))],
        b"rally:p2:sms": [(1, 3, fact("sending", "18:00:01.500")), (1, 8, fact("delivered", "18:00:03.000")), (1, 12, fact("sent", "18:00:04.250"))],
        b"rally:p3:sms": [(2, 4, fact("sending", "18:00:01.000")), (2, 5, fact("in_doubt", "18:00:09.000", "no answer"))],
        b"warm-up:p4:sms": [(3, 2, fact("sent", "17:59:00.000", action="warm-up"))],
        b"rally:p5:sms": [(3, 6, fact("planned", "18:00:00.000")), (3, 10, None)],
    }
    assert ask_errors(history) == {"no answer": 1}
    assert undelivered(history) == [
        "rally:p2:sms: sending 18:00:01.500 p1@3 → delivered 18:00:03.000 p1@8 → sent 18:00:04.250 p1@12",
        "rally:p3:sms: sending 18:00:01.000 p2@4 → in_doubt 18:00:09.000 p2@5",
    ]
    assert undelivered(history, limit=1) == undelivered(history)[:1]
