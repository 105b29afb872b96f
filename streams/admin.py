"""Topic provisioning with kafka-python's admin client (`turnout topics ensure`)."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import IncompatibleBrokerVersion, KafkaError, TopicAlreadyExistsError

from .settings import Settings
from .topology import TopicSpec, events_topic, topic_specs

log = logging.getLogger(__name__)


def ensure_topics(s: Settings, timeout: float = 30.0, connect: Callable[[str, float], Any] | None = None) -> list[str]:
    """Create every declared topic that does not exist yet, with its retention or compaction
    settings, and bring the settings of existing ones up to date where the broker allows it
    (Apache Kafka does; the embedded broker keeps everything and compacts nothing anyway).
    Return the names created."""
    admin = (connect or admin_client)(s.bootstrap, timeout)
    try:
        existing = set(admin.list_topics())
        created = []
        for spec in topic_specs(s):
            if spec.name in existing:
                _update(admin, spec)
                continue
            try:
                admin.create_topics([NewTopic(spec.name, spec.partitions, s.replication_factor, topic_configs=spec.config)])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        refuse_other_partitions(admin, s)
        return created
    finally:
        admin.close()


class PartitionsDiffer(Exception):
    """Topics exist with another number of partitions than ``TURNOUT_PARTITIONS``."""


def refuse_other_partitions(admin: Any, s: Settings) -> None:
    """Raise ``PartitionsDiffer`` when a topic turnout declares exists with another number of
    partitions than the settings say: keys would be looked for in the wrong partitions (people
    left out of a fan-out, tables read in part), without a word."""
    declared = {spec.name: spec.partitions for spec in topic_specs(s)}
    found = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(declared)) if t.get("error_code") == 0}
    differ = sorted((name != events_topic(s), name) for name, n in found.items() if name in declared and n != declared[name])
    if differ:
        name = differ[0][1]  # the events topic, when it is one of them
        more = f" (and {len(differ) - 1} more topics)" if len(differ) > 1 else ""
        raise PartitionsDiffer(f"TURNOUT_PARTITIONS is {s.partitions}, but {name} has {found[name]} partitions{more}: a topic keeps the "
                               "partitions it was created with; set TURNOUT_PARTITIONS to theirs, or a new TURNOUT_TOPIC_PREFIX and "
                               "TURNOUT_APP_ID for new topics")


def _update(admin: Any, spec: TopicSpec) -> None:
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, spec.name, configs=spec.config)])
    except (KafkaError, NotImplementedError, IncompatibleBrokerVersion) as exc:
        log.warning("could not update the settings of %s (%s): the broker keeps its own", spec.name, type(exc).__name__)


def admin_client(bootstrap: str, timeout: float) -> KafkaAdminClient:
    # The broker may still be starting: retry until the deadline.
    deadline = time.monotonic() + timeout
    while True:
        try:  # each attempt within what is left of ``timeout`` (kafka-python's own is 30 s)
            left = max(deadline - time.monotonic(), 0.5)
            return KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="turnout-admin", bootstrap_timeout_ms=int(left * 1000))
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
