"""Schemathesis against the web app's own OpenAPI document: generated requests, valid and
not, each properly signed for POST /v1/events (the signature is over the exact bytes sent).
No answer may be a 5xx, and every 4xx must say what was wrong.

The app is built for each test with fakes for its broker-facing ports (publisher, tally book,
erasure reports), so a request that passes validation runs its handler to the end instead of
failing on a broker that is not there. (The forget route's documented examples are what get a
generated request past its validation.)"""

import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import schemathesis
from schemathesis.core import NotSet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from pydantic import SecretStr

from connectors.signing import headers
from connectors.web.app import create_app
from connectors.web.publisher import ListPublisher
from contracts.erasure import ErasureReport
from contracts.tallies import TallyBook
from streams.coalition import add_partner
from streams.settings import Settings

TOKEN = "fuzz-organizer-token"


class EveryPartitionReports:
    """Erasure reports as if every partition's worker had answered at once."""

    async def wait(self, request_id: str, partitions: int, timeout: float) -> list[ErasureReport]:
        at = datetime.now(timezone.utc)
        return [ErasureReport(request_id=request_id, partition=p, at=at) for p in range(partitions)]


def make_app(coalition: Path, publisher: ListPublisher) -> FastAPI:
    s = Settings(coalition=coalition, organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    return create_app(s, publisher=publisher, book=TallyBook(), erasures=EveryPartitionReports())


@pytest.fixture
def web(tmp_path):
    path = tmp_path / "coalition.toml"
    secret = add_partner(path, "union-a", "Union A", "union").secret.get_secret_value()
    publisher = ListPublisher()
    return TestClient(make_app(path, publisher)), publisher, secret


# The operations come from the OpenAPI document of an app built here, once; each test then
# builds its own (`web`). schemathesis.pytest.from_fixture would spare this one, but it fails
# under pytest 9 (it reads Function._nodeid, which pytest 9.2 no longer has).
with tempfile.TemporaryDirectory() as _dir:
    DOCUMENT = make_app(Path(_dir) / "coalition.toml", ListPublisher()).openapi()
# Every operation but the event stream, which never ends by design.
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path="/dashboard/events")


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_5xx_and_every_4xx_says_what_was_wrong(case, web):
    client, publisher, secret = web
    signed = case.path == "/v1/events"
    body = b"" if isinstance(case.body, NotSet) else case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    h = {k: str(v) for k, v in (case.headers or {}).items()}
    h["content-type"] = "application/json"
    if signed:
        h.update(headers("union-a", secret, body, time.time()))
    else:
        h["authorization"] = f"Bearer {TOKEN}"
    before = len(publisher.records)
    path = case.formatted_path
    r = client.request(case.method, path, params=case.query, content=body if case.method in ("POST", "PUT") else None, headers=h)

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
        assert len(publisher.records) - before == accepted  # nothing written that was not accepted
