"""Every topic and table turnout uses, declared once: name, key, value contract, partitions, cleanup.

Fact tables are Faust tables; their compacted changelog topics *are* the fact topics that the
web app reads to derive tallies (latest value per key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from contracts.asks import AskCommand, AskFact, RecentAsks
from contracts.erasure import ErasureReport
from contracts.facts import ActionRecord, Attendance, Membership, Pledge, PersonRecord
from contracts.tallies import FactKind

from .settings import Settings


@dataclass(frozen=True)
class TableSpec:
    name: str
    key: str
    model: type


PEOPLE = TableSpec("people_by_key", "person key", PersonRecord)
MEMBERSHIPS = TableSpec("memberships_by_partner_person", "partner|person key", Membership)
ATTENDANCE = TableSpec("attendance_by_action_person", "action|person key", Attendance)
PLEDGES = TableSpec("pledges_by_action_partner", "action|partner", Pledge)
ACTIONS = TableSpec("actions_by_id", "action id", ActionRecord)
ASKS = TableSpec("asks_by_id", "ask id", AskFact)
RECENT_ASKS = TableSpec("recent_asks_by_person", "person key", RecentAsks)
DEFERRED = TableSpec("deferred_asks_by_id", "ask id", AskCommand)
ERASURES = TableSpec("erasures_by_request", "request id|partition", ErasureReport)
TABLES = (PEOPLE, MEMBERSHIPS, ATTENDANCE, PLEDGES, ACTIONS, ASKS, RECENT_ASKS, DEFERRED, ERASURES)

#: The fact tables tallies are derived from (people is not one: it holds contact details).
FACT_TABLES: dict[FactKind, TableSpec] = {
    "membership": MEMBERSHIPS,
    "attendance": ATTENDANCE,
    "pledge": PLEDGES,
    "action": ACTIONS,
    "ask": ASKS,
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool


def events_topic(s: Settings) -> str:
    """Accepted partner events (key: routing key, value: ``contracts.events.Envelope`` JSON)."""
    return f"{s.topic_prefix}events"


def targeting_topic(s: Settings) -> str:
    """An action to fan out, copied to every partition (value: ``contracts.asks.TargetAction``)."""
    return f"{s.topic_prefix}targeting"


def asks_topic(s: Settings) -> str:
    """Messages to send (key: person key, value: ``contracts.asks.AskCommand``)."""
    return f"{s.topic_prefix}asks"


def provider_topic(s: Settings) -> str:
    """Verified provider callbacks (key: person key, value: ``contracts.providers.ProviderEnvelope``)."""
    return f"{s.topic_prefix}provider"


def dead_letter_topic(s: Settings) -> str:
    """Records an agent could not use (value: JSON with the reason and the raw record)."""
    return f"{s.topic_prefix}dead-letters"


def dead_letter(key: str | None, reason: str, **details: object) -> tuple[bytes, bytes]:
    """A dead-letter record: the reason, then what lets someone fix and replay it."""
    return (key or "").encode(), json.dumps({"reason": reason, **details}, default=str).encode()


def mobilize_cursor_topic(s: Settings) -> str:
    """Where each partner's Mobilize poll got to (key: partner id, value: ``{"updated_since": unix s}``)."""
    return f"{s.topic_prefix}mobilize-cursors"


def accounts_topic(s: Settings) -> str:
    """Dashboard accounts and signed-out sessions (key: ``account:<email>`` or
    ``revoked:<digest>``, value: ``contracts.accounts`` JSON). One partition: every web app
    instance reads all of it, and offsets order every change."""
    return f"{s.topic_prefix}accounts"


def changelog_topic(s: Settings, table: TableSpec) -> str:
    return f"{s.app_id}-{table.name}-changelog"


def topic_specs(s: Settings) -> list[TopicSpec]:
    return [
        TopicSpec(events_topic(s), s.partitions, compacted=False),
        TopicSpec(targeting_topic(s), s.partitions, compacted=False),
        TopicSpec(asks_topic(s), s.partitions, compacted=False),
        TopicSpec(provider_topic(s), s.partitions, compacted=False),
        TopicSpec(dead_letter_topic(s), 1, compacted=False),
        TopicSpec(mobilize_cursor_topic(s), 1, compacted=True),
        TopicSpec(accounts_topic(s), 1, compacted=True),
        *(TopicSpec(changelog_topic(s, t), s.partitions, compacted=True) for t in TABLES),
    ]
