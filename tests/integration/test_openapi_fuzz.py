"""Schemathesis, every check, against the web app served as `turnout web` serves it (uvicorn with
the bounded protocol), with fakes behind its broker-facing ports so every request runs its
handler to the end. Twice: signed (every credential the document declares, valid) and
unsigned (none). Zero failures in both.

The run's size: ``TURNOUT_FUZZ_EXAMPLES`` examples per operation (default 25, about a minute
for both runs) and ``TURNOUT_FUZZ_PHASES``. Full size (README, "Testing the HTTP API"):
``make fuzz``, 1000 examples and every phase.

Schemathesis cannot sign a body it has not serialized yet, so the credentials it sends are the
placeholder ``sign-me`` and ``Signer``, an ASGI wrapper in front of the app, swaps each for a
real signature over the exact bytes that arrived. A credential that is not the placeholder
(schemathesis's own "invalid auth" probes) is passed on as it is, and refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import uvicorn
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from connectors.sandbox.signing import EventSigner
from connectors.signing import signature
from connectors.accounts.log import MemoryAccountLog
from connectors.web import server
from connectors.web.app import create_app
from connectors.web.door.directory import Directory
from connectors.web.publisher import ListPublisher
from contracts.erasure import ErasureReport
from contracts.facts import Pledge
from contracts.tallies import TallyBook
from streams.broker import free_port
from streams.coalition import add_partner, rotate_action_network_token
from streams.settings import Settings
from tests.accounts import started_store
from tests.polling import eventually

pytestmark = pytest.mark.integration

PLACEHOLDER = b"sign-me"
TOKEN = "fuzz-organizer-token"
TWILIO_TOKEN = "fuzz-twilio-token"
EXAMPLES = int(os.environ.get("TURNOUT_FUZZ_EXAMPLES", "25"))
PHASES = os.environ.get("TURNOUT_FUZZ_PHASES", "examples,coverage,fuzzing")
SIGNED = ["X-Turnout-Partner: union-a", "X-Turnout-Timestamp: sign-me", "X-Turnout-Signature: sign-me",
          f"Authorization: Bearer {TOKEN}", "X-Twilio-Signature: sign-me",
          "X-Twilio-Email-Event-Webhook-Signature: sign-me", "X-Twilio-Email-Event-Webhook-Timestamp: sign-me"]


# Three operations validate more than JSON Schema can say: a phone number must exist in its
# numbering plan, an email must be deliverable in form, a time zone must be in the IANA
# database, templates may use only known placeholders, a sign-up needs a phone or an email.
# A schema-valid request that breaks one of those is answered 422 naming the field (documented
# in the OpenAPI document), so 422 is an expected answer to positive data there, and only there.
# The Action Network route is reached with its partner's real URL token, an action's tallies
# with the id of the one action the tally book holds.
CONFIG = """
[[operations]]
include-path = "/v1/events"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422"]

[[operations]]
include-path = "/v1/people/forget"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "422"]

# Who may invite whom depends on who asks (an organizer names the partner of an admin or a
# viewer; an admin only its own partner's staff), and the address must be deliverable in form.
[[operations]]
include-path = "/dashboard/accounts"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "422"]

[[operations]]
include-path = "/v1/partners/{{partner_id}}/action-network/{{token}}"
parameters = {{ "path.partner_id" = "union-a", "path.token" = "{token}" }}

[[operations]]
include-path = "/v1/actions/{{action_id}}/tallies"
parameters = {{ "path.action_id" = "rally-1" }}
"""


class EveryPartitionReports:
    """Erasure reports as if every partition's worker had answered at once."""

    async def wait(self, request_id: str, partitions: int, timeout: float) -> list[ErasureReport]:
        return [ErasureReport(request_id=request_id, partition=p, at=datetime.now(timezone.utc)) for p in range(partitions)]


class NoLinks:
    """No identifier linked to another yet (the identities changelog, as the erasure reads it)."""

    async def entries(self) -> dict[str, str]:
        return {}


class Signer:
    """Replaces placeholder credentials with valid ones, over the body as it arrived."""

    def __init__(self, app, partner_secret: str, public_url: str, events: EventSigner) -> None:
        self.app, self.partner_secret, self.public_url, self.events = app, partner_secret, public_url, events

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not any(v == PLACEHOLDER for _, v in scope["headers"]):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False) and message["type"] == "http.request"
        headers = dict(scope["headers"])
        now = int(time.time())
        if headers.get(b"x-turnout-signature") == headers.get(b"x-turnout-timestamp") == PLACEHOLDER:
            headers[b"x-turnout-timestamp"] = str(now).encode()
            headers[b"x-turnout-signature"] = signature(self.partner_secret, now, body).encode()
        if headers.get(b"x-twilio-signature") == PLACEHOLDER:
            query = scope["query_string"].decode()
            url = self.public_url + scope["path"] + (f"?{query}" if query else "")
            try:
                form = dict(parse_qsl(body.decode(), keep_blank_values=True))
            except UnicodeDecodeError:
                form = {}
            headers[b"x-twilio-signature"] = RequestValidator(TWILIO_TOKEN).compute_signature(url, form).encode()
        if headers.get(b"x-twilio-email-event-webhook-signature") == headers.get(b"x-twilio-email-event-webhook-timestamp") == PLACEHOLDER:
            signed = self.events.headers(body, now)
            headers.update({k.lower().encode(): v.encode() for k, v in signed.items()})
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": list(headers.items())}, replay, send)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    secret = add_partner(tmp / "coalition.toml", "union-a", "Union A", "union").secret.get_secret_value()
    (tmp / "schemathesis.toml").write_text(CONFIG.format(token=rotate_action_network_token(tmp / "coalition.toml", "union-a")))
    events = EventSigner()
    s = Settings(coalition=tmp / "coalition.toml", organizer_token=SecretStr(TOKEN), person_key_secret=SecretStr("k"),
                 kafka_bootstrap_servers="unused:9092", public_url=public, twilio_auth_token=SecretStr(TWILIO_TOKEN),
                 sendgrid_public_key=events.public_key)
    book = TallyBook()
    book.apply("pledge", "rally-1|union-a", Pledge(action_id="rally-1", partner="union-a", count=40, occurred_at=datetime.now(timezone.utc), event_id="p1"))
    app = create_app(s, publisher=ListPublisher(), book=book, erasures=EveryPartitionReports(), accounts=started_store(MemoryAccountLog()),
                     identity_links=NoLinks(), directory=Directory(b"k", b"door reference"))
    uv = uvicorn.Server(server.config(Signer(app, secret, public, events), s, "127.0.0.1", port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    eventually(lambda: uv.started, timeout=20)
    yield public, tmp
    uv.should_exit = True
    thread.join(10)


@pytest.mark.parametrize("credentials", ["signed", "unsigned"])
def test_schemathesis_with_every_check_finds_nothing(served, credentials):
    url, tmp = served
    report = tmp / f"schemathesis-{credentials}.txt"
    args = [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(tmp / "schemathesis.toml"), "run", f"{url}/openapi.json", "--checks", "all",
            "--phases", PHASES, "--max-examples", str(EXAMPLES), "--seed", "13", "--workers", "1",
            "--exclude-path", "/dashboard/events",  # a live event stream: it never ends, by design
            "--request-timeout", "30", "--no-color"]
    for header in SIGNED if credentials == "signed" else []:
        args += ["-H", header]
    with open(report, "w") as out:
        done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, timeout=3600, cwd=tmp)  # its cache goes there too
    text = report.read_text()
    assert done.returncode == 0, text[-12000:]
    assert re.search(r"(\d+) generated, \1 passed", text), text[-3000:]  # every case generated passed
