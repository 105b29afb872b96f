"""The part of SendGrid's v3 Mail Send API that turnout uses, and its Event Webhook.

``POST /v3/mail/send`` (``Authorization: Bearer <key>``) → 202 with ``X-Message-Id``; 400 with
``{"errors": [{"message", "field", "help"}]}`` for a malformed request; 429 with
``X-RateLimit-Reset`` (unix seconds). Each recipient of an accepted request then produces
``processed`` and ``delivered`` (or ``bounce``) events, or only ``dropped``, posted as JSON arrays
to the event webhook URL, signed with the sandbox's ECDSA key; every personalization's
``custom_args`` (over the message-wide ones) appear as top-level keys of its events.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

if TYPE_CHECKING:
    from .server import Sandbox

MAX_PERSONALIZATIONS = 1000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def errors(status: int, *items: tuple[str | None, str], headers: dict | None = None) -> JSONResponse:
    body = {"errors": [{"message": message, "field": field, "help": None} for field, message in items]}
    return JSONResponse(body, status_code=status, headers=headers)


def problems(mail: Any) -> list[tuple[str | None, str]]:
    """(field, message) for everything SendGrid would reject in ``mail``."""
    if not isinstance(mail, dict):
        return [(None, "Bad Request")]
    found: list[tuple[str | None, str]] = []
    sender = mail.get("from")
    if not isinstance(sender, dict) or not EMAIL.match(str(sender.get("email", ""))):
        found.append(("from.email", "The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter."))
    ps = mail.get("personalizations")
    if not isinstance(ps, list) or not 1 <= len(ps) <= MAX_PERSONALIZATIONS:
        found.append(("personalizations", "The personalizations field is required and must have at least one personalization and no more than 1000."))
        ps = []
    if not mail.get("template_id"):
        content = mail.get("content")
        if not isinstance(content, list) or not content or not all(isinstance(c, dict) and c.get("type") and c.get("value") for c in content):
            found.append(("content", "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block."))
        if not mail.get("subject") and not all(isinstance(p, dict) and p.get("subject") for p in ps):
            found.append(("subject", "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined."))
    recipients = 0
    for i, p in enumerate(ps):
        tos = p.get("to") if isinstance(p, dict) else None
        if not isinstance(tos, list) or not tos:
            found.append((f"personalizations.{i}.to", "The to array is required for all personalization objects, and must have at least one email object with a valid email address."))
            continue
        for j, to in enumerate(tos + p.get("cc", []) + p.get("bcc", [])):
            recipients += 1
            if not isinstance(to, dict) or not EMAIL.match(str(to.get("email", ""))):
                found.append((f"personalizations.{i}.to.{j}.email", "Does not contain a valid address."))
        for key, value in (p.get("custom_args") or {}).items():
            if not isinstance(value, str):
                found.append((f"personalizations.{i}.custom_args.{key}", f"Invalid type. Expected: string, given: {type(value).__name__}."))
    if recipients > MAX_PERSONALIZATIONS:
        found.append(("personalizations", "The total number of recipients must be no more than 1000."))
    return found


def recipients(mail: Any) -> list[str]:
    """Every ``to`` address of a mail-send body, as far as it can be read (for the attempt log)."""
    ps = mail.get("personalizations") if isinstance(mail, dict) else None
    tos = [to for p in ps if isinstance(p, dict) and isinstance(p.get("to"), list) for to in p["to"]] if isinstance(ps, list) else []
    return [str(to.get("email", "")) for to in tos if isinstance(to, dict)]


def render(text: str, substitutions: dict[str, str]) -> str:
    for tag, value in substitutions.items():
        text = text.replace(tag, value)
    return text


def record_mail(sb: "Sandbox", mail: dict, message_id: str) -> list[dict]:
    """One inbox record per recipient, with its substitutions applied as SendGrid would."""
    contents = {c["type"]: c["value"] for c in mail.get("content", [])}
    records = []
    for i, p in enumerate(mail["personalizations"]):
        subs = p.get("substitutions") or {}
        args = {**(mail.get("custom_args") or {}), **(p.get("custom_args") or {})}
        for j, to in enumerate(p["to"]):
            records.append(sb.record(
                channel="email", id=message_id, sg_message_id=f"{message_id}.sandbox-{i}-{j}-0",
                to=to["email"], sender=mail["from"]["email"], status="accepted",
                subject=render(p.get("subject") or mail.get("subject", ""), subs),
                text=render(contents.get("text/plain", ""), subs),
                html=render(contents["text/html"], subs) if "text/html" in contents else None,
                custom_args=args, headers={**(mail.get("headers") or {}), **(p.get("headers") or {})},
            ))
    return records


def event(sb: "Sandbox", record: dict, name: str, **extra: Any) -> dict:
    # Custom args first: SendGrid never lets them overwrite its own fields.
    return {
        **record["custom_args"], "email": record["to"], "timestamp": int(time.time()), "event": name,
        "smtp-id": f"<{record['id']}@sandbox.turnout>", "sg_event_id": sb.dice.hex(22),
        "sg_message_id": record["sg_message_id"], **extra,
    }


def outcome(sb: "Sandbox", record: dict) -> dict:
    if record["to"] in sb.faults.bounce_emails:
        return event(sb, record, "bounce", type="bounce", status="5.1.1",
                     reason="550 5.1.1 The email account that you tried to reach does not exist.")
    return event(sb, record, "delivered", response="250 OK", ip="127.0.0.1", tls=1)


async def progress(sb: "Sandbox", records: list[dict]) -> None:
    dropped = [r for r in records if r["to"] in sb.faults.dropped_emails]
    sent = [r for r in records if r["to"] not in sb.faults.dropped_emails]
    await asyncio.sleep(sb.faults.callback_delay_ms / 1000)
    first = [event(sb, r, "processed") for r in sent] + [event(sb, r, "dropped", reason="Bounced Address") for r in dropped]
    for e in first:
        sb.set_status(sb.by_sg_id[e["sg_message_id"]], e["event"], None)
    await sb.post_events(first)
    await asyncio.sleep(sb.faults.callback_delay_ms / 1000)
    second = [outcome(sb, r) for r in sent]
    for e in second:
        sb.set_status(sb.by_sg_id[e["sg_message_id"]], e["event"], None)
    await sb.post_events(second)


def sendgrid_router(sb: "Sandbox") -> APIRouter:
    router = APIRouter(tags=["sendgrid"])

    @router.post("/v3/mail/send", status_code=202)
    async def mail_send(request: Request):
        if request.headers.get("authorization") != f"Bearer {sb.config.sendgrid_api_key.get_secret_value()}":
            return errors(401, (None, "The provided authorization grant is invalid, expired, or revoked"))
        try:
            mail = json.loads(await request.body())
        except ValueError:
            mail = None
        to = recipients(mail)
        fault = await sb.misbehave("email", to)
        if fault == "429":
            reset = int(time.time()) + sb.faults.rate_limit_reset_s
            limits = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
            return errors(429, (None, "too many requests"), headers=limits)
        if fault == "5xx":
            return errors(sb.dice.server_error(), (None, "internal error"))
        if fault == "timeout":
            return errors(504, (None, "gateway timeout"))
        if mail is None:
            sb.attempt("email", to, "400")
            return errors(400, (None, "Bad Request"))
        if found := problems(mail):
            sb.attempt("email", to, "400")
            return errors(400, *found)
        sb.attempt("email", to, "ok")
        message_id = sb.dice.hex(22)
        sb.poster.spawn(progress(sb, record_mail(sb, mail, message_id)))
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    return router
