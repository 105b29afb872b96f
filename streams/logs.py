"""Logging for every turnout process: one JSON object per line (``TURNOUT_LOG_FORMAT=json``, the
default) or plain text, and a last-line redaction of the whole formatted line, exception text
and traceback included: anything shaped like an email address or a phone number (E.164 or a US national format), and
the input values pydantic puts in its error messages (``input_value=…``: names, addresses).
The code never logs contact details; the formatter is the safety net."""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

#: An address begins where a run of the characters it is made of begins (the look-behind): tried
#: from every character of a long run instead, the pattern took a time quadratic in its length.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: E.164; US national formats with separators (``(510) 555-0123``, ``(510)555-0123``); and ten
#: bare digits shaped like a US number (area code and exchange from 2: a unix time starts with 1).
_PHONE = re.compile(r"\+\d{8,15}\b|\(?\b\d{3}\)?[ .-]?\d{3}[ .-]\d{4}\b|\b[2-9]\d{2}[2-9]\d{6}\b")
# pydantic: "input_value='Ana', input_type=str" / input_value={'given_name': 'Ana', ...}
_INPUT = re.compile(r"input_value=(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\{.*?\}(?=, input_type)|\[.*?\](?=, input_type)|[^,\]\n]*)")


def scrubbed(text: str) -> str:
    """``text`` with anything shaped like a phone number or an email address replaced."""
    return _PHONE.sub("<phone>", _EMAIL.sub("<email>", text))


def redact(text: str) -> str:
    return scrubbed(_INPUT.sub("input_value=<redacted>", text))


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class Repeats(logging.Filter):
    """The Kafka clients' warnings and errors, once per ``window`` seconds per kind (logger and
    message template): with the broker gone, aiokafka logs "Unable connect to node …" and "Failed
    fetch messages …" some 200 times a second (an outside probe: 9,000 lines in 50 s, about 700k
    an hour). The first of a kind passes; the next after the window passes with how many were
    left out meanwhile."""

    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window, self.clock = window, clock
        self._since: dict[tuple[str, object], tuple[float, int]] = {}  # kind → (when one last passed, left out since)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(("aiokafka", "kafka")):
            return True
        kind, now = (record.name, record.msg), self.clock()
        passed, left_out = self._since.get(kind, (None, 0))
        if passed is not None and now - passed < self.window:
            self._since[kind] = (passed, left_out + 1)
            return False
        self._since[kind] = (now, 0)
        if left_out:
            record.msg, record.args = f"{record.getMessage()} (and {left_out} more like it in the last {now - passed:.0f} s)", ()
        return True


def logging_config(fmt: str = "json", level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for Faust's worker, uvicorn and the CLI."""
    formatter: dict[str, Any] = (
        {"()": RedactingJsonFormatter, "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
         "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
         "reserved_attrs": [*RESERVED_ATTRS, "color_message"]}  # uvicorn's message again, with terminal colours
        if fmt == "json"
        else {"()": RedactingFormatter, "format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"repeats": {"()": Repeats}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stdout", "filters": ["repeats"]}},
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {
            "twilio": {"level": "WARNING"},  # the SDK logs every request at INFO, recipient included
            "uvicorn.access": {"level": "WARNING"},
        },
    }
