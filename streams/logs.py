"""Logging for every turnout process: one JSON object per line (``TURNOUT_LOG_FORMAT=json``, the
default) or plain text, and a last-line redaction of anything shaped like an email address or
an E.164 phone number. The code never logs contact details; the filter is the safety net."""

from __future__ import annotations

import logging
import re
from typing import Any

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_PHONE = re.compile(r"\+\d{8,15}\b")


def redact(text: str) -> str:
    return _PHONE.sub("<phone>", _EMAIL.sub("<email>", text))


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def logging_config(fmt: str = "json", level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for Faust's worker, uvicorn and the CLI."""
    formatter: dict[str, Any] = (
        {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
         "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"}}
        if fmt == "json"
        else {"format": "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"redact": {"()": Redact}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["redact"], "stream": "ext://sys.stdout"}},
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {
            "twilio": {"level": "WARNING"},  # the SDK logs every request at INFO, recipient included
            "uvicorn.access": {"level": "WARNING"},
        },
    }
