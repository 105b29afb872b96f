"""How facts are written and read back: the ordered write queue into the producer
(``streams.writes``), ``Pipeline.settle`` across agents, and the validated models a
``FactTable`` keeps (``streams.validated``)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import faust
import pytest

from contracts.asks import AskFact
from streams.app import FactTable
from streams.validated import Validated
from streams.writes import Writes, changelog_key
from tests.fakes import MemoryTable, memory_pipeline

AT = datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)


class Producer:
    """The app's producer as ``Writes`` uses it: ``send`` returns a future the test acks."""

    def __init__(self, refuse: set[bytes] = frozenset()) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self.acks: list[asyncio.Future] = []
        self.refuse = refuse

    async def send(self, topic, key, value, partition, timestamp, headers):  # noqa: ANN001
        if key in self.refuse:
            raise RuntimeError("producer closed")
        self.records.append((topic, key, value, partition))
        self.acks.append(asyncio.get_running_loop().create_future())
        return self.acks[-1]


def writes(producer: Producer) -> Writes:
    app = type("App", (), {"producer": producer})()
    return Writes(app)  # type: ignore[arg-type]


def fact(status: str = "planned", **more: object) -> AskFact:
    return AskFact(ask_id="a:p1:sms", action_id="a", person_key="p1", channel="sms", partner="union-a", status=status,
                   updated_at=AT, **more)


def test_records_reach_the_producer_in_the_order_they_were_written_and_resolve_on_its_ack():
    async def run():
        producer = Producer()
        w = writes(producer)
        first, second = w.send("t", b"k", b"1", 3), w.send("t", b"k", b"2", 3)
        await asyncio.sleep(0)
        assert [r[2] for r in producer.records] == [b"1", b"2"]
        assert not first.done()
        producer.acks[0].set_result("meta-1")
        await asyncio.sleep(0)
        assert first.result() == "meta-1" and not second.done()
        producer.acks[1].set_exception(RuntimeError("not enough replicas"))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="replicas"):
            second.result()

    asyncio.run(run())


def test_a_record_the_producer_refuses_fails_its_own_future_and_the_rest_still_go():
    async def run():
        producer = Producer(refuse={b"bad"})
        w = writes(producer)
        bad, good = w.send("t", b"bad", b"x", 0), w.send("t", b"good", b"y", 0)
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="closed"):
            bad.result()
        assert [r[1] for r in producer.records] == [b"good"] and not good.done()

    asyncio.run(run())


def test_changelog_records_are_encoded_as_faust_encodes_them_for_its_json_tables():
    app = faust.App("enc", broker="memory://", store="memory://", autodiscover=False, web_enabled=False)
    table = app.Table("t", default=None, partitions=8, key_type=str)
    key, value = "a:pé:sms", {"status": "sent", "error": None, "name": "é"}
    assert changelog_key(key) == table.changelog_topic.prepare_key(key, table.key_serializer)[0]
    faust_value = table.changelog_topic.prepare_value(value, table.value_serializer)[0]

    async def run():
        producer = Producer()
        send = writes(producer).changelog("asks-changelog")
        send(2, key, value)
        send(2, key, None)
        await asyncio.sleep(0)
        (topic, k, v, partition), (_, _, tombstone, _) = producer.records
        assert (topic, k, partition, tombstone) == ("asks-changelog", changelog_key(key), 2, None)
        assert json.loads(v) == json.loads(faust_value) == value  # the document Faust's codec writes (non-ASCII as UTF-8, not escaped)

    asyncio.run(run())


def test_a_fact_table_reads_back_the_model_it_wrote_and_validates_what_someone_else_stored():
    t = FactTable(MemoryTable(), AskFact, [])
    t.put(0, "a:p1:sms", written := fact())
    assert t.get("a:p1:sms") is written
    t.table.data["a:p1:sms"] = fact("sent").model_dump(mode="json")  # a changelog replay, a standby
    assert t.get("a:p1:sms") == fact("sent") and t.get("a:p1:sms") is not written


def test_writing_back_the_fact_that_was_read_writes_nothing_and_a_change_is_seen_by_on_change():
    changes: list[tuple[object, object]] = []
    t = FactTable(MemoryTable(), AskFact, [], on_change=lambda old, new: changes.append((old, new)))
    t.put(0, "a:p1:sms", fact())
    held = t.get("a:p1:sms")
    assert t.put(0, "a:p1:sms", held) is None and t.put(0, "a:p1:sms", fact()) is None
    t.put(0, "a:p1:sms", fact("sending"))
    assert changes == [(None, fact()), (fact(), fact("sending"))]
    assert [v["status"] for _, _, v in t.table.changelog] == ["planned", "sending"]


def test_validated_models_are_bounded_to_two_generations():
    v: Validated[str] = Validated(size=2)
    raws = {k: {"k": k} for k in "abcde"}
    for k in "abc":
        v.put(k, raws[k], k.upper(), exact=True)
    assert v.get("a", raws["a"]).model == "A"  # older generation, moved to the newer
    for k in "de":
        v.put(k, raws[k], k.upper(), exact=True)
    assert v.get("b", raws["b"]) is None and v.get("e", raws["e"]).model == "E"
    assert v.get("e", {"k": "e"}) is None  # an equal dict is not the same dict
