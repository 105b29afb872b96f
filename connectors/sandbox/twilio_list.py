"""Twilio's Messages list, newest first: how a sender finds out whether a text whose answer it
never got was accepted after all (``TwilioSms.find``).

``GET /2010-04-01/Accounts/{AccountSid}/Messages.json`` with ``To``, ``From``, ``PageSize``
(default 50, at most 1000), ``Page`` and ``PageToken`` → ``{"messages": [...], "page",
"page_size", "start", "end", "uri", "first_page_uri", "previous_page_uri", "next_page_uri"}``:
the shape the SDK's ``Page`` reads (the records under the one key that is not paging metadata;
``next_page_uri`` null on the last page). ``PageToken`` is ``PA`` + the sid of the previous
page's last message, so a page does not shift while new texts arrive. The ``DateSent`` filters
are not implemented: they are ignored, and a caller filters by ``date_created`` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from .twilio_api import denied, error, resource
from .twilio_status import API

if TYPE_CHECKING:
    from .server import Sandbox

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def newest_first(sb: "Sandbox", to: str | None, sender: str | None) -> list[dict]:
    texts = sb.sms_by_to.get(to, []) if to else [m for m in sb.inbox if m["channel"] == "sms"]
    return [m for m in reversed(texts) if sender is None or m["from"] == sender]


def whole(raw: str | None, default: int) -> int:
    return int(raw) if raw and raw.isdigit() else default


def message_page(sb: "Sandbox", query: Mapping[str, str]) -> dict:
    filters = {name: query[name] for name in ("To", "From") if query.get(name)}
    size = min(max(whole(query.get("PageSize"), DEFAULT_PAGE_SIZE), 1), MAX_PAGE_SIZE)
    number, token = whole(query.get("Page"), 0), query.get("PageToken")
    found = newest_first(sb, filters.get("To"), filters.get("From"))
    if token:
        ids = [m["id"] for m in found]
        start = ids.index(token[2:]) + 1 if token[2:] in ids else len(found)
    else:
        start = number * size
    items = found[start:start + size]

    def uri(page: int, token: str | None = None) -> str:
        params = {**filters, "PageSize": size, "Page": page, **({"PageToken": token} if token else {})}
        return f"/{API}/Accounts/{sb.config.account_sid}/Messages.json?{urlencode(params)}"

    more = bool(items) and start + len(items) < len(found)
    return {
        "messages": [resource(sb, m) for m in items], "page": number, "page_size": size,
        "start": start, "end": start + max(len(items) - 1, 0), "uri": uri(number, token),
        "first_page_uri": uri(0), "previous_page_uri": uri(number - 1) if number > 0 else None,
        "next_page_uri": uri(number + 1, "PA" + items[-1]["id"]) if more else None,
    }


def twilio_list_router(sb: "Sandbox") -> APIRouter:
    router = APIRouter(tags=["twilio"])

    @router.get(f"/{API}/Accounts/{{account_sid}}/Messages.json")
    async def list_messages(account_sid: str, request: Request):
        if (refused := denied(sb, request, account_sid)) is not None:
            return refused
        if not sb.enter_request():
            return error(429, 20429, "Too Many Requests")
        try:
            return JSONResponse(message_page(sb, request.query_params))
        finally:
            sb.leave_request()

    return router
