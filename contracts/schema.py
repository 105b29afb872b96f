"""The JSON Schema of partner events, as published under docs/ and by `turnout schema`."""

from __future__ import annotations

import json

from . import SCHEMA_VERSION
from .events import partner_event


def partner_events_schema() -> str:
    schema = partner_event.json_schema()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "turnout partner event",
        "description": f"One event posted to POST /v1/events (schema version {SCHEMA_VERSION}); "
        "the endpoint also takes an array of up to 500.",
        **schema,
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
