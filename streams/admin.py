"""Topic provisioning with kafka-python's admin client (`turnout topics ensure`)."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import IncompatibleBrokerVersion, KafkaError, TopicAlreadyExistsError

from .settings import Settings
from .topology import TopicSpec, topic_specs

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
        return created
    finally:
        admin.close()


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
