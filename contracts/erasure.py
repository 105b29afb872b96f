"""Erasure on request: the command that forgets a person, and what each partition removed.

The command carries keyed hashes of the phone or email given (person keys), never the raw
value: a request to forget someone must not itself record them. It travels on the events
topic, one copy per partition, because a person known by phone lives on the partition of
their phone's key while the same email may be on a record anywhere.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from .people import Internal

#: Kafka key prefix of erasure commands on the events topic (``forget:<request id>:<n>``).
FORGET_PREFIX = "forget:"


class ForgetPerson(Internal):
    version: int = Field(default=1, description="The writer's contract version (internal topics).")
    request_id: str
    requested_at: datetime
    contact_keys: tuple[str, ...]


class ErasureReport(Internal):
    """What one partition removed for one request (table ``erasures_by_request``). No contact details."""

    request_id: str
    partition: int
    people_removed: int = 0
    partners: tuple[str, ...] = ()
    asks_cancelled: int = 0
    at: datetime
