"""How the soak's storm reads the sandbox's attempt log (benchmarks/soak/verdicts.py)."""

from collections import Counter

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
