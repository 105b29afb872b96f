"""The sandbox's own endpoints under ``/_sandbox`` (listed in ``server``'s docstring): what it
accepted, what it was asked, how it misbehaves, and simulated replies."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from .faults import Faults
from .queue import QUEUE_OVERFLOW_SERVICE, VALIDITY_EXPIRED
from .twilio_api import post_reply

if TYPE_CHECKING:
    from .server import Sandbox


class Reply(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    sender: str = Field(alias="from")
    body: str
    to: str | None = None


def control_router(sb: "Sandbox") -> APIRouter:
    router = APIRouter(tags=["sandbox"])

    @router.get("/_sandbox/inbox")
    async def inbox(channel: str | None = None) -> list[dict]:
        return [m for m in sb.inbox if channel is None or m["channel"] == channel]

    @router.get("/_sandbox/inbox/count")
    async def inbox_count(channel: str | None = None) -> dict:
        counts = [c for name, c in sb.counts.items() if channel is None or name == channel]
        return {"count": sum(c["count"] for c in counts), "first": min((c["first"] for c in counts), default=None),
                "last": max((c["last"] for c in counts), default=None), "in_flight": sb.requests_in_flight}

    @router.get("/_sandbox/attempts")
    async def attempts(channel: str | None = None) -> list[dict]:
        return [a for a in sb.attempts if channel is None or a["channel"] == channel]

    @router.delete("/_sandbox/inbox", status_code=204)
    async def clear_inbox() -> None:
        sb.forget()

    @router.get("/_sandbox/queue")
    async def queue() -> dict:
        return {"sms_mps": sb.queues.mps, "waiting": sb.queues.waiting, "left": sb.left,
                "expired": sb.queue_failures.get(VALIDITY_EXPIRED, 0),
                "overflowed": sb.queue_failures.get(QUEUE_OVERFLOW_SERVICE, 0)}

    @router.get("/_sandbox/faults")
    async def faults() -> Faults:
        return sb.faults

    @router.post("/_sandbox/faults")
    async def set_faults(patch: dict) -> Faults:
        try:
            sb.faults = sb.faults.updated(patch)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return sb.faults

    @router.post("/_sandbox/reply")
    async def reply(message: Reply) -> dict:
        if not sb.config.inbound_url:
            raise HTTPException(409, "no inbound_url configured")
        return await post_reply(sb, message.sender, message.body, message.to)

    @router.get("/_sandbox/sendgrid-public-key")
    async def public_key() -> dict:
        return {"public_key": sb.sendgrid_public_key}

    @router.get("/_sandbox/callbacks")
    async def callbacks() -> dict:
        return {"pending": sb.poster.pending, "given_up": sb.poster.given_up, "recent": list(sb.poster.log)}

    return router
