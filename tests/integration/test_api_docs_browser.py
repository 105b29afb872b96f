"""/docs and /redoc in a real browser (Debian's headless Chromium), served by uvicorn as `turnout
web` serves the app: they render the API from the app's own assets, under their
Content-Security-Policy, and fetch nothing from any other origin."""

from __future__ import annotations

import threading

import pytest
import uvicorn
from playwright.sync_api import expect
from pydantic import SecretStr

from connectors.accounts.log import MemoryAccountLog
from connectors.web import server
from connectors.web.app import create_app
from connectors.web.door.directory import Directory
from connectors.web.publisher import ListPublisher
from contracts.tallies import TallyBook
from streams.broker import free_port
from streams.settings import Settings
from tests.accounts import started_store
from tests.polling import eventually

from .browsers import chromium

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("docs")
    port = free_port()
    s = Settings(coalition=tmp / "c.toml", organizer_token=SecretStr("t"), person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092")
    uv = uvicorn.Server(server.config(create_app(s, publisher=ListPublisher(), book=TallyBook(), accounts=started_store(MemoryAccountLog()), directory=Directory(b"k", b"r")), s, "127.0.0.1", port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    eventually(lambda: uv.started, timeout=20)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)


@pytest.mark.parametrize("page, rendered", [("/docs", ".opblock-summary-path"), ("/redoc", "[data-section-id]")])
def test_the_api_docs_render_offline_under_their_policy(url, page, rendered):
    with chromium() as browser:
        tab = browser.new_page()
        fetched, blocked, complaints = [], [], []
        tab.on("requestfinished", lambda r: fetched.append(r.url))
        tab.on("requestfailed", lambda r: blocked.append((r.url, r.failure)))
        tab.on("console", lambda m: complaints.append(m.text) if m.type == "error" else None)
        tab.goto(url + page)
        expect(tab.locator(rendered).first).to_be_visible(timeout=30_000)
        assert "/v1/events" in tab.content()
    assert [r for r in fetched if not r.startswith((url, "data:", "blob:"))] == []
    assert blocked == []  # ReDoc's bundle names its maker's logo on their CDN: served without it
    assert complaints == []
