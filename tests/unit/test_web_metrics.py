"""The web app's GET /metrics: off by default, behind a bearer token, and no partner ids unless configured."""

import json
import re
import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import SecretStr

from connectors.signing import headers
from connectors.web.app import create_app
from connectors.web.publisher import ListPublisher
from contracts.tallies import TallyBook
from streams.coalition import add_partner
from streams.settings import Settings
from tests.factories import pledge, signup

METRICS_TOKEN = "scrape-token"


@pytest.fixture
def make(tmp_path):
    path = tmp_path / "coalition.toml"
    secrets = {pid: add_partner(path, pid, pid.title(), "union").secret.get_secret_value() for pid in ("union-a", "faith-b")}

    def client(**settings) -> tuple[TestClient, dict[str, str]]:
        s = Settings(coalition=path, organizer_token=SecretStr("organizer"), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092", **settings)
        return TestClient(create_app(s, publisher=ListPublisher(), book=TallyBook())), secrets

    return client


def post(client, secrets, partner, payload, secret=None):
    body = json.dumps(payload).encode()
    return client.post("/v1/events", content=body, headers=headers(partner, secret or secrets[partner], body, time.time()))


def scrape(client, token=METRICS_TOKEN):
    return client.get("/metrics", headers={"Authorization": f"Bearer {token}"})


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_by_default_there_are_no_metrics_to_read(make):
    client, _ = make()  # the settings a deployment gets when it sets nothing
    assert client.get("/metrics").status_code == 404
    assert scrape(client, "anything").status_code == 404


def test_metrics_need_the_bearer_token(make):
    client, _ = make(metrics_token=SecretStr(METRICS_TOKEN))
    for h in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}, {"Authorization": f"Basic {METRICS_TOKEN}"}):
        r = client.get("/metrics", headers=h)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", h
        assert "turnout_" not in r.text
    assert scrape(client).status_code == 200
    # The text format the body is in, as a worker's /metrics says it (an outside probe: "version=1.0.0" here).
    assert scrape(client).headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_metrics_count_accepted_and_refused_events_without_partner_ids_or_personal_data(make):
    client, secrets = make(metrics_token=SecretStr(METRICS_TOKEN))
    before = (value("turnout_events_accepted_total", partner="union-a"), value("turnout_events_rejected_total", reason="signature"), value("turnout_events_rejected_total", reason="invalid_event"))
    post(client, secrets, "union-a", [signup("m1", phone="+15105550188", email="mia@example.org"), {**pledge("m2", "rally-1", 5), "count": -1}])
    post(client, secrets, "faith-b", [pledge("m3", "rally-1", 5)])
    post(client, secrets, "union-a", [pledge("m4", "rally-1", 5)], secret="wrong")
    after = (value("turnout_events_accepted_total", partner="union-a"), value("turnout_events_rejected_total", reason="signature"), value("turnout_events_rejected_total", reason="invalid_event"))
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1]

    text = scrape(client).text
    accepted = re.search(r"^turnout_events_accepted_total (\S+)$", text, re.M)
    every_partner = sum(sample.value for metric in REGISTRY.collect() if metric.name == "turnout_events_accepted"
                        for sample in metric.samples if sample.name == "turnout_events_accepted_total")
    assert accepted and float(accepted[1]) == every_partner  # other tests in this process posted as other partners
    assert every_partner >= value("turnout_events_accepted_total", partner="union-a") + value("turnout_events_accepted_total", partner="faith-b") > 0
    assert re.search(r"^turnout_events_accepted_created \S+$", text, re.M)  # one first-activity time, not one per partner
    assert "partner=" not in text and "union-a" not in text and "faith-b" not in text
    assert 'turnout_events_rejected_total{reason="signature"}' in text and "turnout_tally_lag" in text
    # Only the web app's own families (an outside probe: the workers' were listed too, at zero).
    assert not [name for name in ("turnout_asks", "turnout_provider_", "turnout_consumer_lag") if name in text]
    assert "5550188" not in text and "mia@" not in text


def test_partner_ids_appear_only_when_configured(make):
    client, secrets = make(metrics_token=SecretStr(METRICS_TOKEN), metrics_partner_labels=True)
    assert post(client, secrets, "union-a", [pledge("n1", "rally-1", 5)]).status_code == 202
    text = scrape(client).text
    assert f'turnout_events_accepted_total{{partner="union-a"}} {value("turnout_events_accepted_total", partner="union-a")}' in text


def test_a_body_too_large_is_counted_whether_its_length_is_declared_or_not(make):
    client, secrets = make(metrics_token=SecretStr(METRICS_TOKEN))
    big = b"[" + b" " * (1024 * 1024) + b"]"

    def chunks():
        yield big

    before = value("turnout_events_rejected_total", reason="too_large")
    declared = client.post("/v1/events", content=big, headers=headers("union-a", secrets["union-a"], big, time.time()))
    assert declared.status_code == 413 and value("turnout_events_rejected_total", reason="too_large") == before + 1
    chunked = client.post("/v1/events", content=chunks(), headers=headers("union-a", secrets["union-a"], big, time.time()))
    assert chunked.status_code == 413 and value("turnout_events_rejected_total", reason="too_large") == before + 2
