"""``POST /v1/people/forget`` (organizer): erase a person on request.

The web app turns the phone or email into a keyed hash, adds every identifier linked to the
same person and the person's key (read from the identities changelog: ``agents.identity``, and
from the events it accepted that name a phone and an email together, which no worker may have
read yet), so forgetting by email forgets the person known by their phone too, writes one ``ForgetPerson``
command per partition of the events topic (the workers that own those partitions remove the records:
see ``agents.erasure``), then waits, up to ``wait`` seconds, for every partition's report on
the erasures changelog and answers with the total. Before the commands, it deletes every data
key of those people (tombstones on the data-keys topic, ``streams.crypto``): whatever copies of
their sealed fields remain in logs, changelogs or backups cannot be read any more. 200 when every partition reported, 202
(with what is known so far) when some did not in time: the commands are written and will be
carried out when workers run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Callable, Mapping, Protocol, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.erasure import FORGET_PREFIX, ErasureReport, ForgetPerson
from contracts.identity import linked_keys
from contracts.people import normalize_email, normalize_phone
from streams.data_keys import DataKeys
from streams.keys import keys_for_every_partition, person_key
from streams.settings import Settings
from streams.topology import ERASURES, IDENTITIES, changelog_topic, events_topic, identity_topic
from streams.transport import stop_consumer, true_end_offsets

from .body import load_json, read_limited
from .errors import FieldError, documented, error, model_body
from .publisher import BrokerUnavailable, Publisher
from .replay import replay_consumer

log = logging.getLogger(__name__)

#: The request body as OpenAPI states it: exactly one of the two, each a string.
FORGET_BODY = {
    "type": "object", "additionalProperties": False,
    "properties": {"phone": {"type": "string", "description": "E.164, or national in TURNOUT_DEFAULT_REGION"},
                   "email": {"type": "string", "format": "email"}},
    "oneOf": [{"required": ["phone"]}, {"required": ["email"]}],
    "examples": [{"phone": "+15105550123"}, {"email": "ana@example.org"}],
}


class ForgetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # FORGET_BODY is what the document shows
    # Either may be left out, but not sent as null (the document says each is a string).
    phone: str = Field(default=None, validate_default=False)  # type: ignore[assignment]
    email: str = Field(default=None, validate_default=False)  # type: ignore[assignment]

    @model_validator(mode="after")
    def _one(self) -> ForgetRequest:
        if (self.phone is None) == (self.email is None):
            raise ValueError("give exactly one of phone or email")
        return self


class ForgetResult(BaseModel):
    request_id: str
    complete: bool
    partitions: int
    partitions_reported: int
    people_removed: int
    partners: list[str]
    asks_cancelled: int
    data_keys_erased: int = Field(default=0, description="The person's data keys deleted: every copy of their sealed name, phone, email "
                                  "and postal code (events, asks, tables, replicas, backups) can no longer be read.")


class ErasureReports(Protocol):
    async def wait(self, request_id: str, partitions: int, timeout: float) -> list[ErasureReport]:
        """The reports of ``request_id`` that arrived within ``timeout`` (at most one per partition)."""


class KafkaErasureReports:
    """Reads the erasures changelog (compacted, small) from the beginning for one request."""

    def __init__(self, s: Settings) -> None:
        self.topic = changelog_topic(s, ERASURES)
        self.settings = s

    async def wait(self, request_id: str, partitions: int, timeout: float) -> list[ErasureReport]:
        consumer = replay_consumer(self.settings)
        await consumer.start()
        found: dict[int, ErasureReport] = {}
        try:
            tps = [TopicPartition(self.topic, p) for p in range(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            deadline = time.monotonic() + timeout
            while len(found) < partitions and time.monotonic() < deadline:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    for m in messages:
                        if m.value is not None and json.loads(m.key).startswith(f"{request_id}|"):
                            report = ErasureReport.model_validate_json(m.value)
                            found[report.partition] = report
        finally:
            await stop_consumer(consumer)
        return list(found.values())


class IdentityLinks(Protocol):
    async def entries(self) -> dict[str, str]:
        """Every identifier's person (``identities_by_key``), as far as the broker has them."""


class KafkaIdentityLinks:
    """Reads the identities changelog (compacted; keyed hashes only) from the beginning to its
    end (the high watermark of fetch answers: ListOffsets is wrong on the embedded broker), once
    the workers have carried out every event accepted so far (``carried_out``): the link between
    a person's phone and email is written a moment after their sign-up is taken, and an erasure
    by email asked for in that moment found nobody (and its command then deleted the link)."""

    def __init__(self, s: Settings, timeout: float = 10.0) -> None:
        self.topic = changelog_topic(s, IDENTITIES)
        self.settings = s
        self.timeout = timeout

    async def entries(self) -> dict[str, str]:
        try:  # a broker that answers nothing (frozen) would hold the request for a bootstrap's 40 s, and then fail it
            async with asyncio.timeout(2 * self.timeout + 5):
                return await self._entries()
        except TimeoutError:
            raise BrokerUnavailable(5, "the broker did not answer in time: nothing is promised") from None

    async def _entries(self) -> dict[str, str]:
        if not await carried_out(self.settings, (events_topic(self.settings), identity_topic(self.settings)), self.timeout):
            log.warning("the workers have not caught up with the events accepted so far: an erasure may miss identifiers linked just now")
        consumer = replay_consumer(self.settings)
        await consumer.start()
        found: dict[str, str] = {}
        try:
            tps = [TopicPartition(self.topic, p) for p in range(self.settings.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    for m in messages:
                        key = json.loads(m.key)
                        if m.value is None:
                            found.pop(key, None)
                        else:
                            found[key] = json.loads(m.value)["person"]
                if await _at_end(consumer, tps):
                    break
        finally:
            await stop_consumer(consumer)
        return found


async def carried_out(s: Settings, topics: Sequence[str], timeout: float) -> bool:
    """Wait until the workers' consumer group has committed, on each of ``topics`` in turn, every
    record it held when its turn came (what an event made on the next topic is there by then:
    a record is acknowledged once what it wrote is); ``False`` if not within ``timeout`` (no
    worker running, a backlog)."""
    deadline = time.monotonic() + timeout
    consumer = AIOKafkaConsumer(bootstrap_servers=s.bootstrap.split(","), group_id=s.app_id, enable_auto_commit=False)
    await consumer.start()  # assigned, never subscribed: it joins no group and commits nothing
    try:
        for topic in topics:
            tps = [TopicPartition(topic, p) for p in range(s.partitions)]
            ends = await consumer.end_offsets(tps)
            if s.broker_flavor == "tansu":
                ends = await true_end_offsets(s.bootstrap, ends)
            while [tp for tp in tps if ((await consumer.committed(tp)) or 0) < ends[tp]]:
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.1)
    finally:
        await stop_consumer(consumer)
    return True


async def _at_end(consumer, tps: list[TopicPartition]) -> bool:  # noqa: ANN001
    for tp in tps:
        high = consumer.highwater(tp)
        if high is None or await consumer.position(tp) < high:
            return False
    return True


def router(s: Settings, publisher: Publisher, data_keys: DataKeys, reports: ErasureReports | None = None, wait: float = 20.0,
           links: IdentityLinks | None = None, accepted: Callable[[], Mapping[str, str]] = dict) -> APIRouter:
    """``accepted()``: the links the events accepted so far name themselves (an email key → the
    key of the phone it was posted with: ``Directory.links``), known before any worker linked them."""
    r = APIRouter(prefix="/v1/people", tags=["people"])
    secret = s.person_key_bytes()
    reports = reports or KafkaErasureReports(s)
    links = links or KafkaIdentityLinks(s)

    @r.post("/forget", response_model=ForgetResult, summary="Erase a person (by phone or email) from the people table; tallies keep their counts",
            responses={202: {"model": ForgetResult, "description": "Requested; not every partition has reported yet"}, **documented(400, 413, 422, 503)},
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": FORGET_BODY}}}})
    async def forget(request: Request) -> JSONResponse:
        # The organizer check (the router's dependency) has run: only now is the body read.
        body = model_body(ForgetRequest, load_json(await read_limited(request, s.max_body_bytes)))
        if isinstance(body, JSONResponse):
            return body
        by_phone = body.phone is not None
        try:
            keys = (person_key(secret, normalize_phone(body.phone, s.default_region), None),) if by_phone else (person_key(secret, None, normalize_email(body.email)),)
        except ValueError as exc:
            field = "phone" if by_phone else "email"
            return error(422, f"{field}: {exc}", [FieldError(field=f"body.{field}", message=str(exc), type="value_error")])
        # The person the identifier belongs to, and every identifier linked to them (agents.identity),
        # or named with them in an event the workers have not read yet.
        keys = tuple(sorted(linked_keys({**accepted(), **await links.entries()}, keys[0])))
        # Their data keys first: from now on no copy of their sealed fields, anywhere, can be read.
        destroyed = await data_keys.forget(keys)
        request_id = uuid.uuid4().hex
        cmd = ForgetPerson(request_id=request_id, requested_at=datetime.now(timezone.utc), contact_keys=keys)
        value = cmd.model_dump_json().encode()
        await publisher.publish([(k.encode(), value) for k in keys_for_every_partition(FORGET_PREFIX + request_id, s.partitions)])
        found = await reports.wait(request_id, s.partitions, wait)
        result = ForgetResult(
            request_id=request_id, complete=len(found) == s.partitions, partitions=s.partitions, partitions_reported=len(found),
            people_removed=sum(x.people_removed for x in found), partners=sorted({p for x in found for p in x.partners}),
            asks_cancelled=sum(x.asks_cancelled for x in found), data_keys_erased=destroyed,
        )
        return JSONResponse(result.model_dump(), status_code=200 if result.complete else 202)

    return r
