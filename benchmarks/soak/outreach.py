"""Rapid-response outreach under worker SIGKILLs, judged by what the sandbox received.

- ``fan_out``: ``people`` people signed up through the ingress, then one rapid-response action
  texts them all through the sandbox's Twilio queue (``sms_mps`` texts per second leave it; the
  workers' ``TURNOUT_SMS_RATE`` is the same) while the longest-running of two workers is
  SIGKILLed (and replaced) each time another 1/(kills+1) of the texts has been handed over to
  the sandbox. A kill lands while asks are marked ``sending`` and with the provider: the new
  owner of their partition asks the sandbox's Messages list whether it has each such text
  (``TwilioSms.find``) and resends only those it has not. So no number may be texted twice,
  every person must be texted exactly once, no SMS ask may be left in doubt, and once the queue
  has drained and the callbacks are in, none may be left ``sending`` and the tallies must say
  exactly that (asked = people = delivered). An ask in doubt is reported with the reason its
  fact records (read from the asks changelog), so that a failure says why.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console

from connectors.signing import headers
from tests.factories import phone, signup

from .ingress import client
from .load import Batch, Loader
from .outcome import Outcome
from benchmarks.stack import PARTNERS, BenchStack, bench_stack, until
from streams.topology import ASKS, changelog_topic
from streams.transport import true_end_offsets

SMS = {"en": "{given_name}: {action_title} at {place}, {local_time}. RSVP {rsvp_link}"}
EMAIL = {"en": {"subject": "{action_title}", "body": "Hi {given_name}, join us: {rsvp_link}"}}


def rapid(action_id: str, title: str, postal: str) -> dict:
    return {"type": "action", "event_id": f"a-{action_id}", "occurred_at": "2026-11-24T18:00:00Z", "action_id": action_id,
            "title": title, "kind": "rally", "starts_at": "2026-11-25T02:00:00Z", "time_zone": "America/Los_Angeles",
            "location": {"venue": "City Hall", "locality": "Oakland"}, "target": {"postal_codes": [postal]},
            "templates": {"sms": SMS, "email": EMAIL}, "rapid_response": True}


def person(i: int, postal: str = "94607", email: bool = False) -> dict:
    item = signup(f"p-{i}", phone=phone(i), email=f"p{i}@example.org" if email else None, at="2026-11-20T10:00:00Z",
                  given_name=f"P{i}", postal_code=postal)
    # Signed up by every partner in turn, asked by the first: consent for the whole coalition.
    item["consent"] = {c: {"granted": v, "scope": "coalition"} for c, v in item["consent"].items()}
    return item


async def sign_up(http: httpx.AsyncClient, stack: BenchStack, people: list[dict], deadline: float) -> None:
    """Post the sign-ups through the ingress, spread over the partners; wait until all are counted."""
    batches = [Batch(PARTNERS[j % len(PARTNERS)], json.dumps(people[i : i + 500]).encode(), ())
               for j, i in enumerate(range(0, len(people), 500))]
    report = await Loader(http, stack.secrets, batches, clients=2, deadline=deadline).run()
    if report.problems:
        raise RuntimeError(f"sign-ups: {report.problems[:3]}")
    await until(stack, lambda: totals(http, "/v1/tallies", lambda t: t["signups"] == len(people)), deadline, "sign-ups counted")


async def post_action(http: httpx.AsyncClient, stack: BenchStack, action: dict) -> None:
    body, partner = json.dumps([action]).encode(), PARTNERS[0]
    r = await http.post("/v1/events", content=body, headers=headers(partner, stack.secrets[partner], body, time.time()))
    if r.status_code != 202 or r.json()["rejected"]:
        raise RuntimeError(f"posting {action['action_id']}: {r.status_code} {r.text[:200]}")


async def totals(http: httpx.AsyncClient, path: str, check=None):
    r = await http.get(path)
    if r.status_code != 200:
        return None
    t = r.json()["totals"]
    return t if check is None or check(t) else None


async def sms_count(http: httpx.AsyncClient, stack: BenchStack) -> dict:
    return (await http.get(f"{stack.sandbox_url}/_sandbox/inbox/count", params={"channel": "sms"})).json()


async def fan_out(console: Console, *, name: str = "fan-out-kill", people: int = 20_000, kills: int = 5, workers: int = 2,
                  send_concurrency: int = 16, sms_mps: float = 200, timeout: float = 900, workdir: Path | None = None) -> Outcome:
    out = Outcome(name, f"{people:,} people, {kills} SIGKILLs, queue {sms_mps:g}/s")
    deadline = time.monotonic() + timeout
    with bench_stack(name, console, workdir, outreach=True, send_concurrency=send_concurrency, sms_rate=sms_mps,
                     sandbox_sms_mps=sms_mps) as stack:
        try:
            stack.start(workers=workers)
            async with client(stack) as http:
                await sign_up(http, stack, [person(i) for i in range(people)] + [person(7_999_999, postal="94609")], deadline)
                await post_action(http, stack, rapid("warm-up", "Warm-up", "94609"))  # the send path is up
                await until(stack, lambda: texted(http, stack), deadline, "the warm-up text")
                await until(stack, lambda: queue_state(http, stack, lambda q: q["waiting"] == 0), deadline, "the warm-up text left")
                (await http.delete(f"{stack.sandbox_url}/_sandbox/inbox")).raise_for_status()
                t0 = time.monotonic()
                await post_action(http, stack, rapid("rally", "Soak rally", "94607"))
                row, killed = await _kill_while_texting(http, stack, people, kills, deadline)
                out.seconds = time.monotonic() - t0
                inbox = (await http.get(f"{stack.sandbox_url}/_sandbox/inbox", params={"channel": "sms"})).json()
                queue = await queue_state(http, stack)
                judge_fan_out(out, row, Counter(m["to"] for m in inbox), people, kills, killed, queue)
                out.figures["asks kills left sending, looked up (at the provider / in doubt / sent now)"] = orphans(stack.logs())
                if out.in_doubt or row.get("delivered") != people:  # why, from the asks changelog (read once)
                    history = await ask_history(stack)
                    if out.in_doubt:
                        out.figures["why in doubt"] = dict(ask_errors(history))
                    if row.get("delivered") != people:
                        out.figures["asks not delivered, their changelog records"] = undelivered(history)
                created = sorted(m["created"] for m in inbox)
                if len(created) > 1:
                    out.rate = f"{len(created) / (created[-1] - created[0]):,.0f} handed over/s"
                    out.figures["handed over, left (s after the first text)"] = \
                        f"{created[-1] - created[0]:,.1f}, {(queue['left']['last'] or 0) - created[0]:,.1f}"
        except Exception as exc:  # a scenario reports what broke instead of ending the run
            out.problems.append(f"{type(exc).__name__}: {exc}")
        stack.failed = not out.passed
    return out


ORPHANS = re.compile(r"looked up (\d+) asks a stopped worker left sending: (\d+) at the provider, (\d+) in doubt, (\d+) sent now")


def orphans(logs: list[Path]) -> str:
    """What the workers' logs say became of the asks the kills left ``sending``."""
    found = [tuple(map(int, m.groups())) for log in logs if log.name.startswith("worker")
             for m in ORPHANS.finditer(log.read_text(errors="replace"))]
    total, there, doubt, sent = (sum(x) for x in zip(*found)) if found else (0, 0, 0, 0)
    return f"{total} ({there} / {doubt} / {sent})"


async def queue_state(http: httpx.AsyncClient, stack: BenchStack, check=None) -> dict | None:
    state = (await http.get(f"{stack.sandbox_url}/_sandbox/queue")).json()
    return state if check is None or check(state) else None


#: The asks changelog by ask id: each record's (partition, offset, fact or ``None``), in order.
History = dict[bytes, list[tuple[int, int, dict | None]]]


async def ask_history(stack: BenchStack) -> History:
    """Every record of the asks changelog (``History``)."""
    topic = changelog_topic(stack.settings, ASKS)
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.settings.bootstrap.split(","), enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, i) for i in range(stack.settings.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await true_end_offsets(stack.settings.bootstrap, await consumer.end_offsets(parts))  # Tansu's are off
        history: History = {}
        while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    history.setdefault(r.key, []).append((r.partition, r.offset, json.loads(r.value) if r.value is not None else None))
    finally:
        await consumer.stop()
    return history


def ask_errors(history: History, status: str = "in_doubt") -> Counter[str]:
    """The recorded ``error`` of every SMS ask whose fact ends in ``status``, by error, from the
    asks changelog's ``history`` (the tallies count them; only the facts say why)."""
    last = [h[-1][2] for h in history.values()]
    return Counter(f.get("error") or "no reason recorded" for f in last if f is not None and f["status"] == status and f["channel"] == "sms")


def undelivered(history: History, limit: int = 3) -> list[str]:
    """The changelog records of up to ``limit`` SMS asks of the rally whose last fact is not
    ``delivered`` (status, time, partition and offset of each): how an ask came to stop short."""
    found = []
    for key, records in history.items():
        last = records[-1][2]
        if last is not None and last["channel"] == "sms" and last["action_id"] == "rally" and last["status"] != "delivered":
            steps = [f"{f['status'] if f else 'deleted'} {f['updated_at'][11:23] if f else ''} p{p}@{o}" for p, o, f in records]
            found.append(f"{key.decode(errors='replace')}: " + " → ".join(steps))
            if len(found) == limit:
                break
    return found


async def texted(http: httpx.AsyncClient, stack: BenchStack) -> bool:
    return (await sms_count(http, stack))["count"] > 0


async def _kill_while_texting(http: httpx.AsyncClient, stack: BenchStack, people: int, kills: int, deadline: float):
    """Kill at each 1/(kills+1) of the texts handed over; return the action's totals once they
    have settled (asked = people, nothing ``sending``, delivered + failed + in doubt = people,
    the same on two reads: the queue has drained and its callbacks are in), or what they were
    at the deadline (marked ``unsettled``)."""
    killed: list[str] = []
    previous = None
    while True:
        count = (await sms_count(http, stack))["count"]
        if len(killed) < kills and count >= (len(killed) + 1) * people / (kills + 1):
            killed.append(f"{stack.kill_worker()}@{count / people:.0%}")
        row = await totals(http, "/v1/actions/rally/tallies")
        settled = row and row["asked_sms"] == people and row["sending"] == 0 and \
            row["delivered"] + row["failed"] + row["in_doubt"] == people
        if settled and (row, count) == previous:
            return row, killed
        previous = (row, count) if settled else None
        if dead := stack.dead():
            raise RuntimeError(f"process(es) {dead} exited by themselves")
        if time.monotonic() > deadline:  # judged all the same: a second text would show why
            return (row or {}) | {"unsettled": f"{count:,} texts, tallies {row}"}, killed
        await asyncio.sleep(0.5)


def judge_fan_out(out: Outcome, row: dict, texts: Counter[str], people: int, kills: int, killed: list[str], queue: dict) -> None:
    row = {"asked_sms": 0, "delivered": 0, "failed": 0, "in_doubt": 0, "sending": 0} | row
    out.double = sum(n - 1 for n in texts.values() if n > 1)
    out.in_doubt = row["in_doubt"]
    out.lost = people - len(texts)
    if "unsettled" in row:
        out.problems.append(f"deadline: the fan-out did not settle ({row['unsettled']})")
    out.figures.update({"workers SIGKILLed (pid@texts)": ", ".join(killed), "texts": f"{len(texts):,}",
                        "tallies": {k: row[k] for k in ("asked_sms", "delivered", "failed", "in_doubt", "sending")},
                        "queue": f"left {queue['left']['count']:,}, expired {queue['expired']}, overflowed {queue['overflowed']}"})
    if out.double:
        out.problems.append(f"{out.double} second texts to the same number")
    if out.lost:
        out.problems.append(f"{out.lost} people never texted")
    if row["in_doubt"]:
        out.problems.append(f"{row['in_doubt']} SMS asks in doubt: a text orphaned by a kill is looked up at the provider, never left in doubt")
    if row["sending"]:
        out.problems.append(f"{row['sending']} asks still sending after the run settled")
    if row["failed"] or queue["expired"] or queue["overflowed"]:
        out.problems.append(f"{row['failed']} asks failed, {queue['expired']} expired and {queue['overflowed']} overflowed in the queue "
                            "(the sandbox had no faults and the queue drains long before the action)")
    if row["delivered"] != people and "unsettled" not in row:
        out.problems.append(f"{row['delivered']:,} delivered of {people:,}")
    if len(killed) < kills:
        out.problems.append(f"only {len(killed)} of {kills} kills happened")
