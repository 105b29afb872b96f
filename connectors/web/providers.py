"""Provider webhooks: Twilio status callbacks and inbound SMS, SendGrid's Event Webhook.

Signatures are checked with the providers' own SDK helpers (Twilio's ``RequestValidator``
against ``TURNOUT_PUBLIC_URL``, since proxies rewrite hosts; SendGrid's ECDSA
``EventWebhook``). A bad signature gets 403 and nothing is written. What passes is written
to the provider topic keyed by person key, with no raw phone or email.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

from contracts.asks import parse_ask_id
from contracts.people import normalize_phone
from contracts.providers import EmailEvent, ProviderEnvelope, SmsReply, SmsStatus
from streams.keys import person_key
from streams.settings import Settings
from streams.topology import provider_topic

from .publisher import Publisher

log = logging.getLogger(__name__)
_WORD = re.compile(r"[A-Za-z]+")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def router(s: Settings, publisher: Publisher) -> APIRouter:
    r = APIRouter(prefix="/v1/providers", tags=["providers"])
    topic = provider_topic(s)
    secret = s.person_key_bytes()
    twilio = RequestValidator(s.twilio_auth_token.get_secret_value()) if s.twilio_auth_token else None

    async def twilio_form(request: Request) -> dict[str, str]:
        form = {k: str(v) for k, v in (await request.form()).items()}
        url = s.public_url.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if twilio is None or not twilio.validate(url, form, request.headers.get("x-twilio-signature", "")):
            raise HTTPException(403, "invalid X-Twilio-Signature")
        return form

    async def write(envelopes: list[ProviderEnvelope]) -> None:
        # BrokerUnavailable becomes 503 + Retry-After (the app's handler): providers retry.
        await publisher.publish([(e.person_key.encode(), e.model_dump_json().encode()) for e in envelopes], topic)

    @r.post("/twilio/status", summary="Twilio message status callback (signed)")
    async def twilio_status(request: Request, ask: str) -> Response:
        form = await twilio_form(request)
        try:
            _, pk, _ = parse_ask_id(ask)
            event = SmsStatus(ask_id=ask, message_sid=form["MessageSid"], status=form["MessageStatus"], error_code=form.get("ErrorCode") or None)
        except (KeyError, ValueError) as exc:
            raise HTTPException(422, f"not a status callback for one of our asks: {exc}") from None
        await write([ProviderEnvelope(person_key=pk, received_at=_now(), event=event)])
        return Response(status_code=204)

    @r.post("/twilio/inbound", summary="Inbound SMS from a supporter (signed)")
    async def twilio_inbound(request: Request) -> Response:
        form = await twilio_form(request)
        try:
            pk = person_key(secret, normalize_phone(form["From"], s.default_region), None)
        except (KeyError, ValueError):
            raise HTTPException(422, "inbound SMS without a valid From number") from None
        event = SmsReply(message_sid=form.get("MessageSid", ""), keyword=reply_keyword(form.get("Body", "")),
                         opt_out_handled_by_twilio=s.twilio_advanced_opt_out)
        await write([ProviderEnvelope(person_key=pk, received_at=_now(), event=event)])
        return Response(EMPTY_TWIML, media_type="text/xml")

    @r.post("/sendgrid/events", summary="SendGrid Event Webhook (ECDSA-signed)")
    async def sendgrid_events(request: Request) -> dict[str, int]:
        body = await request.body()
        sig = request.headers.get("x-twilio-email-event-webhook-signature", "")
        ts = request.headers.get("x-twilio-email-event-webhook-timestamp", "")
        if not s.sendgrid_public_key or not sig or not ts or not _verified(s.sendgrid_public_key, body, sig, ts):
            raise HTTPException(403, "invalid SendGrid event webhook signature")
        try:
            items = json.loads(body)
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise HTTPException(400, "body must be a JSON array of events")
        envelopes, skipped = [], 0
        for item in items:
            try:
                _, pk, _ = parse_ask_id(str(item["ask_id"]))
                event = EmailEvent(ask_id=item["ask_id"], sg_event_id=str(item["sg_event_id"]), event=str(item["event"]),
                                   sg_message_id=item.get("sg_message_id"), reason=item.get("reason"))
            except (KeyError, TypeError, ValueError):
                skipped += 1  # not about one of our asks (or malformed): nothing to do
                continue
            envelopes.append(ProviderEnvelope(person_key=pk, received_at=_now(), event=event))
        if envelopes:
            await write(envelopes)
        return {"accepted": len(envelopes), "skipped": skipped}

    return r


def reply_keyword(body: str) -> str:
    """The word an inbound SMS is taken to say (STOP, YES, HELP…): its first run of letters,
    upper-cased, so "Stop!" and "yes, see you there" count; '' when it has none. Only this
    word is kept: what it means is ``agents.outreach.receipts.reply_kind``'s decision."""
    first = _WORD.search(body)
    return first.group().upper() if first else ""


def _verified(public_key: str, body: bytes, signature: str, timestamp: str) -> bool:
    try:
        return EventWebhook(public_key).verify_signature(body.decode(), signature, timestamp)
    except (ValueError, TypeError):
        return False


def _now() -> datetime:
    return datetime.now(timezone.utc)
