"""Every topic and table turnout uses, declared once: name, key, value contract, partitions, cleanup.

Fact tables are Faust tables; their compacted changelog topics *are* the fact topics that the
web app reads to derive tallies (latest value per key).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from contracts.asks import AskCommand, AskFact, RecentAsks
from contracts.erasure import ErasureReport
from contracts.facts import ActionRecord, Attendance, Membership, Pledge, PersonRecord
from contracts.identity import Identity, Merge
from contracts.tallies import FactKind

from .logs import scrubbed
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
IDENTITIES = TableSpec("identities_by_key", "identifier key (keyed hash of a phone or email)", Identity)
MERGES = TableSpec("merges_by_person", "merged person key", Merge)
TABLES = (PEOPLE, MEMBERSHIPS, ATTENDANCE, PLEDGES, ACTIONS, ASKS, RECENT_ASKS, DEFERRED, ERASURES, IDENTITIES, MERGES)

#: The fact tables tallies are derived from (people is not one: it holds contact details).
FACT_TABLES: dict[FactKind, TableSpec] = {
    "membership": MEMBERSHIPS,
    "attendance": ATTENDANCE,
    "pledge": PLEDGES,
    "action": ACTIONS,
    "ask": ASKS,
    "merge": MERGES,
    "identity": IDENTITIES,
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool
    config: dict[str, str] = field(default_factory=dict)


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


def identity_topic(s: Settings) -> str:
    """Identity resolution's messages (key: the identifier or person key each is for, value:
    ``contracts.identity.IdentityMessage``): events on their way to their person, links, merged
    people's facts. Scoped to the app id, like the changelogs: an app replaying the events topic
    from offset 0 under another id starts without them and resolves everything itself."""
    return f"{s.app_id}-identity"


def previews_topic(s: Settings) -> str:
    """The workers' answers to the organizer console's dry runs (key: request id, value:
    ``contracts.preview.AudienceCount`` or ``TestSent``: counts and outcomes, no contact details).
    One partition: the web app reads it whole for the answers to its request."""
    return f"{s.topic_prefix}previews"


def dead_letter_topic(s: Settings) -> str:
    """Records an agent could not use (value: JSON with the reason and the raw record)."""
    return f"{s.topic_prefix}dead-letters"


#: The most of a refused record a dead letter keeps: the dead letter must stay far below the
#: broker's message limit whatever arrived (a 900 KB record must not make a 3 MB dead letter).
EXCERPT_BYTES = 256


#: Fields whose values a dead letter keeps (they say what the record was and when, never who):
#: every other value, a string or a number, is replaced (a partner's OSDI person may carry a
#: name, a nickname, a birth date, a home's coordinates, a partner's own questions and answers;
#: a list of personal fields would always miss one). ``href``: without its query.
KEPT = frozenset({"type", "event_id", "occurred_at", "received_at", "action_id", "status", "withdrawn", "count", "channels",
                  "kind", "starts_at", "ends_at", "time_zone", "rapid_response", "override_quiet_hours", "partner", "version",
                  "person_key", "ask_id", "channel", "identifiers", "origin_system", "created_date", "modified_date", "href",
                  "id", "attended", "request_id"})
REDACTED = "<redacted>"
#: In text that is not JSON (or cut short): a string and the colon after it if it is a key, a
#: number, or a bare word.
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"?(\s*:)?|-?\d[\d.eE+-]*|[^\W\d]\w*')
_LITERALS = frozenset({"true", "false", "null"})


def _kept(key: str | None, value: Any) -> Any:
    if value is None or isinstance(value, bool) or key not in KEPT:
        return value if value is None or isinstance(value, bool) else REDACTED
    return value.partition("?")[0].partition("#")[0] if key == "href" and isinstance(value, str) else value


def _scrub(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, key) for v in value]
    return _kept(key, value)


def _scrub_text(text: str) -> str:
    """``_scrub`` of JSON that cannot be parsed (cut short): a value is kept only right after a
    key of ``KEPT``; every other string or number (array items too) is replaced."""
    out, pos, key, key_end = [], 0, None, 0
    for m in _TOKEN.finditer(text):
        out.append(text[pos:m.start()])
        pos = m.end()
        if m.group(2):  # a key
            out.append(m.group(0))
            key, key_end = m.group(1), m.end()
            continue
        follows = key in KEPT and key != "href" and not text[key_end:m.start()].strip()
        out.append(m.group(0) if follows or m.group(0) in _LITERALS else f'"{REDACTED}"')
        key = None
    out.append(text[pos:])
    return "".join(out)


def redacted(raw: bytes) -> str:
    """The record as text without personal data: of JSON, the values of ``KEPT`` fields only,
    and then nothing shaped like a phone number or an email address in any case."""
    text = raw.decode("utf-8", "replace")
    try:
        text = json.dumps(_scrub(json.loads(text)), ensure_ascii=False)
    except (ValueError, RecursionError):  # not JSON, cut short, or nested too deep
        text = _scrub_text(text)
    return scrubbed(text)


def excerpt(raw: bytes | None, **where: object) -> dict[str, object]:
    """What a dead letter keeps of a refused record: where it is (``topic``, ``partition``,
    ``offset``: replay it from there while it is retained), its size and SHA-256, and at most
    ``EXCERPT_BYTES`` of it with personal data removed."""
    if raw is None:
        return {"record_bytes": None, **where}
    return {**where, "record_bytes": len(raw), "record_sha256": hashlib.sha256(raw).hexdigest(),
            "record_excerpt": redacted(raw if len(raw) <= 65536 else raw[:EXCERPT_BYTES * 16])[:EXCERPT_BYTES]}


def dead_letter(key: str | None, reason: str, **details: object) -> tuple[bytes, bytes]:
    """A dead-letter record: the reason, then what lets someone find, fix and replay it; no
    phone number or email address, wherever one came from (a provider's refusal quotes the
    number it refused)."""
    return scrubbed(key or "")[:EXCERPT_BYTES].encode(), scrubbed(json.dumps({"reason": reason, **details}, default=str)).encode()


def data_keys_topic(s: Settings) -> str:
    """Every person's data keys, wrapped by the master key (compacted; key ``<person key>:<key
    id>``, value: ``streams.crypto.key_record``; a tombstone erases the key and, with it, every
    field sealed with it)."""
    return f"{s.topic_prefix}data-keys"


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


DAY_MS = 24 * 3600 * 1000


def retained(days: float) -> dict[str, str]:
    """A log that keeps records ``days`` days (then deletes them: personal data included)."""
    return {"cleanup.policy": "delete", "retention.ms": str(int(days * DAY_MS))}


#: Fact topics keep the latest value per key; a tombstone (an erasure) stays a day so every
#: reader sees it, and compaction may run an hour after a write.
COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": str(3600 * 1000), "delete.retention.ms": str(DAY_MS)}
#: The data keys: a key's record must leave the log soon after its tombstone, or whoever reads the
#: log's older records with the master key (or a backup of them) could still unwrap it. Kafka
#: compacts only closed segments, by default after 7 days: here a segment closes within the hour
#: and is compacted within the hour after (the embedded broker never compacts: dev only).
DATA_KEYS = {**COMPACTED, "min.compaction.lag.ms": "0", "segment.ms": str(3600 * 1000), "max.compaction.lag.ms": str(3600 * 1000)}


def topic_specs(s: Settings) -> list[TopicSpec]:
    specs = _specs(s)
    if s.replication_factor >= 3:  # a write (acks=all) is on two brokers at least: one may fail without losing it
        specs = [replace(spec, config={**spec.config, "min.insync.replicas": "2"}) for spec in specs]
    return specs


def _specs(s: Settings) -> list[TopicSpec]:
    return [
        TopicSpec(events_topic(s), s.partitions, compacted=False, config=retained(s.events_retention_days)),
        TopicSpec(targeting_topic(s), s.partitions, compacted=False, config=retained(s.outreach_retention_days)),
        TopicSpec(asks_topic(s), s.partitions, compacted=False, config=retained(s.outreach_retention_days)),
        TopicSpec(provider_topic(s), s.partitions, compacted=False, config=retained(s.outreach_retention_days)),
        # It carries partner events on their way to their person: kept as long as the events.
        TopicSpec(identity_topic(s), s.partitions, compacted=False, config=retained(s.events_retention_days)),
        TopicSpec(dead_letter_topic(s), 1, compacted=False, config=retained(s.dead_letter_retention_days)),
        TopicSpec(previews_topic(s), 1, compacted=False, config=retained(1)),
        TopicSpec(data_keys_topic(s), 1, compacted=True, config=DATA_KEYS),  # read whole by every process: one batch per write
        TopicSpec(mobilize_cursor_topic(s), 1, compacted=True, config=COMPACTED),
        TopicSpec(accounts_topic(s), 1, compacted=True, config=COMPACTED),
        *(TopicSpec(changelog_topic(s, t), s.partitions, compacted=True, config=COMPACTED) for t in TABLES),
    ]
