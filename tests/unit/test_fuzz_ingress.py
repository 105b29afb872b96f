"""Schemathesis against the web app's own OpenAPI document: generated requests, valid and
not, each properly signed for POST /v1/events (the signature is over the exact bytes sent).
No answer may be a 5xx, and every 4xx must say what was wrong."""

import json
import tempfile
import time
from pathlib import Path

import schemathesis
from schemathesis.core import NotSet
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from pydantic import SecretStr

from connectors.signing import headers
from connectors.web.app import create_app
from connectors.web.publisher import ListPublisher
from contracts.tallies import TallyBook
from streams.coalition import add_partner
from streams.settings import Settings

TOKEN = "fuzz-organizer-token"
_dir = Path(tempfile.mkdtemp(prefix="turnout-fuzz-"))
SECRET = add_partner(_dir / "coalition.toml", "union-a", "Union A", "union").secret.get_secret_value()
PUBLISHER = ListPublisher()
APP = create_app(
    Settings(coalition=_dir / "coalition.toml", organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092"),
    publisher=PUBLISHER, book=TallyBook(),
)
CLIENT = TestClient(APP)
# Every operation but the event stream, which never ends by design.
schema = schemathesis.openapi.from_dict(APP.openapi()).exclude(path="/dashboard/events")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_5xx_and_every_4xx_says_what_was_wrong(case):
    signed = case.path == "/v1/events"
    body = b"" if isinstance(case.body, NotSet) else case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    h = {k: str(v) for k, v in (case.headers or {}).items()}
    h["content-type"] = "application/json"
    if signed:
        h.update(headers("union-a", SECRET, body, time.time()))
    else:
        h["authorization"] = f"Bearer {TOKEN}"
    before = len(PUBLISHER.records)
    path = case.formatted_path
    r = CLIENT.request(case.method, path, params=case.query, content=body if case.method in ("POST", "PUT") else None, headers=h)

    assert r.status_code < 500, (case.method, path, r.status_code, r.text[:500])
    if 400 <= r.status_code < 500:
        answer = r.json()
        assert isinstance(answer, dict), r.text
        if r.status_code == 422 and "rejected" in answer:
            assert answer["rejected"] and all(rej["errors"] and all(e["field"] and e["message"] for e in rej["errors"]) for rej in answer["rejected"]), answer
        else:
            assert answer.get("detail"), answer
    if signed:
        accepted = r.json().get("accepted", 0) if r.status_code == 202 else 0
        assert len(PUBLISHER.records) - before == accepted  # nothing written that was not accepted
