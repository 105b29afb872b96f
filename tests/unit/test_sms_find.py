"""``SmsSender.find`` on the fake: the contract the Twilio adapter keeps against the sandbox
(tests/integration/test_sandbox_twilio.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from connectors.providers import FakeSms

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
