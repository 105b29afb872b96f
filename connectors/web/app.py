"""The web app: ``POST /v1/events`` (signed partner webhooks), the tally API, health, OpenAPI.

``create_app(settings)`` wires the real Kafka adapters; tests may hand in fakes.
"""

from __future__ import annotations

import hmac
import logging
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.sessions import SessionMiddleware

from contracts.events import partner_event
from contracts.tallies import ActionTallies, CoalitionTallies, TallyBook
from streams import metrics
from streams.coalition import Coalition, load
from streams.settings import Settings
from streams.topology import events_topic

from ..signing import SignatureError, verify
from . import dashboard
from .action_network import router as action_network_router
from .exports import aggregate_csv, tallies_csv
from .ingress import BadBody, IngestResult, envelopes, parse_events, read_limited, refused
from .pages import router as pages_router
from .people import ErasureReports, router as people_router
from .providers import router as providers_router
from .publisher import BrokerUnavailable, KafkaPublisher, Publisher
from .tally_reader import Changes, TallyReader

log = logging.getLogger(__name__)


class CoalitionFile:
    """The coalition file, re-read when it changes so `turnout partners add` takes effect at once."""

    def __init__(self, s: Settings) -> None:
        self.path = s.coalition
        self._mtime: float | None = None
        self._coalition = Coalition([])

    def current(self) -> Coalition:
        mtime = self.path.stat().st_mtime if self.path.exists() else None
        if mtime != self._mtime:
            self._coalition, self._mtime = load(self.path), mtime
        return self._coalition


def create_app(s: Settings, publisher: Publisher | None = None, book: TallyBook | None = None, erasures: ErasureReports | None = None) -> FastAPI:
    coalition = CoalitionFile(s)
    coalition.current()  # fail at start on a broken coalition file
    secret = s.person_key_bytes()
    # Fakes handed in (tests) are used as they are; otherwise the Kafka adapters, started by the lifespan.
    owned: list[KafkaPublisher | TallyReader] = []
    if publisher is None:
        publisher = KafkaPublisher(s.bootstrap, events_topic(s), s.ack_timeout, s.idempotent_producer)
        owned.append(publisher)
    reader = None
    changes = Changes()
    if book is None:
        book = TallyBook()
        reader = TallyReader(s, book, changes)
        owned.append(reader)

    def tally_lag() -> int | None:
        return reader.lag() if reader is not None else 0

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for part in owned:
            await part.start()
        try:
            yield
        finally:
            for part in reversed(owned):
                await part.stop()

    app = FastAPI(
        title="turnout",
        version="1",
        summary="Signed partner webhooks in; exact, live turnout tallies out.",
        lifespan=lifespan,
    )
    # Dashboard sign-ins: a signed cookie, keyed from the person-key secret (stable across restarts).
    session_key = hmac.new(secret, b"turnout dashboard session", "sha256").hexdigest()
    app.add_middleware(
        SessionMiddleware, secret_key=session_key, session_cookie="turnout_session", max_age=int(s.session_hours * 3600),
        same_site="lax", https_only=s.public_url.startswith("https://"),
    )
    access = dashboard.Access(s, coalition.current)
    organizer = access.organizer

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=IngestResult,
        summary="Post one partner event or an array of up to 500, signed by the partner.",
        responses={
            400: {"description": "Body is not JSON, or not an event or array of events"},
            401: {"description": "Unknown or disabled partner, or bad, missing or stale signature; nothing written"},
            413: {"description": "Body over the size limit"},
            422: {"description": "No event was valid; each is reported by index with field paths", "model": IngestResult},
            503: {"description": "The broker did not acknowledge; nothing is promised. Retry after Retry-After seconds"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/PartnerEvent"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/PartnerEvent"}, "maxItems": s.max_batch},
                ]}}},
            },
            "parameters": [
                {"name": "X-Turnout-Partner", "in": "header", "required": True, "schema": {"type": "string"}},
                {"name": "X-Turnout-Timestamp", "in": "header", "required": True, "schema": {"type": "string"}, "description": "Unix seconds"},
                {"name": "X-Turnout-Signature", "in": "header", "required": True, "schema": {"type": "string"}, "description": 'v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>'},
            ],
        },
    )
    async def post_events(request: Request) -> JSONResponse:
        body = await read_limited(request, s.max_body_bytes)
        partner_id = request.headers.get("x-turnout-partner", "")
        partner = coalition.current().get(partner_id)
        if partner is None:
            raise refused(401, "unknown or disabled partner (X-Turnout-Partner)", "unknown_partner")
        try:
            verify(partner.secret.get_secret_value(), request.headers.get("x-turnout-timestamp"), request.headers.get("x-turnout-signature"), body, time.time(), s.signature_tolerance)
        except SignatureError as exc:
            raise refused(401, f"signature rejected: {exc.reason}", "signature") from None
        try:
            items, _single = parse_events(body, s.max_batch)
        except BadBody as exc:
            raise refused(400, str(exc), "bad_body") from None
        records, result = envelopes(items, partner.id, datetime.now(timezone.utc), secret, s.default_region, partner.role,
                                    lambda action_id: (r.partner if (r := book.action_record(action_id)) else None))
        if records:
            await publisher.publish(records)
            metrics.EVENTS_ACCEPTED.labels(partner.id).inc(len(records))
        metrics.EVENTS_REJECTED.labels("invalid_event").inc(len(result.rejected))
        metrics.EVENTS_REJECTED.labels("duplicate").inc(result.duplicates)
        status = 202 if records or result.duplicates else 422
        return JSONResponse(result.model_dump(), status_code=status)

    app.include_router(providers_router(s, publisher))
    app.include_router(action_network_router(s, publisher, coalition.current))
    app.include_router(people_router(s, publisher, erasures), dependencies=[Depends(organizer)])
    app.include_router(pages_router(s, publisher, book, coalition.current))  # supporters' RSVP and unsubscribe pages

    @app.exception_handler(BrokerUnavailable)
    async def broker_unavailable(request: Request, exc: BrokerUnavailable) -> JSONResponse:
        metrics.EVENTS_REJECTED.labels("broker_unavailable").inc()
        # Never 2xx for what the broker did not acknowledge.
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)})

    @app.get("/v1/tallies", response_model=CoalitionTallies, dependencies=[Depends(organizer)], summary="Coalition totals and per-partner totals")
    async def coalition_tallies() -> CoalitionTallies:
        return book.coalition()

    @app.get("/v1/actions/{action_id}/tallies", response_model=ActionTallies, dependencies=[Depends(organizer)], summary="Per-partner pledged, RSVP yes, attended and production ratio for one action")
    async def action_tallies(action_id: str) -> ActionTallies:
        if not book.knows_action(action_id):
            raise HTTPException(404, f"no action {action_id!r} (no action, pledge, RSVP or check-in seen yet)")
        return book.action(action_id)

    @app.get("/v1/exports/tallies.csv", dependencies=[Depends(organizer)], summary="Per action and partner, every figure (organizers only; counts, no personal data)", response_class=StreamingResponse)
    async def export_tallies() -> StreamingResponse:
        return _csv_download(tallies_csv(book, coalition.current().names()), "turnout-tallies.csv")

    @app.get("/v1/exports/aggregate.csv", dependencies=[Depends(organizer)], summary="Per action, for funders: counts from 1 to 10 suppressed, no partner names", response_class=StreamingResponse)
    async def export_aggregate() -> StreamingResponse:
        return _csv_download(aggregate_csv(book), "turnout-aggregate.csv")

    app.include_router(dashboard.router(s, access, coalition.current, book, changes, tally_lag))

    metrics.TALLY_LAG.set_function(lambda: tally_lag() or 0)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", summary="Liveness and how far behind the fact topics the tallies are")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "tally_records": book.records, "tally_lag": tally_lag()}

    def openapi() -> dict:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            defs = partner_event.json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(defs.pop("$defs", {}))
            components["PartnerEvent"] = defs
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _csv_download(chunks, filename: str) -> StreamingResponse:
    return StreamingResponse(chunks, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{filename}"'})
