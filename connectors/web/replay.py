"""Reading Kafka topics from their start to rebuild state: the tallies, erasure reports,
Mobilize cursors. The records are facts under keys (compacted topics), so the reader joins
no group and commits nothing: every reader starts again from the beginning.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

from streams.settings import Settings
from streams.transport import TANSU_FETCH_MAX_WAIT_MS


def replay_consumer(s: Settings) -> AIOKafkaConsumer:
    """A group-less consumer that starts at the earliest offset; create it inside the running
    loop (aiokafka clients belong to one). On the embedded broker, fetches wait only
    ``TANSU_FETCH_MAX_WAIT_MS``: Tansu holds every fetch for its whole max wait."""
    tansu = {"fetch_max_wait_ms": TANSU_FETCH_MAX_WAIT_MS} if s.broker_flavor == "tansu" else {}
    return AIOKafkaConsumer(
        bootstrap_servers=s.bootstrap.split(","), group_id=None, enable_auto_commit=False, auto_offset_reset="earliest", **tansu
    )
