"""Topic provisioning with kafka-python's admin client (`turnout topics ensure`)."""

from __future__ import annotations

import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from .settings import Settings
from .topology import topic_specs


def ensure_topics(s: Settings, timeout: float = 30.0) -> list[str]:
    """Create every declared topic that does not exist yet; return the names created."""
    admin = _connect(s.bootstrap, timeout)
    try:
        existing = set(admin.list_topics())
        created = []
        for spec in topic_specs(s):
            if spec.name in existing:
                continue
            config = {"cleanup.policy": "compact"} if spec.compacted else {}
            try:
                admin.create_topics([NewTopic(spec.name, spec.partitions, s.replication_factor, topic_configs=config)])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def _connect(bootstrap: str, timeout: float) -> KafkaAdminClient:
    # The broker may still be starting: retry until the deadline.
    deadline = time.monotonic() + timeout
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="turnout-admin")
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
