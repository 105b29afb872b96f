import json
import logging
import logging.config

import pytest

from streams.logs import logging_config, redact


def test_contact_details_are_redacted_as_a_last_line_of_defence():
    assert redact("sent to +15105550123 and ana.b+x@example.org ok") == "sent to <phone> and <email> ok"
    assert redact("offset 1732380000000 partition 3") == "offset 1732380000000 partition 3"  # plain numbers stay
    # National formats too, as the dead letters scrub them (one pattern for both).
    assert redact("call (510) 555-0123 or 510.555.0124, not 510-555-0125") == "call <phone> or <phone>, not <phone>"
    # As spreadsheets and forms write them, with no separator or none after the area code:
    assert redact("cell 6716460107, home (671)646-0107") == "cell <phone>, home <phone>"
    assert redact("mobilize: union-a: 12 attendances, cursor 1764547200") == "mobilize: union-a: 12 attendances, cursor 1764547200"  # a unix time


@pytest.mark.timeout(20)
def test_redacting_a_long_text_takes_time_in_proportion_to_it():
    """An outside probe: a dead letter quoting a 100,000-letter Action Network link held the web
    app's event loop for minutes (the email pattern tried every letter as the start of an address
    and read on to the end from each: a quadratic time; a MiB would take hours). Here a MiB of
    letters, and of letters between dots and at signs, each redacted in well under a second."""
    for text in ("x" * 2**20, "a." * 2**19, ("x" * 1000 + "@") * 1000, "1" * 2**20):
        assert redact(text) == text
    assert redact("x" * 100_000 + " ana@example.org") == "x" * 100_000 + " <email>"


def test_logs_are_one_json_object_per_line_with_the_message_redacted(capsys):
    logging.config.dictConfig(logging_config("json"))
    try:
        logging.getLogger("turnout.test").warning("could not reach %s", "+15105550123")
        line = capsys.readouterr().out.strip().splitlines()[-1]
        record = json.loads(line)
        assert record["message"] == "could not reach <phone>" and record["level"] == "WARNING" and record["logger"] == "turnout.test"
        assert {"time", "pid"} <= set(record)
        # uvicorn's lines carry their message again with terminal colours: left out.
        logging.getLogger("turnout.test").warning("Uvicorn running on %s", "x", extra={"color_message": "Uvicorn running on \x1b[1m%s\x1b[0m"})
        assert set(json.loads(capsys.readouterr().out.strip().splitlines()[-1])) == {"time", "level", "logger", "pid", "message"}
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def test_exceptions_and_tracebacks_are_redacted_too_pydantic_inputs_included(capsys):
    from pydantic import BaseModel, ValidationError

    class Person(BaseModel):
        given_name: int
        friends: list[int]

    logging.config.dictConfig(logging_config("json"))
    try:
        try:
            raise RuntimeError("could not text +15105550123 (ana@example.org)")
        except RuntimeError:
            logging.getLogger("turnout.test").exception("Agent crashed")
        try:
            Person.model_validate({"given_name": "Anastasia Quintero", "friends": ["Bernardo Quiroga"]})
        except ValidationError as exc:
            logging.getLogger("turnout.test").error("invalid: %s", exc)
        out = capsys.readouterr().out
        assert "Agent crashed" in out and "RuntimeError" in out and "Traceback" in out
        for secret in ("+15105550123", "ana@example.org", "Anastasia", "Bernardo"):
            assert secret not in out
        assert "input_value=<redacted>" in out
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def test_a_kafka_clients_repeated_complaint_is_logged_once_per_window_with_how_many_were_left_out(capsys):
    # The broker gone: aiokafka logged some 200 lines a second per process (an outside probe).
    logging.config.dictConfig(logging_config("json"))
    level = logging.getLogger("aiokafka").level
    logging.getLogger("aiokafka").setLevel(logging.NOTSET)  # a CLI test may have quietened the clients
    try:
        [repeats] = logging.getLogger().handlers[0].filters
        now = [0.0]
        repeats.clock = lambda: now[0]
        kafka, ours = logging.getLogger("aiokafka.conn"), logging.getLogger("turnout.test")
        for i in range(500):
            now[0] = i * 0.005  # 200 a second for 2.5 s
            kafka.error("Unable connect to node with id %s: %s", 111, "refused")
            ours.error("ours: %d", i)  # the app's own lines are never held back
        kafka.warning("Unable to update metadata")  # another kind: its own first line
        now[0] = 10.5
        kafka.error("Unable connect to node with id %s: %s", 112, "refused")
        lines = [json.loads(line)["message"] for line in capsys.readouterr().out.strip().splitlines()]
        assert [m for m in lines if not m.startswith("ours")] == [
            "Unable connect to node with id 111: refused", "Unable to update metadata",
            "Unable connect to node with id 112: refused (and 499 more like it in the last 10 s)"]
        assert sum(m.startswith("ours") for m in lines) == 500
    finally:
        logging.getLogger("aiokafka").setLevel(level)
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
