"""``POST /v1/partners/{partner_id}/action-network/{token}``: Action Network's webhook.

Action Network does not sign its webhooks, so the URL carries a per-partner secret token
(only its SHA-256 is in the coalition file), compared in constant time. A wrong partner or
token is a 404 and nothing is written. Action Network gives up unless it gets a 200 within
500 ms, so the handler only translates, writes to the events topic (acks=all) and answers;
the workers do the rest. What cannot be used is answered 200 too (a retry would not make it
usable) and kept on the dead-letter topic with the reason, never a 500.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from datetime import datetime, timezone
from typing import Any, Callable

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from contracts.partners import Partner
from streams.coalition import Coalition, token_digest
from streams.data_keys import DataKeys
from streams.settings import Settings
from streams.topology import dead_letter, excerpt, dead_letter_topic

from ..action_network import Rejected, translate
from .body import BadBody, load_json, problems, read_limited
from .errors import documented
from .ingress import envelopes, salvaged
from .publisher import Publisher

log = logging.getLogger(__name__)
_NOBODY = token_digest("")  # compared against when the partner is unknown, so timing says nothing
#: Deeper than the signed API allows: Action Network is not told 400 (it would not retry) for an
#: item whose fields turnout does not read nest deep; the translation reads only the known ones.
MAX_DEPTH = 256


class ActionNetworkRejection(BaseModel):
    index: int
    reason: str


class WebhookResult(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[ActionNetworkRejection]


def router(s: Settings, publisher: Publisher, coalition: Callable[[], Coalition], data_keys: DataKeys) -> APIRouter:
    r = APIRouter(tags=["partners"])
    secret = s.person_key_bytes()

    @r.post(
        "/v1/partners/{partner_id}/action-network/{token}",
        response_model=WebhookResult,
        summary="Action Network webhook (the URL's token authenticates the partner)",
        responses=documented(400, 404, 413, 503, s404="Unknown partner or wrong token; nothing written",
                             s503="The broker did not acknowledge; Action Network retries"),
        openapi_extra={"security": [], "requestBody": {"required": True, "content": {"application/json": {"schema": {
            # Items Action Network would never send are answered too: rejected with a reason.
            "oneOf": [{"type": "array", "items": {}}, {"type": "object"}]}}}}},
    )
    async def receive(partner_id: str, token: str, request: Request) -> WebhookResult:
        partner = coalition().get(partner_id)
        if not _token_matches(partner, token):
            raise HTTPException(404, "Not Found")
        items = load_json(await read_limited(request, s.max_body_bytes), MAX_DEPTH)
        items = [items] if isinstance(items, dict) else items
        if not isinstance(items, list):
            raise BadBody("body must be a JSON array of Action Network objects")
        indexed, rejected = translate(items, partner.action_network.actions)
        events, args = [e for _, e in indexed], (partner.id, datetime.now(timezone.utc), secret, s.default_region, data_keys, partner.role)
        records, result = await envelopes(events, *args)
        more, written_without = await salvaged(events, result.rejected, *args)  # a mistyped phone loses no RSVP; said below
        records += more
        refused: dict[int, list[str]] = {}  # by item: an item with opt-outs is several events
        for bad in result.rejected:
            reasons = refused.setdefault(indexed[bad.index][0], [])
            note = " (written without it)" if bad.index in written_without else ""
            reasons += [r for e in bad.errors if (r := f"{e.field}: {e.message}{note}") not in reasons]
        rejected += [Rejected(index, "; ".join(reasons)) for index, reasons in refused.items()]
        writes = [publisher.publish(records)] if records else []
        if rejected:
            writes.append(publisher.publish([_dead_letter(partner.id, items, x) for x in rejected], dead_letter_topic(s)))
            log.warning("action network: %d of %d items from %s rejected", len(rejected), len(items), partner.id)
        await asyncio.gather(*writes)  # both acknowledged before the 200, in one round trip
        return WebhookResult(accepted=len(records), duplicates=result.duplicates,
                             rejected=[ActionNetworkRejection(index=x.index, reason=x.reason) for x in sorted(rejected, key=lambda x: x.index)])

    return r


def _token_matches(partner: Partner | None, token: str) -> bool:
    expected = partner.action_network.token_sha256 if partner is not None else None
    ok = hmac.compare_digest(token_digest(token).encode(), (expected or _NOBODY).encode())
    return ok and expected is not None


def _dead_letter(partner: str, items: list[Any], x: Rejected) -> tuple[bytes, bytes]:
    # Without the person: a dead letter is kept a month, and the item can be sent again from
    # Action Network once its event is mapped.
    item = items[x.index]
    key = item.get("idempotency_key") if isinstance(item, dict) else None
    key = key if isinstance(key, str) and not any(True for _ in problems(key)) else ""  # a Kafka key must encode
    return dead_letter(key, x.reason, source="action-network", partner=partner, index=x.index, **excerpt(json.dumps(item, default=repr).encode()))
