"""The API docs pages load only the app's own scripts, and every page says who may frame it
and what it may load."""

import re

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.web.app import create_app
from connectors.web.docs import script_hash
from connectors.web.publisher import ListPublisher
from contracts.tallies import TallyBook
from streams.settings import Settings


def app_client(tmp_path, **settings) -> TestClient:
    s = Settings(coalition=tmp_path / "c.toml", organizer_token=SecretStr("t"), person_key_secret=SecretStr("k"),
                 kafka_bootstrap_servers="unused:9092", **settings)
    return TestClient(create_app(s, publisher=ListPublisher(), book=TallyBook()))


@pytest.fixture
def client(tmp_path):
    return app_client(tmp_path)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_scripts_from_the_app_itself(client, page):
    r = client.get(page)
    assert r.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert sources and all(src.startswith("/") for src in sources), sources
    for src in sources:
        if src.startswith("/docs/assets/"):
            asset = client.get(src)
            assert asset.status_code == 200 and len(asset.content) > 1000, src
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-eval" not in policy
    assert "cdn" not in policy and "https:" not in policy


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_are_valid_html_with_a_language_and_a_character_set(client, page):
    r = client.get(page)
    html = r.text
    assert '<html lang="en">' in html and re.search(r'<meta charset="utf-8"/?>', html)
    assert "<redoc" not in html  # not an HTML element: ReDoc starts on a div, by an inline script the policy allows
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert scripts and all(f"'sha256-{script_hash(s)}'" in r.headers["content-security-policy"] for s in scripts)


def test_a_docs_asset_refuses_other_methods_naming_get_and_head(client):
    asset = re.search(r'src="(/docs/assets/[^"]+)"', client.get("/docs").text).group(1)
    r = client.post(asset)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert client.head(asset).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/dashboard/login", "/openapi.json", "/healthz", "/v1/tallies"])
def test_every_answer_forbids_sniffing_and_framing_and_carries_a_policy(client, path):
    r = client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    if r.headers["content-type"].startswith("text/html"):
        assert "script-src 'self'" in r.headers["content-security-policy"]


def test_behind_an_https_public_url_every_answer_asks_browsers_to_stay_on_https(tmp_path, client):
    assert "strict-transport-security" not in client.get("/healthz").headers  # plain HTTP (the default): HSTS would be ignored
    https = app_client(tmp_path, public_url="https://turnout.example.org")
    for path in ("/healthz", "/dashboard/login", "/v1/nothing-here"):
        assert https.get(path).headers["strict-transport-security"] == "max-age=31536000", path


@pytest.mark.parametrize("path", ["/v1/tallies", "/v1/exports/tallies.csv", "/dashboard/accounts", "/dashboard/view", "/v1/nothing-here"])
def test_data_answers_are_kept_by_no_cache(client, path):
    assert client.get(path, headers={"Authorization": "Bearer t"}).headers["cache-control"] == "no-store", path


def test_static_files_keep_their_own_cache_rule(client):
    assert client.get("/dashboard/static/dashboard.js").headers["cache-control"] == "no-cache"  # revalidated, not refetched


def test_the_web_apps_own_address_leads_to_the_dashboard(client):
    # An outside probe: the URL `make run` prints answered a JSON 404 to a newcomer opening it.
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/dashboard"
    assert client.head("/", follow_redirects=False).status_code == 307


def test_every_schema_of_the_openapi_document_has_a_title_of_its_own(client):
    """Client generators name models by title: two "Rejection"s (the ingress's and Action
    Network's) made openapi-python-client drop the typed answers of POST /v1/events (an outside
    probe). And a default must be one of its field's own forms, or the generator drops the model."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    titles = [s.get("title", name) for name, s in schemas.items()]
    assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)
    assert schemas["Consent"]["properties"]["sms"]["default"] is False
