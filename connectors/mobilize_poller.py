"""Polling partners' Mobilize organizations for attendances (``turnout mobilize poll``).

One pass per partner, side by side: read ``GET /v1/organizations/{org}/attendances?updated_since=<cursor>``
page by page (``next`` links carry Mobilize's cursor), at most ``mobilize_rate`` reads per
second across all partners (Mobilize allows 15), waiting out a 429's Retry-After; write the
events to the events topic (acks=all) through the ingress's own validation; then, and only
then, store the new cursor (the newest ``modified_date`` seen) on a compacted Kafka topic.
A crash before the cursor is stored reads some attendances again: they become the same keyed
facts, so nothing is counted twice. A failed pass leaves the cursor where it was.

Pages are written as they are read, one at a time in memory. A malformed attendance is
skipped with its reason on the dead-letter topic, like one of an unmapped event, and the cursor
moves past it; a malformed page fails the pass (``MalformedPage``), as does a ``next`` link
that is not a URL of the API, leads back to a page already read, or past ``max_pages`` pages:
the cursor stays, and the next pass reads the pages again (the same keyed facts). Any other
failure of one partner's pass is logged and retried at the next interval: the poller (and the
`turnout up` it runs in) never stops for one partner's answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
import time
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, Collection, Sequence

import httpx
from aiokafka import TopicPartition
from pydantic import ValidationError

from contracts.partners import Partner
from streams.coalition import Coalition, CoalitionError
from streams.data_keys import DataKeys
from streams.settings import Settings
from streams.topology import dead_letter, dead_letter_topic, mobilize_cursor_topic
from streams.transport import stop_consumer

from .mobilize import Page, Skipped, marks, modified_of, newest, next_cursor, reasons, start_from, translate
from .providers.errors import RetryLater
from .providers.ratelimit import TokenBucket
from .providers.retry import retry_after, with_retries
from .web.body import BadBody, load_json
from .web.ingress import FUTURE_TOLERANCE, envelopes, salvaged
from .web.publisher import Publisher
from .web.replay import replay_consumer

log = logging.getLogger(__name__)


class MobilizeRefused(Exception):
    """Mobilize refused a read for good (403: bad key, 404: no such organization)."""


class MalformedPage(MobilizeRefused):
    """Mobilize answered a read with something that is not a page of attendances (or links to
    a next page that cannot be one); the pass fails with its cursor kept, and the next one reads
    the same pages again."""


#: The most pages one pass reads (at 100 attendances a page, a million attendances).
MAX_PAGES = 10_000


class MobilizeClient:
    def __init__(self, base_url: str, rate: float, http: httpx.AsyncClient, attempts: int = 6, max_pages: int = MAX_PAGES) -> None:
        self.base_url = base_url.rstrip("/")
        self.bucket = TokenBucket(rate)
        self.http = http
        self.attempts = attempts
        self.max_pages = max_pages
        self.rng = random.Random()

    async def pages(self, org: int, key: str, since: int) -> AsyncIterator[list[Any]]:
        """The attendances of ``org`` modified at or after ``since`` (unix seconds), a page at a
        time, as Mobilize sent them (``translate`` checks each)."""
        url: str | None = f"{self.base_url}/v1/organizations/{org}/attendances"
        params: dict[str, Any] | None = {"updated_since": since}
        read: set[str] = set()
        while url:
            if len(read) == self.max_pages:
                raise MalformedPage(f"Mobilize has more than {self.max_pages} pages of attendances for one pass")
            page = await with_retries(lambda u=url, p=params: self._get(u, p, key), attempts=self.attempts, base=0.5, cap=60, rng=self.rng)
            read.add(url)
            if page.next in read:
                raise MalformedPage("a page from Mobilize links its next page back to a page already read")
            yield page.data
            url, params = page.next, None  # the next link carries the query and the cursor

    async def _get(self, url: str, params: dict[str, Any] | None, key: str) -> Page:
        await self.bucket.acquire()  # every request counts against the limit, retries included
        try:
            r = await self.http.get(url, params=params, headers={"Authorization": f"Bearer {key}"})
        except httpx.TransportError as exc:
            raise RetryLater(None, None, f"no answer from Mobilize: {type(exc).__name__}") from None
        if r.status_code == 429 or r.status_code >= 500:
            raise RetryLater(retry_after(r.headers.get("retry-after"), time.time()), str(r.status_code))
        if r.status_code != 200:
            raise MobilizeRefused(f"{r.status_code} from Mobilize: {said(r)}")
        try:  # numbers too long to read stay text, for the attendance that holds them to be skipped
            page = Page.model_validate(load_json(r.content))
        except BadBody as exc:
            raise MalformedPage(f"a page from Mobilize is not JSON turnout reads: {exc}") from None
        except ValidationError as exc:
            raise MalformedPage(f"a page from Mobilize is not a page of attendances: {reasons(exc, 'page')}") from None
        if page.next is not None and not page.next.startswith(self.base_url + "/"):
            # Following it would send the partner's API key to whoever it names.
            raise MalformedPage(f"a page from Mobilize links its next page outside {self.base_url}")
        if page.next is not None:
            try:
                httpx.URL(page.next)
            except httpx.InvalidURL as exc:
                raise MalformedPage(f"a page from Mobilize links its next page to something that is not a URL ({exc})") from None
        return page


#: How many skipped attendances a partner's cursor remembers as dead-lettered (``CursorStore``):
#: the last pass's newest, enough for those a next pass reads again at the cursor.
REPORTED_KEPT = 1000


def reported_as(reason: str) -> str:
    """How a skipped attendance is remembered as dead-lettered: a digest of its reason."""
    return hashlib.sha256(reason.encode()).hexdigest()[:16]


class CursorStore:
    """Each partner's cursor, on a compacted topic keyed by partner id, with the skipped
    attendances its pass dead-lettered (``reported_as``): a pass in another process (``poll
    --once`` again) that reads them again at the cursor does not dead-letter them twice; and
    the mapping it was read under (``mapped``, ``mobilize.marks``: a pass finds what was mapped since)."""

    def __init__(self, s: Settings, publisher: Publisher) -> None:
        self.topic = mobilize_cursor_topic(s)
        self.settings = s
        self.publisher = publisher

    async def load(self, timeout: float = 10.0) -> tuple[dict[str, int], dict[str, set[str]], dict[str, set[str]]]:
        """The latest cursor per partner, what its pass reported and the mapping then (a cursor
        stored before it was kept: none), the topic read up to its high watermark."""
        consumer = replay_consumer(self.settings)
        await consumer.start()
        cursors: dict[str, int] = {}
        reported: dict[str, set[str]] = {}
        mapped: dict[str, set[str]] = {}
        try:
            tp = TopicPartition(self.topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            # The high watermark from fetch responses, not ListOffsets (wrong on the embedded broker).
            while loop.time() < deadline:
                for m in (await consumer.getmany(tp, timeout_ms=300)).get(tp, []):
                    value, partner = json.loads(m.value), m.key.decode()
                    cursors[partner], reported[partner] = value["updated_since"], set(value.get("reported", ()))
                    if "mapped" in value:
                        mapped[partner] = set(value["mapped"])
                hw = consumer.highwater(tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    break
        finally:
            await stop_consumer(consumer)
        return cursors, reported, mapped

    async def save(self, partner: str, since: int, reported: Sequence[str] = (), mapped: Collection[str] = ()) -> None:
        value = {"updated_since": since, "saved_at": datetime.now(timezone.utc).isoformat(), "reported": reported[-REPORTED_KEPT:],
                 "mapped": sorted(mapped)}
        await self.publisher.publish([(partner.encode(), json.dumps(value).encode())], self.topic)


async def poll_partner(s: Settings, client: MobilizeClient, publisher: Publisher, cursors: CursorStore,
                       partner: Partner, since: int, sponsors: dict[int, str], data_keys: DataKeys, reported: set[str] | None = None,
                       mapped: set[str] | None = None) -> int:
    """One pass for one partner; returns the new cursor (already stored, with what was reported).
    ``reported``: the skipped attendances (``reported_as``) the previous pass dead-lettered,
    replaced by this pass's: one that Mobilize answers again (at the cursor, or with no date to
    move it) is not lettered twice. ``mapped``: the mapping when the cursor was stored
    (``mobilize.marks``; ``None``: not known), replaced by today's; with an event mapped (or
    mapped to another action, or another organization) since, every attendance is read again
    (``mobilize.start_from``; read again, they are the same keyed facts)."""
    link = partner.mobilize
    assert link is not None
    now, previous = datetime.now(timezone.utc), since
    if (start := start_from(since, mapped, link.organization_id, link.events)) != since:
        log.info("mobilize: %s: events mapped (or the organization changed) since the last pass: reading every attendance again", partner.id)
        since = start
    cursor, read, skipped, lettered, new_letters = since, 0, {}, set(reported or ()), 0
    try:
        async for found in client.pages(link.organization_id, link.api_key.get_secret_value(), since):
            # One modified before the cursor this pass started from was read (and, skipped, dead-lettered) by the pass that moved it.
            page_skipped = {reported_as(r): r for r, modified in await _write_page(s, publisher, partner, found, now, sponsors, data_keys)
                            if modified is None or modified >= previous}
            if letters := [dead_letter(partner.id, r, source="mobilize", partner=partner.id) for d, r in page_skipped.items() if d not in lettered]:
                await publisher.publish(letters, dead_letter_topic(s))
                new_letters += len(letters)
            skipped.update(page_skipped)
            lettered.update(page_skipped)
            cursor, read = newest(found, cursor, until=int((now + FUTURE_TOLERANCE).timestamp())), read + len(found)
    except BaseException:  # the pages read before a failure, and the last pass's, are read again: not lettered twice
        if reported is not None:
            reported.update(skipped)
        raise
    if reported is not None:
        reported.clear()
        reported.update(skipped)
    cursor = next_cursor(cursor, previous, int(now.timestamp()))
    await cursors.save(partner.id, cursor, list(skipped), marks(link.organization_id, link.events))
    if mapped is not None:
        mapped.clear()
        mapped.update(marks(link.organization_id, link.events))
    log.info("mobilize: %s: %d attendances read, %d events of them skipped, %d newly dead-lettered (the others were before), cursor %d",
             partner.id, read, len(skipped), new_letters, cursor)
    return cursor


async def _write_page(s: Settings, publisher: Publisher, partner: Partner, found: list[Any], now: datetime, sponsors: dict[int, str],
                      data_keys: DataKeys) -> list[tuple[str, int | None]]:
    """Write one page's events; why its attendances (or their events) were skipped, each with
    the attendance's ``modified_date`` (``None``: none it could have)."""
    assert partner.mobilize is not None
    by_partner: dict[str, list[tuple[dict[str, Any], int | None]]] = {}
    skipped = []
    for att in found:
        modified = modified_of(att)
        try:
            a = translate(att, partner.id, partner.mobilize.events, sponsors)
        except Skipped as exc:
            skipped.append((str(exc), modified))
            continue
        by_partner.setdefault(a.partner, []).extend((event, modified) for event in a.events)
    for credited, pairs in by_partner.items():
        events = [event for event, _ in pairs]
        args = (credited, now, s.person_key_bytes(), s.default_region, data_keys)
        records, result = await envelopes(events, *args)
        more, written_without = await salvaged(events, result.rejected, *args)  # and said, below
        records += more
        for r in result.rejected:
            note = " (written without it)" if r.index in written_without else ""
            skipped.append((f"{credited}: {events[r.index]['event_id']}: {r.errors[0].field}: {r.errors[0].message}{note}", pairs[r.index][1]))
        for i in range(0, len(records), s.max_batch):
            await publisher.publish(records[i : i + s.max_batch])
    return skipped


async def poll(s: Settings, coalition: Callable[[], Coalition], publisher: Publisher, http: httpx.AsyncClient, once: bool,
               data_keys: DataKeys) -> None:
    """Poll every enabled partner connected to Mobilize, every ``mobilize_interval`` seconds (or
    once). ``coalition()`` is read at every pass, as the web app re-reads the file: a partner
    disabled there (or a key or mapping changed) writes nothing more from the next pass on."""
    client = MobilizeClient(s.mobilize_base_url, s.mobilize_rate, http)
    cursors = CursorStore(s, publisher)
    since, reported, mapped = await cursors.load()
    partners: list[Partner] = []
    while True:
        try:
            partners = [p for p in coalition().partners.values() if p.enabled and p.mobilize is not None]
        except CoalitionError as exc:  # a file being edited by hand: poll as before, and say so
            log.warning("mobilize: %s; polling the partners it held before", exc)
        await poll_all(s, client, publisher, cursors, partners, since, reported, data_keys, once, mapped)
        if once:
            return
        await asyncio.sleep(s.mobilize_interval)  # the polling interval, not synchronisation


async def poll_all(s: Settings, client: MobilizeClient, publisher: Publisher, cursors: CursorStore, partners: list[Partner],
                   since: dict[str, int], reported: dict[str, set[str]], data_keys: DataKeys, once: bool,
                   mapped: dict[str, set[str]] | None = None) -> None:
    """One pass of every partner, side by side (their reads share the client's rate): a partner
    waiting out a Retry-After, or slow to answer, holds none of the others back. ``since`` gets
    each new cursor. A failed pass is logged, its cursor kept; with ``once``, the first failure
    is raised once every pass has ended."""
    sponsors = {p.mobilize.organization_id: p.id for p in partners if p.mobilize is not None}

    async def one(partner: Partner) -> None:
        try:
            since[partner.id] = await poll_partner(s, client, publisher, cursors, partner, since.get(partner.id, 0), sponsors, data_keys,
                                                   reported.setdefault(partner.id, set()),
                                                   mapped.setdefault(partner.id, set()) if mapped is not None else None)
        except (MobilizeRefused, RetryLater) as exc:
            if once:
                raise
            log.warning("mobilize: %s: pass failed, cursor kept: %s", partner.id, exc)
        except Exception as exc:  # noqa: BLE001 - one partner's pass, whatever broke it, is tried again next interval
            if once:
                raise
            log.error("mobilize: %s: pass failed, cursor kept: %s: %s", partner.id, type(exc).__name__, exc)

    failures = [r for r in await asyncio.gather(*map(one, partners), return_exceptions=True) if isinstance(r, BaseException)]
    if failures:
        raise failures[0]


def said(r: httpx.Response) -> str:
    """What Mobilize said, in one line: its error's detail, else the body's words without markup
    (a proxy's HTML page came out as ten lines of it)."""
    try:
        body = r.json()
    except ValueError:
        body = None
    detail = body.get("error", {}).get("detail") if isinstance(body, dict) and isinstance(body.get("error"), dict) else None
    text = detail if isinstance(detail, str) else re.sub(r"<[^>]*>", " ", r.text)
    return " ".join(text.split())[:200] or "(no text)"
