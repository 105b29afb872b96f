"""`turnout topics ensure`: what it asks the broker for (retention and compaction by design)."""

from pydantic import SecretStr

from streams.admin import ensure_topics
from streams.settings import Settings

DAY_MS = 24 * 3600 * 1000


class FakeAdmin:
    """Records the admin requests kafka-python would send."""

    def __init__(self, existing=(), partitions=None):
        self.existing, self.created, self.altered, self.closed = set(existing), [], [], False
        self.partitions = partitions or {}  # an existing topic's, by name (else as settings say: 8)

    def list_topics(self):
        return sorted(self.existing)

    def create_topics(self, topics):
        self.created += topics

    def alter_configs(self, resources):
        self.altered += resources

    def describe_topics(self, names):
        made = {t.name: t.num_partitions for t in self.created}
        return [{"name": n, "error_code": 0, "partitions": [{}] * self.partitions.get(n, made.get(n, 8))}
                for n in names if n in self.existing or n in made]

    def close(self):
        self.closed = True


def settings(**kw):
    return Settings(kafka_bootstrap_servers="unused:9092", topic_prefix="t.", app_id="t", person_key_secret=SecretStr("k"), **kw)


def test_logs_get_a_retention_and_fact_topics_are_compacted_with_documented_lags():
    admin = FakeAdmin()
    ensure_topics(settings(events_retention_days=14, dead_letter_retention_days=30), connect=lambda *a: admin)
    configs = {t.name: t.topic_configs for t in admin.created}
    assert configs["t.events"] == {"cleanup.policy": "delete", "retention.ms": str(14 * DAY_MS)}
    assert configs["t.dead-letters"]["retention.ms"] == str(30 * DAY_MS)
    assert {configs[n]["retention.ms"] for n in ("t.asks", "t.targeting", "t.provider")} == {str(7 * DAY_MS)}
    changelogs = [c for n, c in configs.items() if n.endswith("-changelog")]
    assert changelogs and all(c == {"cleanup.policy": "compact", "min.compaction.lag.ms": "3600000", "delete.retention.ms": str(DAY_MS)} for c in changelogs)
    # A data key's record must leave the log soon after its tombstone (an erasure): Kafka compacts
    # only closed segments, and by default a segment closes after 7 days, when the forgotten
    # person's key was still there to unwrap with the master key (an outside probe).
    assert configs["t.data-keys"] == {"cleanup.policy": "compact", "min.compaction.lag.ms": "0", "segment.ms": "3600000",
                                      "max.compaction.lag.ms": "3600000", "delete.retention.ms": str(DAY_MS)}
    assert admin.closed


def test_existing_topics_are_brought_up_to_date_not_recreated():
    admin = FakeAdmin(existing={"t.events"})
    ensure_topics(settings(events_retention_days=3), connect=lambda *a: admin)
    assert "t.events" not in {t.name for t in admin.created}
    [events] = [r for r in admin.altered if r.name == "t.events"]
    assert events.configs["retention.ms"] == str(3 * DAY_MS)


def test_topics_made_with_other_partitions_are_refused_naming_the_setting():
    # TURNOUT_PARTITIONS=4 against 8-partition topics: `topics ensure` said "exists … partitions=4",
    # and a worker run so planned people in the wrong partitions, without a word (an outside probe).
    import pytest

    from streams.admin import PartitionsDiffer

    admin = FakeAdmin(existing={"t.events"}, partitions={"t.events": 8})
    with pytest.raises(PartitionsDiffer, match=r"TURNOUT_PARTITIONS is 4, but t.events has 8 partitions: a topic keeps"):
        ensure_topics(settings(partitions=4), connect=lambda *a: admin)
    assert admin.closed
    ensure_topics(settings(partitions=8), connect=lambda *a: FakeAdmin(existing={"t.events"}, partitions={"t.events": 8}))


def test_three_replicas_need_two_in_sync_for_a_write():
    # The README and the compose file said min.insync.replicas=2 with three brokers, and nothing
    # set it: Kafka's default, 1, acknowledged writes only one broker had (an outside probe).
    for factor, expected in ((1, None), (3, "2")):
        admin = FakeAdmin()
        ensure_topics(settings(replication_factor=factor), connect=lambda *a: admin)
        assert {t.topic_configs.get("min.insync.replicas") for t in admin.created} == {expected}


def test_topics_made_with_other_partitions_are_one_line_for_every_command():
    # The CLI says a known failure in one line (``friendly.one_line``), never "a bug?": the
    # commands and `turnout up` let PartitionsDiffer reach it rather than each catching it.
    from streams.admin import PartitionsDiffer
    from streams.friendly import one_line

    assert one_line(PartitionsDiffer("TURNOUT_PARTITIONS is 4, but t.events has 8 partitions")) == (
        "TURNOUT_PARTITIONS is 4, but t.events has 8 partitions", True)
