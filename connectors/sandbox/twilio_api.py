"""The part of Twilio's Messages API that turnout uses, answered the way Twilio answers it.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form-encoded, HTTP basic auth with
the account sid and auth token) → 201 and a Message resource; errors as Twilio's legacy JSON
(``code``, ``message``, ``more_info``, ``status``), which the SDK turns into
``TwilioRestException(status, code)``. A request beyond the account's concurrency limit gets
429 / 20429; a From number whose queue holds 10 hours of its MPS refuses more with 21611.
Accepted messages then leave, at once or through their sender's queue, and report their
statuses by callback (``twilio_status``).
"""

from __future__ import annotations

import base64
import json
import math
import re
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .queue import QUEUE_OVERFLOW_FROM
from .signing import twilio_headers
from .twilio_status import API, dispatch

if TYPE_CHECKING:
    from .server import Sandbox

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def count_segments(body: str) -> int:
    """SMS segments: GSM-7 160/153 septets, else UCS-2 70/67 code units."""
    if all(c in GSM7 or c in GSM7_EXTENDED for c in body):
        units, single, multi = sum(2 if c in GSM7_EXTENDED else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def error(status: int, code: int, message: str, headers: dict | None = None) -> JSONResponse:
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    return JSONResponse(body, status_code=status, headers=headers)


def authorized(request: Request, account_sid: str, auth_token: str) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return user == account_sid and password == auth_token


def refusal(sb: "Sandbox", form: dict[str, str]) -> JSONResponse | None:
    """The 400 Twilio would give this request, if any."""
    to, body = form.get("To", ""), form.get("Body", "")
    sender, service = form.get("From"), form.get("MessagingServiceSid")
    if not to:
        return error(400, 21604, "A 'To' phone number is required.")
    if not sender and not service:
        return error(400, 21603, "A 'From' phone number is required.")
    if not body and "MediaUrl" not in form:
        return error(400, 21602, "Message body is required.")
    if len(body) > 1600:
        return error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
    if not E164.match(to) or to in sb.faults.invalid_numbers:
        return error(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if sender and sb.config.twilio_numbers and sender not in sb.config.twilio_numbers:
        return error(400, 21606, f"The From phone number {sender} is not a valid, SMS-capable inbound phone number or short code for your account.")
    if to in sb.faults.opted_out_numbers or to in sb.opted_out:
        return error(400, 21610, "Attempt to send to unsubscribed recipient")
    return None


def resource(sb: "Sandbox", record: dict) -> dict:
    sid, left = record["id"], record.get("left")
    uri = f"/{API}/Accounts/{sb.config.account_sid}/Messages/{sid}"
    return {
        "account_sid": sb.config.account_sid, "api_version": API, "body": record["body"],
        "date_created": formatdate(record["created"], usegmt=True),
        "date_sent": formatdate(left, usegmt=True) if left else None,
        "date_updated": formatdate(record["history"][-1]["at"], usegmt=True), "direction": "outbound-api",
        "error_code": record.get("error_code"), "error_message": None, "from": record["from"],
        "messaging_service_sid": record["messaging_service_sid"], "num_media": "0",
        "num_segments": str(record["segments"]), "price": None, "price_unit": "USD", "sid": sid,
        "status": record["status"], "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": record["to"], "uri": f"{uri}.json",
    }


def denied(sb: "Sandbox", request: Request, account_sid: str) -> JSONResponse | None:
    """The 401 or 404 Twilio gives a request without this account's credentials, if any."""
    config = sb.config
    if not authorized(request, config.account_sid, config.auth_token.get_secret_value()):
        return error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    if account_sid != config.account_sid:
        return error(404, 20404, f"The requested resource {request.url.path} was not found")
    return None


def twilio_router(sb: "Sandbox") -> APIRouter:
    router = APIRouter(tags=["twilio"])

    @router.post(f"/{API}/Accounts/{{account_sid}}/Messages.json", status_code=201)
    async def create_message(account_sid: str, request: Request):
        if (refused := denied(sb, request, account_sid)) is not None:
            return refused
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        if not sb.enter_request():
            sb.attempt("sms", [form.get("To", "")], "429")
            return error(429, 20429, "Too Many Requests")
        try:
            return await create(form)
        finally:
            sb.leave_request()

    async def create(form: dict[str, str]) -> JSONResponse:
        config = sb.config
        fault = await sb.misbehave("sms", [form.get("To", "")])
        if fault == "429":
            return error(429, 20429, "Too Many Requests")
        if fault == "5xx":
            status = sb.dice.server_error()
            return error(status, 20500 if status == 500 else 20503, "Service unavailable" if status == 503 else "Internal Server Error")
        if fault == "timeout":
            return error(504, 20504, "Gateway Timeout")  # after the hang, for whoever still listens
        if (refused := refusal(sb, form)) is not None:
            sb.attempt("sms", [form.get("To", "")], str(json.loads(refused.body)["code"]))
            return refused
        service, number = form.get("MessagingServiceSid"), form.get("From")
        validity = int(form["ValidityPeriod"]) if form.get("ValidityPeriod", "").isdigit() else None
        # Twilio queues by the sender it sends from: the From number if given, else the service's.
        sender = number or service or ""
        admission = sb.queues.admit(sender, validity) if sb.queues.enabled else None
        if admission is not None and admission.verdict == "overflow" and number:
            sb.attempt("sms", [form["To"]], str(QUEUE_OVERFLOW_FROM))
            return error(400, QUEUE_OVERFLOW_FROM, "This 'From' number has exceeded the maximum number of queued messages")
        sb.attempt("sms", [form["To"]], "ok")
        record = sb.record(
            channel="sms", id="SM" + sb.dice.hex(32), to=form["To"],
            sender=number or config.sender_number, messaging_service_sid=service,
            status="accepted" if service and not number else "queued",
            body=form.get("Body", ""), segments=count_segments(form.get("Body", "")),
            status_callback=form.get("StatusCallback"), validity_period=validity, left=None, left_at=None,
        )
        dispatch(sb, record, sender, admission)
        return JSONResponse(resource(sb, record), status_code=201)

    return router


async def post_reply(sb: "Sandbox", sender: str, body: str, to: str | None) -> dict:
    """Deliver an inbound SMS to the configured inbound URL, as Twilio's incoming-message webhook."""
    word = body.strip().upper()
    if word in STOP_WORDS:
        sb.opted_out.add(sender)  # Twilio's own opt-out handling: later sends get 21610
    elif word in START_WORDS:
        sb.opted_out.discard(sender)
    sid = "SM" + sb.dice.hex(32)
    params = {
        "AccountSid": sb.config.account_sid, "ApiVersion": API, "Body": body, "From": sender,
        "To": to or sb.config.sender_number, "MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid,
        "SmsStatus": "received", "NumMedia": "0", "NumSegments": str(count_segments(body)),
    }
    status = await sb.post_form(sb.config.inbound_url, params) if sb.config.inbound_url else None
    return {"message_sid": sid, "receiver_status": status}


def form_request(auth_token: str, url: str, params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    headers = {"Content-Type": "application/x-www-form-urlencoded", **twilio_headers(auth_token, url, params)}
    return urlencode(params).encode(), headers
