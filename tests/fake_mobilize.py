"""A local fake of Mobilize's attendances API: bearer keys, ``updated_since``, cursor pages of
``page_size`` with ``next`` links, 429 + Retry-After on demand, and a 15 reads/s check."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from streams.broker import free_port, wait_for_port


@dataclass
class FakeMobilize:
    keys: dict[int, str]  # organization → API key
    attendances: dict[int, list[dict]] = field(default_factory=dict)
    page_size: int = 2
    throttle_pages: set[int] = field(default_factory=set)  # answer 429 once on these page numbers
    requests: list[dict] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def max_reads_per_second(self) -> int:
        stamps = [r["at"] for r in self.requests]
        return max((sum(1 for t in stamps if s <= t < s + 1) for s in stamps), default=0)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/organizations/{org}/attendances")
        async def attendances(org: int, request: Request, updated_since: int = 0, cursor: int = 0) -> JSONResponse:
            self.requests.append({"org": org, "updated_since": updated_since, "cursor": cursor, "at": time.monotonic()})
            if request.headers.get("authorization") != f"Bearer {self.keys.get(org)}":
                return JSONResponse({"data": None, "error": {"detail": "Invalid token."}}, status_code=403)
            if cursor in self.throttle_pages:
                self.throttle_pages.discard(cursor)
                return JSONResponse({"error": {"detail": "Request was throttled."}}, status_code=429, headers={"Retry-After": "1"})
            rows = sorted((a for a in self.attendances.get(org, []) if a["modified_date"] >= updated_since), key=lambda a: a["id"])
            page = rows[cursor * self.page_size : (cursor + 1) * self.page_size]
            more = (cursor + 1) * self.page_size < len(rows)
            nxt = f"{self.url}/v1/organizations/{org}/attendances?updated_since={updated_since}&cursor={cursor + 1}" if more else None
            return JSONResponse({"count": len(rows), "next": nxt, "previous": None, "data": page})

        return app

    def __enter__(self) -> FakeMobilize:
        self._server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_for_port(self.port, 10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def attendance(id_: int, event: int, status: str, modified: int, phone: str | None = None, email: str | None = None,
               attended: bool | None = None, sponsor: int = 101, timeslot: int | None = None) -> dict:
    """One attendance, shaped as Mobilize returns it."""
    return {
        "id": id_, "created_date": modified - 100, "modified_date": modified, "status": status, "attended": attended,
        "person": {"given_name": f"P{id_}", "family_name": "Test", "user_id": 9000 + id_,
                   "email_addresses": [{"primary": True, "address": email}] if email else [],
                   "phone_numbers": [{"primary": True, "number": phone}] if phone else [],
                   "postal_addresses": [{"primary": True, "postal_code": "94607"}]},
        "event": {"id": event, "title": "Rally for fair funding", "event_type": "RALLY"},
        "timeslot": {"id": timeslot or event * 10, "start_date": 1764640800, "end_date": 1764648000},
        "sponsor": {"id": sponsor, "name": f"Org {sponsor}", "slug": f"org-{sponsor}"},
        "referrer": {"utm_source": None}, "custom_signup_field_values": [],
    }
