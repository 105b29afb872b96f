"""Provider webhooks: Twilio status callbacks and inbound SMS, SendGrid's Event Webhook.

Signatures are checked with the providers' own SDK helpers (Twilio's ``RequestValidator``
against ``TURNOUT_PUBLIC_URL``, since proxies rewrite hosts; SendGrid's ECDSA
``EventWebhook``). What can be checked before the body is read is checked first (the webhook
is configured, the signature headers are there, SendGrid's signed timestamp is recent), and
the body is read within the size limit. A bad signature gets 403 and nothing is written.
What passes is written to the provider topic keyed by person key, with no raw phone or email.

SendGrid's replay window (``TURNOUT_SENDGRID_SIGNATURE_WINDOW``, 25 h): SendGrid retries a
batch it could not deliver "at increasing intervals for up to 24 hours after the event
occurs" and does not document whether a retry is signed anew, so the window assumes a retry
may carry its first attempt's timestamp. A captured batch can be replayed for at most that
long, and a replayed event changes nothing: provider facts are idempotent.
"""

from __future__ import annotations

import base64
import logging
import re
import time
import unicodedata
from datetime import datetime, timezone
from typing import Collection, get_args
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError
from sendgrid.helpers.eventwebhook import EventWebhook
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from contracts.asks import parse_ask_id
from contracts.events import SLUG_PATTERN
from contracts.people import normalize_phone
from contracts.providers import EMAIL_OPT_OUT, KEYWORDS, OPT_OUT_WORDS, SENDGRID_DROP_REASONS, SENDGRID_STATUS, TWILIO_KEYWORDS, EmailEvent, ProviderEnvelope, SmsReply, SmsStatus, TwilioStatusName
from connectors.signing import unix_seconds
from streams.friendly import explain
from streams.keys import person_key
from streams.settings import Settings
from streams.topology import provider_topic

from .body import BadBody, load_json, problems, read_limited
from .errors import FieldError, documented, error
from .openapi import SENDGRID_SECURITY, TWILIO_SECURITY
from .publisher import Publisher

log = logging.getLogger(__name__)
_WORD = re.compile(r"[^\W\d_]+")  # letters, accented ones too: "¡Sí!" says SÍ
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
#: A signed SendGrid timestamp may be this far in the future (clock skew), in seconds.
SENDGRID_SKEW = 300
#: SendGrid posts an array of event objects; anything in it that is not about one of our asks is skipped.
_JSON_ARRAY = {"application/json": {"schema": {"type": "array", "items": {}}, "examples": {"delivered": {"value": [
    {"event": "delivered", "sg_event_id": "ZGVsaXZlcmVk", "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
     "email": "ana@example.org", "timestamp": 1764547200, "ask_id": "rally-1201:p0123456789abcdef0123456789abcdef:email"}]}}}}
_INBOUND_FORM = {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["From"], "additionalProperties": {"type": "string"},
    "properties": {"From": {"type": "string"}, "Body": {"type": "string"}, "MessageSid": {"type": "string"}}},
    "examples": {"stop": {"value": {"From": "+15105550123", "Body": "STOP", "MessageSid": "SM0123456789abcdef0123456789abcdef"}}}}}
_STATUS_FORM = {"application/x-www-form-urlencoded": {"schema": {
    "type": "object", "required": ["MessageSid", "MessageStatus"], "additionalProperties": {"type": "string"},
    "properties": {"MessageSid": {"type": "string", "maxLength": 64}, "MessageStatus": {"type": "string", "enum": list(get_args(TwilioStatusName))},
                   "ErrorCode": {"type": "string", "pattern": "^[0-9]{0,6}$"}}},  # empty: none (as left out)
    "examples": {"delivered": {"value": {"MessageSid": "SM0123456789abcdef0123456789abcdef", "MessageStatus": "delivered"}}}}}
#: An ask id: <action id>:<person key>:<channel> (see contracts.asks).
ASK_PATTERN = rf"^{SLUG_PATTERN[1:-1]}:p[0-9a-z]{{1,64}}:(sms|email)$"


#: The skipped events a SendGrid answer explains.
MAX_SKIPS = 100


class Skip(BaseModel):
    index: int
    reason: str


class SendGridResult(BaseModel):
    accepted: int
    skipped: int
    skips: list[Skip] = Field(default=[], description=f"Why each skipped event was skipped (the first {MAX_SKIPS}).")



def router(s: Settings, publisher: Publisher) -> APIRouter:
    r = APIRouter(prefix="/v1/providers", tags=["providers"])
    topic = provider_topic(s)
    secret = s.person_key_bytes()
    twilio = RequestValidator(s.twilio_auth_token.get_secret_value()) if s.twilio_auth_token else None

    async def twilio_form(request: Request) -> dict[str, str]:
        signature = request.headers.get("x-twilio-signature", "")
        if twilio is None or not signature:  # refused before a byte of the body is read
            raise HTTPException(403, "invalid X-Twilio-Signature")
        pairs = _form(await read_limited(request, s.max_body_bytes))
        url = s.public_url.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # Every value of a repeated key: Twilio signs them all (the SDK reads them with getlist).
        if not twilio.validate(url, ImmutableMultiDict(pairs), signature):
            raise HTTPException(403, "invalid X-Twilio-Signature")
        return dict(pairs)

    async def write(envelopes: list[ProviderEnvelope]) -> None:
        # BrokerUnavailable becomes 503 + Retry-After (the app's handler): providers retry.
        await publisher.publish([(e.person_key.encode(), e.model_dump_json().encode()) for e in envelopes], topic)

    @r.post("/twilio/status", summary="Twilio message status callback (signed)", status_code=204,
            responses=documented(400, 403, 413, 422, 503), openapi_extra={"security": TWILIO_SECURITY, "requestBody": {"required": True, "content": _STATUS_FORM}})
    async def twilio_status(form: dict[str, str] = Depends(twilio_form),  # first: the signature, before the query is looked at
                            ask: str = Query(pattern=ASK_PATTERN, description="The ask the callback is about (set in StatusCallback)", examples=["rally-1201:p0123456789abcdef0123456789abcdef:sms"])) -> Response:
        try:
            _, pk, _ = parse_ask_id(ask)
        except ValueError:
            return error(422, "not a status callback for one of our asks", [FieldError(field="query.ask", message="not an ask id", type="value_error")])
        names = {"message_sid": "MessageSid", "status": "MessageStatus", "error_code": "ErrorCode"}
        try:  # a field Twilio left out is "missing", not the wrong type
            event = SmsStatus(ask_id=ask, **{f: form[n] for f, n in names.items() if form.get(n)})
        except ValidationError as exc:
            return error(422, "not a Twilio status callback", _fields(exc, names))
        await write([ProviderEnvelope(person_key=pk, received_at=_now(), event=event)])
        return Response(status_code=204)

    @r.post("/twilio/inbound", summary="Inbound SMS from a supporter (signed)", response_class=Response,
            responses={200: {"description": "Empty TwiML: no reply (nothing is written for a sender that is not a phone number: a short code, an alphanumeric id)",
                             "content": {"text/xml": {"schema": {"type": "string"}}}}, **documented(400, 403, 413, 422, 503)},
            openapi_extra={"security": TWILIO_SECURITY, "requestBody": {"required": True, "content": _INBOUND_FORM}})
    async def twilio_inbound(request: Request) -> Response:
        form = await twilio_form(request)
        if "From" not in form:
            return error(422, "not an inbound SMS", [FieldError(field="body.From", message="Field required", type="missing")])
        try:
            pk = person_key(secret, normalize_phone(form["From"], s.default_region), None)
        except ValueError:
            log.info("inbound SMS from a sender that is not a phone number: nothing to do")
            return Response(EMPTY_TWIML, media_type="text/xml")
        body = form.get("Body", "")
        whole = body.strip().upper() in TWILIO_KEYWORDS  # Twilio's opt-out handling takes a keyword as the whole text only
        event = SmsReply(message_sid=form.get("MessageSid", ""), keyword=reply_keyword(body, (s.sms_footer, s.sms_footer_es)), sender=pk,
                         opt_out_handled_by_twilio=s.twilio_advanced_opt_out and whole, opt_in_counts=whole)
        await write([ProviderEnvelope(person_key=pk, received_at=_now(), event=event)])
        return Response(EMPTY_TWIML, media_type="text/xml")

    @r.post("/sendgrid/events", summary="SendGrid Event Webhook (ECDSA-signed)", response_model=SendGridResult,
            responses=documented(400, 403, 413, 503, s403=f"Bad or missing signature, or a timestamp more than {s.sendgrid_signature_window} s old; nothing written"),
            openapi_extra={"security": SENDGRID_SECURITY, "requestBody": {"required": True, "content": _JSON_ARRAY}})
    async def sendgrid_events(request: Request) -> SendGridResult:
        sig = request.headers.get("x-twilio-email-event-webhook-signature", "")
        ts = request.headers.get("x-twilio-email-event-webhook-timestamp", "")
        if not s.sendgrid_public_key or not sig:  # refused before a byte of the body is read
            raise HTTPException(403, "invalid SendGrid event webhook signature")
        if not _fresh(ts, time.time(), s.sendgrid_signature_window):
            raise HTTPException(403, f"SendGrid event webhook timestamp missing, or more than {s.sendgrid_signature_window} s old")
        body = await read_limited(request, s.max_body_bytes)
        if not _verified(s.sendgrid_public_key, body, sig, ts):
            raise HTTPException(403, "invalid SendGrid event webhook signature")
        items = load_json(body)
        if not isinstance(items, list):
            raise BadBody("body must be a JSON array of events")
        read = [_email_event(item) for item in items]
        envelopes = [e for e in read if isinstance(e, ProviderEnvelope)]
        if envelopes:
            await write(envelopes)
        skips = [Skip(index=i, reason=e) for i, e in enumerate(read) if isinstance(e, str)]
        return SendGridResult(accepted=len(envelopes), skipped=len(skips), skips=skips[:MAX_SKIPS])

    return r


def _email_event(item: object) -> ProviderEnvelope | str:
    """The event about one of our asks in ``item``, or why it is skipped (not ours, or malformed: nothing to do)."""
    if not isinstance(item, dict):
        return "not an object"
    if garbled := next(iter(problems(item)), None):
        return f"{garbled[0]}: {garbled[1]}"
    if "ask_id" not in item:
        return "not about one of turnout's asks (no ask_id)"
    for name in ("ask_id", "sg_event_id", "event"):
        if not isinstance(item.get(name), str):
            return f"{name} is missing" if name not in item else f"{name} is not a string"
    if not re.fullmatch(ASK_PATTERN, item["ask_id"]) or not item["ask_id"].endswith(":email"):
        return "ask_id is not one of turnout's email asks"
    if item["event"] not in SENDGRID_STATUS and item["event"] not in EMAIL_OPT_OUT:
        return f"{item['event'][:40]!r} is not an event turnout reads"
    _, pk, _ = parse_ask_id(item["ask_id"])
    try:
        event = EmailEvent(ask_id=item["ask_id"], sg_event_id=item["sg_event_id"], event=item["event"],
                           sg_message_id=item.get("sg_message_id"), reason=kept_reason(r) if isinstance(r := item.get("reason"), str) else r,
                           bounce_type=t if isinstance(t := item.get("type"), str) else None)
    except ValidationError as exc:
        return explain(exc)
    return ProviderEnvelope(person_key=pk, received_at=_now(), event=event)


#: The SMTP reply code and enhanced status code a receiving server's text begins with.
_SMTP_CODES = re.compile(r"\s*(\d{3}(?:[ -][245]\.\d{1,3}\.\d{1,3})?)\b")


def kept_reason(reason: str) -> str | None:
    """What is written of a SendGrid event's ``reason``: SendGrid's own words for a drop as they
    are (the receipts agent reads them), else only the SMTP codes the receiving server's text
    begins with. That text is the server's prose, out of erasure's reach once on the provider
    topic, and may quote the address or name the person ("The email account of <name> is
    disabled": an outside probe)."""
    if reason in SENDGRID_DROP_REASONS:
        return reason
    codes = _SMTP_CODES.match(reason)
    return codes.group(1) if codes else None


#: The most fields a Twilio form may have (its callbacks have a few dozen, media links included).
FORM_FIELDS = 200


def _form(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("body is not an application/x-www-form-urlencoded form in UTF-8") from None
    try:
        return list(parse_qsl(text, keep_blank_values=True, max_num_fields=FORM_FIELDS))
    except ValueError:  # the only one parse_qsl raises of a str, past max_num_fields
        raise BadBody(f"the form has more than {FORM_FIELDS} fields") from None


def _fields(exc: ValidationError, names: dict[str, str]) -> list[FieldError]:
    return [FieldError.of("body." + names.get(str(e["loc"][0]), str(e["loc"][0])), e) for e in exc.errors(include_url=False, include_input=False)]


def _fresh(timestamp: str, now: float, window: int) -> bool:
    """Whether a signed timestamp is at most ``window`` s old and at most ``SENDGRID_SKEW`` s ahead."""
    seconds = unix_seconds(timestamp)
    return seconds is not None and now - window <= seconds <= now + SENDGRID_SKEW


def reply_keyword(body: str, ours: Collection[str] = ()) -> str:
    """The keyword an inbound SMS says (STOP, YES, SÍ, HELP…), read as a reasonable person reads
    it (the FCC's revocation rule: consent is revoked by any reasonable means, and when in doubt
    nobody is texted): an opt-out anywhere in it, as a word ("Please stop"; but "stop by" is
    coming over) or in other words ("opt me out", "don't text me", "no more texts", "S T O P",
    "dame de baja": OPTOUT), else its first word ("yes, see you there"; AYUDA is HELP). Each word
    a run of letters, upper-cased, in Unicode's compatibility form (NFKC: a full-width "ＳＴＯＰ"
    or a decomposed "Sí" is the same word); '' when that is no keyword (a name, say: only
    keywords are kept). Our own text quoted in the reply is not read: a phone's reaction to it
    ("Liked “…”", sent as an SMS: nothing at all) or a quote holding one of ``ours`` (our SMS
    footers, with their STOP). What it means is ``agents.outreach.receipts.reply_kind``'s decision."""
    words = [m.group().upper() for m in _WORD.finditer(unquoted(unicodedata.normalize("NFKC", body), ours))]
    for i, word in enumerate(words):
        if word in OPT_OUT_WORDS and not (word == "STOP" and words[i + 1 : i + 2] == ["BY"]):
            return word
    if "STOP" in "".join(w if len(w) == 1 else " " for w in words).split():
        return "STOP"  # spelled out: "S T O P", "s.t.o.p"
    if _OPT_OUT_PHRASE.search(" ".join(words)):
        return "OPTOUT"
    first = words[0] if words else ""
    return "HELP" if first == "AYUDA" else first if first in KEYWORDS else ""


#: Opting out in other words, in English and Spanish (the words of a reply, upper-cased, one space apart).
_TEXTS = r"(?:TEXT|TEXTS|TEXTING|MESSAGE|MESSAGES|MESSAGING|MSG|MSGS|SMS|CONTACT|SEND)"
_OPT_OUT_PHRASE = re.compile(
    rf"\b(?:OPT (?:ME )?OUT|REMOVE (?:ME|MY)|TAKE ME OFF|(?:DON T|DONT|DO NOT) {_TEXTS}|NO MORE {_TEXTS}"
    r"|BAJA|CANCELAR|NO ME (?:MANDEN|MANDES|ENVÍEN|ENVÍES|ENVIEN|ENVIES|ESCRIBAN|ESCRIBAS)|NO M[AÁ]S MENSAJES)\b")
#: The words an iPhone (or an Android phone) writes before the text it quotes when a reaction to
#: it goes out as an SMS ("Liked “…”", "Le gustó “…”").
_REACTION = re.compile(r"\s*(?:liked|loved|disliked|laughed at|emphasi[sz]ed|questioned|removed an? \w+ from|reacted \S{1,8} to"
                       r"|le gustó|le encantó|no le gustó|le hizo reír|le dio risa|enfatizó|destacó|cuestionó|reaccionó con \S{1,8} a)"
                       r"\s*([“\"«„])", re.IGNORECASE)
_CLOSING = {"“": "”", '"': '"', "«": "»", "„": "“”"}
_QUOTED = re.compile(r'“[^”]*”|"[^"]*"|«[^»]*»|„[^“”]*[“”]')


def unquoted(text: str, ours: Collection[str]) -> str:
    """``text`` without the text of ours it quotes: a reaction's quote (to its closing mark, or
    to the end when the phone cut it short) and any quote that holds one of ``ours``."""
    if reaction := _REACTION.match(text):
        rest = text[reaction.end():]
        end = min((i for c in _CLOSING[reaction.group(1)] if (i := rest.find(c)) >= 0), default=len(rest))
        text = rest[end + 1:]
    plain = [" ".join(o.casefold().split()) for o in ours if o.strip()]
    return _QUOTED.sub(lambda q: " " if any(o in " ".join(q.group().casefold().split()) for o in plain) else q.group(), text)


def _verified(public_key: str, body: bytes, signature: str, timestamp: str) -> bool:
    """SendGrid's ECDSA check (the SDK's key and algorithm) over the body's bytes as they came:
    the SDK's ``verify_signature`` takes a str, so a signed body that is not UTF-8 would read as
    a bad signature (403) instead of a bad body (400)."""
    try:
        EventWebhook(public_key).public_key.verify(base64.b64decode(signature), timestamp.encode() + body,
                                                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _now() -> datetime:
    return datetime.now(timezone.utc)
