"""The web app: ``POST /v1/events`` (signed partner webhooks), the tally API, health, OpenAPI.

``create_app(settings)`` wires the real Kafka adapters; tests may hand in fakes.
"""

from __future__ import annotations

import hmac
import logging
import re
from contextlib import asynccontextmanager
from typing import Annotated, Iterable, Literal
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from pydantic import BaseModel
from starlette.middleware.sessions import SessionMiddleware

from contracts.events import SLUG_PATTERN
from contracts.tallies import ActionTallies, CoalitionTallies, TallyBook
from streams import metrics
from streams.coalition import CoalitionFile
from streams.data_keys import DataKeys, KafkaDataKeys, MemoryDataKeys
from streams.settings import Settings
from streams.keys import fact_key
from streams.friendly import SLUG_RULE
from streams.topology import events_topic

from ..accounts.store import AccountStore, KafkaAccountLog
from ..csv_files import load_zip_data
from . import dashboard, docs, errors, ingress, openapi
from .action_network import router as action_network_router
from .console import router as console_router
from .console.audience import Audience, KafkaAudience
from .door import router as door_router
from .door.directory import Directory
from .door.ingress_client import AsgiIngress, Ingress
from .door.reader import DirectoryReader
from .errors import FieldError, documented, error
from .exports import SUPPRESSION_NOTE, aggregate_csv, for_excel, tallies_csv, unique_csv
from .middleware import BodyLimit, HeadAsGet, SameOrigin, SecurityHeaders
from .people import ErasureReports, IdentityLinks, router as people_router
from .pages import router as pages_router
from .providers import router as providers_router
from .publisher import KafkaPublisher, Publisher
from .tally_reader import Changes, TallyReader

log = logging.getLogger(__name__)


class App(FastAPI):
    """FastAPI with ``SecurityHeaders`` around everything, Starlette's own answer to an
    unhandled exception (the 500) included, which the middleware it is given cannot reach."""

    def build_middleware_stack(self):  # noqa: ANN201
        return SecurityHeaders(super().build_middleware_stack(), https=self.state.https)


def create_app(s: Settings, publisher: Publisher | None = None, book: TallyBook | None = None, erasures: ErasureReports | None = None,
               accounts: AccountStore | None = None, identity_links: IdentityLinks | None = None, directory: Directory | None = None,
               door_ingress: Ingress | None = None, audience: Audience | None = None, data_keys: DataKeys | None = None,
               changes: Changes | None = None) -> FastAPI:
    coalition = CoalitionFile(s.coalition)
    coalition.current()  # fail at start on a broken coalition file
    secret = s.person_key_bytes()
    # Fakes handed in (tests) are used as they are; otherwise the Kafka adapters, started by the lifespan.
    owned: list[KafkaPublisher | TallyReader | AccountStore | DirectoryReader | KafkaDataKeys] = []
    if publisher is None:
        publisher = KafkaPublisher(s.bootstrap, events_topic(s), s.ack_timeout, s.idempotent_producer)
        owned.append(publisher)
        if data_keys is None:
            data_keys = KafkaDataKeys(s, publisher.publish)  # follows the data-keys topic from its first use
            owned.append(data_keys)
    data_keys = data_keys or MemoryDataKeys()
    reader = None
    changes = changes or Changes()
    if book is None:
        book = TallyBook()
        reader = TallyReader(s, book, changes)
        owned.append(reader)
    if accounts is None:
        # Started before the app answers anyone: the whole accounts topic is read by then.
        accounts = AccountStore(KafkaAccountLog(s))
        owned.append(accounts)
    accounts.listen(changes.notify)

    if directory is None:
        # The door page's people: the partners' own sign-ups, RSVPs and check-ins (README: door check-in).
        directory = Directory(secret, hmac.new(secret, b"turnout door reference", "sha256").digest(), open=data_keys.ring.open,
                              region=s.default_region)
        owned.append(DirectoryReader(s, directory))

    def tally_lag() -> int | None:
        return reader.lag() if reader is not None else 0

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if s.default_region == "US":  # the postal-code warnings' ZIP data: now, not in a request's handler
            load_zip_data()
        for part in owned:
            await part.start()
        try:
            yield
        finally:
            for part in reversed(owned):
                await part.stop()

    app = App(
        title="turnout",
        version="1",
        summary="Signed partner webhooks in; exact, live turnout tallies out.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    # Dashboard sign-ins: a signed cookie, keyed from the person-key secret (stable across restarts).
    session_key = hmac.new(secret, b"turnout dashboard session", "sha256").hexdigest()
    app.add_middleware(
        SessionMiddleware, secret_key=session_key, session_cookie=openapi.SESSION_COOKIE, max_age=int(s.session_hours * 3600),
        same_site="lax", https_only=s.https,
    )
    app.add_middleware(SameOrigin, public_url=s.public_url, cookie=openapi.SESSION_COOKIE)  # before the body is read: a forged post is refused unread
    app.add_middleware(BodyLimit, limit=s.max_body_bytes)
    app.state.https = s.https
    app.add_middleware(HeadAsGet)  # outermost: HEAD goes everywhere GET goes
    errors.install(app)
    docs.install(app)
    access = dashboard.Access(s, coalition.current, accounts, hmac.new(secret, b"turnout partner fingerprint", "sha256").digest())
    organizer = access.organizer
    # Organizer routes: the token or a dashboard session (declared for the document), then the check.
    as_organizer = [Depends(openapi.organizer_auth), Depends(organizer)]
    organizer_errors = documented(401, 403, s403="Signed in, but not as an organizer")

    app.include_router(ingress.router(s, publisher, coalition.current, secret, data_keys,
                                      lambda action_id: (r.partner if (r := book.action_record(action_id)) else None),
                                      lambda action_id, key: book.fact("attendance", fact_key(action_id, book.person_of(key))),
                                      directory.knows,
                                      lambda action_id: (r.first_received or r.received_at if (r := book.action_record(action_id)) else None)))
    app.include_router(providers_router(s, publisher))
    app.include_router(action_network_router(s, publisher, coalition.current, data_keys))
    app.include_router(people_router(s, publisher, data_keys, erasures, links=identity_links, accepted=directory.links), dependencies=as_organizer,
                       responses=organizer_errors)
    app.include_router(pages_router(s, publisher, book, coalition.current, data_keys))  # supporters' RSVP and unsubscribe pages

    @app.get("/v1/tallies", response_model=CoalitionTallies, dependencies=as_organizer, responses=organizer_errors, summary="Coalition totals and per-partner totals")
    async def coalition_tallies() -> CoalitionTallies:
        return book.coalition()

    @app.get("/v1/actions/{action_id}/tallies", response_model=ActionTallies, dependencies=as_organizer,
             responses={**organizer_errors, **documented(404, 422, s404="No partner has posted an action with this id (yet)")},
             summary="Per-partner pledged, RSVP yes, attended and production ratio for one action")
    # The pattern documented for clients, and checked below, where the refusal says it in words.
    async def action_tallies(action_id: Annotated[str, Path(json_schema_extra={"pattern": SLUG_PATTERN})]) -> ActionTallies | JSONResponse:
        if not re.fullmatch(SLUG_PATTERN, action_id):
            said = f"not an action id: ids are {SLUG_RULE}"
            return error(422, said, [FieldError(field="path.action_id", message=said, type="value_error")])
        if not book.knows_action(action_id):
            raise HTTPException(404, f"no partner has posted action {action_id!r} (yet): RSVPs, check-ins and pledges for it are kept, "
                                     "and counted once it is")
        return book.action(action_id)

    @app.get("/v1/exports/tallies.csv", dependencies=as_organizer, responses={200: CSV, **organizer_errors}, response_class=StreamingResponse,
             summary="Per action and partner, every figure (organizers only; counts, no personal data)")
    async def export_tallies(bom: Bom = False) -> StreamingResponse:
        return _csv_download(tallies_csv(book, coalition.current().names()), "turnout-tallies.csv", bom)

    @app.get("/v1/exports/aggregate.csv", dependencies=as_organizer, responses={200: CSV, **organizer_errors}, response_class=StreamingResponse,
             summary="Per action, for funders: counts from 1 to 10 suppressed, no partner names")
    async def export_aggregate(note: Literal["line"] | None = None, bom: Bom = False) -> StreamingResponse:
        # The note is in a header, not the data, so the file loads as is; ?note=line puts it first as a "# " line.
        response = _csv_download(aggregate_csv(book, note_line=note == "line"), "turnout-aggregate.csv", bom)
        response.headers["X-Turnout-Note"] = SUPPRESSION_NOTE
        return response

    @app.get("/v1/exports/unique.csv", dependencies=as_organizer, responses={200: CSV, **organizer_errors}, response_class=StreamingResponse,
             summary="Per action and coalition-wide: people each counted once however many partners know them, and the show rate (counts only)")
    async def export_unique(bom: Bom = False) -> StreamingResponse:
        return _csv_download(unique_csv(book), "turnout-unique-people.csv", bom)

    signed_ingress = door_ingress or AsgiIngress(lambda: app)  # the door page and the console post as partners, signed
    app.include_router(door_router(access, book, directory, coalition.current, signed_ingress, s.public_url))
    app.include_router(console_router(s, access, book, coalition.current, signed_ingress, audience or KafkaAudience(s, publisher)))
    app.include_router(dashboard.router(s, access, accounts, coalition.current, book, changes, tally_lag),
                       dependencies=[Depends(openapi.organizer_auth)], responses=documented(401, s401="Not signed in"))

    metrics.TALLY_LAG.set_function(lambda: tally_lag() or 0)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        # Off unless a token is configured: answering 404 tells a stranger nothing is here.
        if s.metrics_token is None:
            raise HTTPException(404, "Not Found")
        if not _bearer(request, s.metrics_token.get_secret_value()):
            raise HTTPException(401, "send Authorization: Bearer <TURNOUT_METRICS_TOKEN>", headers={"WWW-Authenticate": "Bearer"})
        return Response(metrics.exposition(s.metrics_partner_labels), media_type=CONTENT_TYPE_PLAIN_0_0_4)  # the classic text format the body is in, as the workers say

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=307)  # the address `turnout up` prints: where a person goes

    @app.get("/healthz", summary="Liveness and how far behind the fact topics the tallies are", openapi_extra={"security": []},
             responses={200: {"model": Health}, 503: {"model": Health, "description": "The tally reader has stopped or stalled: `reason` says which"}})
    async def healthz() -> JSONResponse:
        problem = reader.problem() if reader is not None else None
        body = {"status": "unhealthy" if problem else "ok", "tally_records": book.records, "tally_lag": tally_lag()}
        return JSONResponse({**body, "reason": problem} if problem else body, status_code=503 if problem else 200)

    def document() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.document(app)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]
    return app


CSV = {"description": "CSV, UTF-8", "content": {"text/csv": {"schema": {"type": "string"}}}}


class Health(BaseModel):
    status: Literal["ok", "unhealthy"]
    tally_records: int
    tally_lag: int | None
    reason: str | None = None


def _bearer(request: Request, token: str) -> bool:
    auth = request.headers.get("authorization", "")
    return auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), token.encode())


Bom = Annotated[bool, Query(description="Start with a UTF-8 byte-order mark: Excel needs it to read accented names right (the dashboard's links ask for it).")]


def _csv_download(chunks: Iterable[str], filename: str, bom: bool) -> StreamingResponse:
    return StreamingResponse(for_excel(chunks, bom), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{filename}"'})
