"""The Faust app and its topics and tables, built from settings at start-up.

``build(settings)`` returns a ``Pipeline``: the app plus every Faust topic and table,
declared from ``streams.topology``. Agents register themselves on it (``agents.register``).
Built by a function, not at import, so that tests can run several apps with unique
names against one broker and nothing reads configuration at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import faust
from pydantic import BaseModel

from . import tansu
from .settings import Settings
from .topology import ACTIONS, ATTENDANCE, MEMBERSHIPS, PEOPLE, PLEDGES, TableSpec, dead_letter_topic, events_topic

M = TypeVar("M", bound=BaseModel)


class FactTable(Generic[M]):
    """A Faust table of pydantic facts, stored as JSON. ``put`` writes only what changed,
    so replays and duplicates add nothing to the changelog."""

    def __init__(self, table: faust.Table, model: type[M]) -> None:
        self.table = table
        self.model = model

    def get(self, key: str) -> M | None:
        raw = self.table.get(key)
        return None if raw is None else self.model.model_validate(raw)

    def put(self, key: str, old: M | None, new: M) -> bool:
        if new == old:
            return False
        self.table[key] = new.model_dump(mode="json")
        return True


@dataclass
class Pipeline:
    app: faust.App
    events: faust.TopicT
    dead_letters: faust.TopicT
    people: FactTable[Any]
    memberships: FactTable[Any]
    attendance: FactTable[Any]
    pledges: FactTable[Any]
    actions: FactTable[Any]


def broker_urls(s: Settings) -> list[str]:
    scheme = "tansu" if s.broker_flavor == "tansu" else "kafka"
    return [f"{scheme}://{host}" for host in s.bootstrap.split(",")]


def build(s: Settings) -> Pipeline:
    if s.broker_flavor == "tansu":
        tansu.register()
    app = faust.App(
        s.app_id,
        broker=broker_urls(s),
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_partitions=s.partitions,
        topic_replication_factor=s.replication_factor,
        broker_session_timeout=s.session_timeout,
        broker_heartbeat_interval=s.heartbeat_interval,
        broker_rebalance_timeout=s.rebalance_timeout,
        broker_commit_interval=s.commit_interval,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_enable_idempotence=s.idempotent_producer,
        key_serializer="raw",
        value_serializer="raw",
    )

    def table(spec: TableSpec) -> FactTable[Any]:
        # key_type=str, no value_type: Faust writes both as JSON in the changelog.
        t = app.Table(spec.name, default=None, partitions=s.partitions, key_type=str, help=spec.key)
        return FactTable(t, spec.model)

    return Pipeline(
        app=app,
        events=app.topic(events_topic(s), key_type=str, value_type=bytes, partitions=s.partitions),
        dead_letters=app.topic(dead_letter_topic(s), key_type=str, value_type=bytes, partitions=1),
        people=table(PEOPLE),
        memberships=table(MEMBERSHIPS),
        attendance=table(ATTENDANCE),
        pledges=table(PLEDGES),
        actions=table(ACTIONS),
    )
