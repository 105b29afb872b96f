"""The sandbox's emulation of Twilio's per-sender queue: the pure decisions (slot, expiry, depth)
and the drain that lets texts out at their slots."""

from __future__ import annotations

import asyncio
import time

import pytest

from connectors.sandbox.queue import MAX_QUEUE_SECONDS, Admission, SenderQueues, admit, expires, next_slot, too_deep


def fates(submissions: list[tuple[float, float | None]], mps: float, segments: int = 1) -> list[Admission]:
    """Admit (submitted at, validity) in order behind one sender, as ``SenderQueues`` does:
    each text that leaves holds the sender for its segments / mps."""
    free, out = None, []
    for now, validity in submissions:
        admission = admit(free, now, validity)
        if admission.verdict == "leave":
            free = admission.at + segments / mps
        out.append(admission)
    return out


def test_a_burst_leaves_one_slot_apart_from_the_first_submission():
    slots = [a.at for a in fates([(100.0, None)] * 40, mps=20)]
    assert slots == pytest.approx([100.0 + k / 20 for k in range(40)])


def test_slots_do_not_drift_with_when_texts_arrive():
    # Arrivals spread inside the backlog change nothing: each slot is the previous one + 1/mps.
    slots = [a.at for a in fates([(100.0 + k * 0.01, None) for k in range(10)], mps=5)]
    assert slots == pytest.approx([100.0 + k * 0.2 for k in range(10)])


def test_an_idle_sender_sends_at_once_and_keeps_no_credit():
    assert next_slot(None, 50.0) == 50.0
    assert next_slot(11.0, 50.0) == 50.0  # idle since 11: leaves now, not "back in time"
    assert next_slot(51.0, 50.2) == 51.0


def test_mps_counts_segments_so_a_long_text_holds_its_sender_longer():
    """Twilio's MPS is message segments per second, as the worker predicts it (an outside probe:
    the sandbox let 2-segment texts out at N texts per second, twice the worker's prediction)."""
    assert [a.at for a in fates([(100.0, None)] * 3, mps=5, segments=2)] == pytest.approx([100.0, 100.4, 100.8])

    async def run():
        queues = SenderQueues(5, leave=lambda r: None, expire=lambda r: None)
        queues.hold("+1A", {}, first := queues.admit("+1A", None), segments=3)
        behind = queues.admit("+1A", None)
        await queues.stop()
        return behind.at - first.at

    assert asyncio.run(run()) == pytest.approx(0.6)


def test_a_text_whose_wait_outlasts_its_validity_expires_when_the_validity_ends_and_takes_no_slot():
    first, doomed, behind = fates([(0.0, None), (0.0, 5), (0.0, None)], mps=0.1)  # 10 s per text
    assert first == Admission("leave", 0.0)
    assert doomed == Admission("expire", 5.0)  # would have waited 10 s
    assert behind == Admission("leave", 10.0)  # the slot the doomed one would have taken


def test_a_wait_equal_to_the_validity_still_leaves():
    assert not expires(10.0, 0.0, 10)
    assert expires(10.0, 0.0, 9.99)
    assert not expires(1e9, 0.0, None)
    assert fates([(0.0, None), (0.0, 10)], mps=0.1)[1] == Admission("leave", 10.0)


def test_a_queue_holds_ten_hours_of_mps_and_no_more():
    assert not too_deep(MAX_QUEUE_SECONDS, 0.0) and too_deep(MAX_QUEUE_SECONDS + 0.001, 0.0)
    # At 0.001/s a text leaves every 1,000 s: the first at once, 36 more within 10 hours.
    verdicts = [a.verdict for a in fates([(0.0, None)] * 40, mps=0.001)]
    assert verdicts == ["leave"] * 37 + ["overflow"] * 3
    # Once texts have left, there is room again.
    assert admit(37_000.0, 1_000.5, None).verdict == "leave"


def test_overflow_is_decided_before_validity():
    # A From number refuses the request outright (21611) whatever its validity would have done.
    assert admit(MAX_QUEUE_SECONDS + 1, 0.0, 5).verdict == "overflow"


def test_the_drain_lets_each_sender_out_in_order_never_before_its_slot():
    left: list[tuple[str, float, float]] = []
    expired: list[str] = []

    async def run():
        queues = SenderQueues(50, leave=lambda r: left.append((r["id"], r["slot"], time.time())),
                              expire=lambda r: expired.append(r["id"]))
        for sender in ("+1A", "+1B"):
            for k in range(10):
                admission = queues.admit(sender, None)
                queues.hold(sender, {"id": f"{sender}-{k}", "slot": admission.at}, admission)
        doomed = queues.admit("+1A", 0.05)  # 10 texts ahead at 50/s: a 200 ms wait
        queues.hold("+1A", {"id": "doomed"}, doomed)
        assert queues.waiting == 21
        deadline = time.monotonic() + 5
        while queues.waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await queues.stop()
        return queues.waiting

    assert asyncio.run(run()) == 0
    assert expired == ["doomed"]
    for sender in ("+1A", "+1B"):
        mine = [(i, slot, at) for i, slot, at in left if i.startswith(sender)]
        assert [i for i, _, _ in mine] == [f"{sender}-{k}" for k in range(10)]
        assert all(at >= slot for _, slot, at in mine)
    # The senders do not wait on each other: B's first text left before A's second.
    order = [i for i, _, _ in left]
    assert order.index("+1B-0") < order.index("+1A-1")


def test_stopping_drops_what_still_waits():
    left: list[dict] = []

    async def run():
        queues = SenderQueues(0.001, leave=left.append, expire=left.append)
        for k in range(3):
            queues.hold("+1A", {"id": k}, queues.admit("+1A", None))
        queues.hold("+1A", {"id": "x"}, queues.admit("+1A", 60))
        await asyncio.sleep(0.01)
        await queues.stop()
        return queues.waiting

    assert asyncio.run(run()) == 0  # the first left; the two behind it and the timer are dropped
    assert [r["id"] for r in left] == [0]
