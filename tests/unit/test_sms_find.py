"""``SmsSender.find`` on the fake: the contract the Twilio adapter keeps against the sandbox
(tests/integration/test_sandbox_twilio.py); and the adapter's request body, byte for byte aiohttp's."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from urllib.parse import quote_from_bytes

import pytest
from aiohttp import FormData
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.providers import FakeSms
from connectors.providers.sms import escaped, form_body

T0 = datetime(2026, 5, 1, 17, 0, tzinfo=timezone.utc)


def test_find_returns_the_newest_matching_text_sent_since_and_none_otherwise():
    now = [T0]
    sms = FakeSms(clock=lambda: now[0])

    async def scenario():
        old = await sms.send("+15550001111", "Rally at 6")
        now[0] = T0 + timedelta(minutes=5)
        new = await sms.send("+15550001111", "Rally at 6")
        await sms.send("+15550002222", "Rally at 7")
        return old.sid, new.sid, [
            await sms.find("+15550001111", "Rally at 6", T0),
            await sms.find("+15550001111", "Rally at 6", T0 + timedelta(minutes=6)),
            await sms.find("+15550001111", "Rally at 7", T0),
            await sms.find("+15550002222", "Rally at 7", T0 + timedelta(minutes=5)),
        ]

    old, new, found = asyncio.run(scenario())
    assert found[0] == new != old
    assert found[1:3] == [None, None]
    assert found[3] is not None


def test_find_needs_an_aware_time():
    with pytest.raises(ValueError):
        asyncio.run(FakeSms().find("+15550001111", "hi", datetime(2026, 5, 1)))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Za-z]{1,16}", fullmatch=True), st.one_of(st.text(max_size=200), st.integers(), st.lists(st.text(max_size=20), max_size=3)), max_size=6))
def test_the_adapters_form_body_is_what_aiohttp_would_send(form):
    assert form_body(form) == FormData(form)()._value


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=100).map(str.encode), st.sampled_from([b"", b" ", b"/:", b"%"]))
def test_escaped_is_quote_from_bytes(raw, safe):
    assert escaped(raw, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~" + safe).decode() == quote_from_bytes(raw, safe)


def test_a_texts_form_body_is_what_aiohttp_would_send():
    form = {"To": "+15550001111", "From": "+15005550006", "Body": "Ana: Rally at City Hall, 6 PM. ¿Vienes? 100% & more\nReply YES",
            "StatusCallback": "http://127.0.0.1:8000/v1/providers/twilio/status?ask=a-1%3Ap%3Asms", "ValidityPeriod": 36000,
            "MediaUrl": ["https://example.org/a.png", "https://example.org/b c.png"]}
    assert form_body(form) == FormData(form)()._value


def test_a_text_after_the_loop_was_busy_longer_than_the_servers_keep_alive_is_not_left_in_doubt():
    """The provider closed the idle connection (uvicorn, as the sandbox runs, after 5 s) while the
    worker's loop was busy (a rebalance's recovery): the next text must go on a new connection,
    not be written to the closed one and left in doubt (make test: one text of 2,000 was)."""
    import threading
    import time as clock

    from aiohttp import web
    from pydantic import SecretStr

    from connectors.providers.sms import TwilioSms
    from streams.broker import free_port

    async def create(request):
        return web.json_response({"sid": f"SM{clock.monotonic_ns():032d}"[:34], "num_segments": "1"}, status=201)

    port, ready, loop = free_port(), threading.Event(), asyncio.new_event_loop()

    async def serve():
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", create)
        runner = web.AppRunner(app, keepalive_timeout=5.0)  # uvicorn's default, as the sandbox runs it
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(serve()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)

    async def scenario():
        sms = TwilioSms("AC" + "0" * 32, SecretStr("token"), from_number="+15005550006", base_url=f"http://127.0.0.1:{port}")
        try:
            first = await sms.send("+15105550001", "one")
            clock.sleep(5.5)  # the loop is busy (blocked) past the server's keep-alive: the scenario, not a wait for something
            return first, await sms.send("+15105550002", "two")
        finally:
            await sms.aclose()

    try:
        first, second = asyncio.run(scenario())
        assert first.sid and second.sid
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
