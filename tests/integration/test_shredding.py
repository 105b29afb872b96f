"""Crypto-shredding end to end: every topic read from offset 0 with a plain Kafka consumer holds no
name, phone or email in clear; after ``people forget`` the person's sealed records are still
there but cannot be opened (their data keys are tombstoned), while everyone else's can; their
facts still count, and a replay from offset 0 rebuilds the same tallies."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from click.testing import CliRunner

from streams.cli import main
from streams.crypto import KeyRing, MasterKey, UnknownMasterKey
from streams.stack import child_env
from streams.topology import DEFERRED, changelog_topic, data_keys_topic
from streams.transport import TANSU_FETCH_MAX_WAIT_MS
from tests.factories import checkin, phone, pledge, rsvp, signup
from tests.integration.test_outreach import rapid
from tests.polling import eventually

pytestmark = pytest.mark.integration

ANA = {"phone": phone(31), "email": "zenobia.quist@example.org", "given_name": "Zenobia", "family_name": "Quist"}
BEN = {"phone": phone(32), "email": "bartholomew.oyelaran@example.org", "given_name": "Bartholomew", "family_name": "Oyelaran"}
NIGHT = "2026-11-25T06:00:00+00:00"  # 22:00 in California: texts are deferred, emails go
TOMORROW = "2026-11-26T02:00:00Z"  # the alerts' start: 18:00 in California, the day after the night
SEALED = re.compile(rb'"(\w+)"\s*:\s*"(enc1:[0-9a-f]+:[A-Za-z0-9_-]+)"')


def person(event_id: str, who: dict, email: bool = True) -> dict:
    item = signup(event_id, phone=who["phone"], email=who["email"] if email else None, at="2026-11-20T10:00:00Z",
                  given_name=who["given_name"], family_name=who["family_name"], postal_code="94607")
    item["consent"] = {c: {"granted": v, "scope": "coalition"} for c, v in item["consent"].items()}
    return item


def clear_text(who: dict) -> list[bytes]:
    return [v.encode() for v in who.values()] + [who["phone"][2:].encode()]


async def _every_record(s) -> list[tuple[str, bytes | None, bytes | None]]:
    """Every record of every topic of this stack (its prefix or its app id), from offset 0 to the
    end (fetch high watermarks), in offset order per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap.split(","), group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=TANSU_FETCH_MAX_WAIT_MS)
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if t.startswith(s.topic_prefix) or t.startswith(s.app_id + "-"))
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[str, bytes | None, bytes | None]] = []
        for _ in range(200):
            for tp, messages in (await consumer.getmany(timeout_ms=300)).items():
                out += [(tp.topic, m.key, m.value) for m in messages]
            ends = [(consumer.highwater(tp), await consumer.position(tp)) for tp in tps]
            if all(high is not None and pos >= high for high, pos in ends):
                return out
        raise AssertionError("the topics were not read to their end")
    finally:
        await consumer.stop()


class Scan:
    """What a reader of every topic finds: records in clear, and the sealed values it can open
    with the master key and the data keys the data-keys topic still has."""

    def __init__(self, stack, master: str | None = None) -> None:
        self.records = asyncio.run(_every_record(stack.settings))
        self.ring = KeyRing([MasterKey((master or stack.settings.master_key.get_secret_value()).encode())])
        keys = data_keys_topic(stack.settings)
        for topic, key, value in self.records:
            if topic == keys:
                try:
                    self.ring.apply(key, value)
                except UnknownMasterKey:
                    pass  # wrapped by another master key: this reader cannot open it
        self.sealed = [(topic, field.decode(), value.decode()) for topic, _, v in self.records if v
                       for field, value in SEALED.findall(v)]

    def topics_with(self, needles: list[bytes]) -> set[str]:
        return {t for t, k, v in self.records for n in needles if n in (k or b"") + (v or b"")}

    def opened(self) -> set[str]:
        return {opened for _, field, value in self.sealed if (opened := self.ring.open(field, value)) is not None}

    def topics_sealed(self) -> set[str]:
        return {t for t, _, _ in self.sealed}


def _differences(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def forget(stack, **who: str) -> str:
    flag, value = next(iter(who.items()))
    r = CliRunner().invoke(main, ["people", "forget", f"--{flag}", value, "--url", stack.url], env=child_env(stack.settings))
    assert r.exit_code == 0, r.output
    return r.output


def test_after_forget_no_topic_holds_the_person_in_clear_and_their_sealed_records_cannot_be_opened(make_stack):
    stack = make_stack(outreach=True, partners=("backbone", "union-a", "faith-b"))
    stack.start_sandbox()
    stack.start_web()
    stack.start_worker()
    stack.announce("rally-s")
    stack.set_clock(NIGHT)
    stack.post_all("union-a", [person("u1", ANA), person("u2", BEN), rsvp("r1", "rally-s", phone=ANA["phone"])])
    stack.post_all("faith-b", [signup("f1", email=ANA["email"], at="2026-11-20T11:00:00Z")])  # by email only: a second key, linked
    stack.post_all("backbone", [rapid("alert-1", "Budget hearing", ["94607"], starts_at=TOMORROW)])
    # The emails go at once (opened for the provider: address and name), the texts wait for the morning.
    eventually(lambda: sorted(m["to"] for m in stack.inbox("email")) == sorted([ANA["email"], BEN["email"]]), timeout=60)
    assert any("Zenobia" in str(m) for m in stack.inbox("email"))
    eventually(lambda: stack.action_rows("rally-s")["union-a"]["rsvp_yes"] == 1)
    waiting = changelog_topic(stack.settings, DEFERRED)  # the texts, until the morning
    eventually(lambda: sum(1 for t, f, _ in Scan(stack).sealed if t == waiting and f == "to") >= 2, timeout=30)

    before = Scan(stack)
    assert before.topics_with([n for who in (ANA, BEN) for n in clear_text(who)]) == set()  # sealed from the start
    assert {stack.settings.topic_prefix + "events", waiting} <= before.topics_sealed()
    assert {ANA["phone"], ANA["email"], "Zenobia", "Quist", BEN["phone"]} <= before.opened()  # the scan can open what it finds
    assert any("Zenobia: Budget hearing" in text for text in before.opened())  # a rendered text, sealed while it waits

    out = forget(stack, email=ANA["email"].upper())
    assert "deleted 2 data keys" in out and ANA["email"] not in out

    after = Scan(stack)
    assert after.topics_with([n for who in (ANA, BEN) for n in clear_text(who)]) == set()
    opened = after.opened()
    assert not [text for text in opened for n in ("Zenobia", "Quist", ANA["phone"], ANA["email"]) if n in text]
    assert {BEN["phone"], BEN["email"], "Bartholomew"} <= opened  # everyone else is still readable
    unreadable = [(t, f) for t, f, v in after.sealed if after.ring.open(f, v) is None]
    assert {stack.settings.topic_prefix + "events", waiting} <= {t for t, _ in unreadable}
    assert len(after.sealed) >= len(before.sealed)  # nothing was rewritten: the copies are there, unreadable

    # Morning, and the texts: Ben's goes, Ana's was cancelled; the workers carry on.
    stack.set_clock("2026-11-25T18:00:00+00:00")
    stack.post_all("backbone", [rapid("alert-2", "Vote on the budget", ["94607"], at="2026-11-25T17:00:00Z", starts_at=TOMORROW)])
    eventually(lambda: len(stack.inbox("sms")) == 2, timeout=60)
    assert {m["to"] for m in stack.inbox("sms")} == {BEN["phone"]}
    assert stack.action_rows("rally-s")["union-a"]["rsvp_yes"] == 1


def test_an_erased_persons_facts_still_count_and_a_replay_from_offset_zero_rebuilds_the_same_tallies(make_stack, tmp_path):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    stack.announce("rally-t")
    stack.post_all("union-a", [person("u1", ANA), person("u2", BEN), pledge("p1", "rally-t", 5),
                               rsvp("r1", "rally-t", phone=ANA["phone"]), rsvp("r2", "rally-t", phone=BEN["phone"])])
    stack.post_all("faith-b", [checkin("c1", "rally-t", email=ANA["email"]), checkin("c2", "rally-t", phone=BEN["phone"])])
    rows = {"union-a": {"pledged": 5, "rsvp_yes": 2, "attended": 0}, "faith-b": {"pledged": 0, "rsvp_yes": 0, "attended": 2}}
    eventually(lambda: stack.action_rows("rally-t") == rows)
    # Ana's check-in by email reaches her (keyed by phone) once identity has linked the two: both came.
    eventually(lambda: stack.get("/v1/actions/rally-t/tallies").json()["totals"]["showed"] == 2)
    paths = ("/v1/tallies", "/v1/actions/rally-t/tallies")
    before = {path: stack.get(path).json() for path in paths}

    assert "removed 1 person record" in forget(stack, phone=ANA["phone"])
    after = {path: stack.get(path).json() for path in paths}
    assert after == before, _differences(before, after)  # facts hold no personal data: they stay

    replay = make_stack(app_id=stack.settings.app_id + "-replay", topic_prefix=stack.settings.topic_prefix, coalition=tmp_path / "replay.toml")
    replay.start_worker()
    replay.start_web()
    eventually(lambda: {path: replay.get(path).json() for path in paths} == before, timeout=90)
    assert not Scan(stack).topics_with(clear_text(ANA) + clear_text(BEN))


def test_after_a_master_key_rotation_and_rewrap_the_new_key_alone_opens_everything(make_stack):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    stack.post_all("union-a", [person("u1", ANA), person("u2", BEN, email=False)])
    eventually(lambda: stack.get("/v1/tallies").json()["totals"]["signups"] == 2)
    new = "rotated-master-key"
    assert {ANA["phone"], BEN["phone"]} <= Scan(stack).opened() and not Scan(stack, new).opened()

    env = {**child_env(stack.settings), "TURNOUT_MASTER_KEY": new, "TURNOUT_PREVIOUS_MASTER_KEYS": stack.settings.master_key.get_secret_value()}
    r = CliRunner().invoke(main, ["keys", "rewrap"], env=env)
    assert r.exit_code == 0 and "wrapped 2 data keys" in r.output, r.output
    assert {ANA["phone"], ANA["email"], BEN["phone"], "Bartholomew"} <= Scan(stack, new).opened()
    again = CliRunner().invoke(main, ["keys", "rewrap"], env=env)
    assert again.exit_code == 0 and "every data key was already wrapped with the current master key" in again.output, again.output
    # A master key that wrapped nothing: the 2 keys (not their 4 records), and no "nothing to do" before it (an outside probe).
    wrong = {k: v for k, v in env.items() if k != "TURNOUT_PREVIOUS_MASTER_KEYS"} | {"TURNOUT_MASTER_KEY": "wrong-key-wrong-key-wrong-key-123"}
    r = CliRunner().invoke(main, ["keys", "rewrap"], env=wrong)
    assert r.exit_code == 1 and r.output.startswith("Error: 2 data keys wrapped by a master key you did not give"), r.output
