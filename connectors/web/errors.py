"""One error body for every refusal, and the handlers that give it.

Every 4xx and 5xx the app answers is ``{"detail": "<what was wrong>", "errors": [{field,
message, type}]}`` (``errors`` names fields when the request's fields were at fault, else is
empty), except ``POST /v1/events``' 422, which is the ingest result with each event's errors.
``documented`` gives the OpenAPI ``responses`` for the statuses a route can return.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping, TypeVar

from aiokafka.errors import KafkaError
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Mount

from contracts.events import EVENT_ID_PATTERN, EVENT_TYPES, SLUG_PATTERN
from contracts.people import LANGUAGE_TAG, POSTAL_CODE_PATTERN
from streams import metrics
from streams.friendly import SLUG_RULE

from .body import BadBody, BodyTooLarge, problems
from .publisher import BrokerUnavailable

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str
    message: str
    type: str

    @classmethod
    def of(cls, field: str, e: Mapping[str, Any]) -> FieldError:
        """One of pydantic's errors, said as the validator said it (without the "Value error, "
        pydantic puts before a ValueError's words, or its "Input should"); a pattern of ours,
        and a missing or unknown event ``type``, in words."""
        kind, ctx = e["type"], e.get("ctx", {})
        if kind == "string_pattern_mismatch":
            said = _PATTERNS.get(str(ctx.get("pattern")))
        elif kind == "union_tag_not_found" and ctx.get("discriminator") == "'type'":
            said = f"missing: every event says what it is: {', '.join(EVENT_TYPES[:-1])} or {EVENT_TYPES[-1]}"
        elif kind == "union_tag_invalid":
            said = f"{ctx.get('tag')!r} is not a type of event: use one of {ctx.get('expected_tags')}"
        else:
            said = None
        message = said or re.sub(r"^(Input|Value) should", "should", e["msg"].removeprefix("Value error, "))
        return cls(field=field, message=message, type=kind)


#: What our patterns ask for, in words (pydantic would quote the regular expression).
_PATTERNS = {SLUG_PATTERN: f"should be an id: {SLUG_RULE}", EVENT_ID_PATTERN: "should be printable ASCII characters, no spaces",
             POSTAL_CODE_PATTERN: "should be a postal code: letters, digits, spaces and hyphens, first a letter or a digit",
             LANGUAGE_TAG: "should be a language tag, such as en or es-MX"}


class ErrorBody(BaseModel):
    detail: str
    errors: list[FieldError] = []


DESCRIPTIONS = {
    400: "The body is not JSON turnout can read (syntax, encoding, nesting, number size) or not the shape asked for",
    401: "Missing or wrong credentials; nothing written",
    403: "Credentials that are not allowed here (a bad provider signature, a partner on an organizer route); nothing written",
    404: "No such resource",
    409: "Conflicts with what is already there",
    413: "Body over the size limit; the connection is closed",
    422: "A field is wrong; `errors` names each one",
    503: "The broker did not acknowledge: nothing is promised. Retry after Retry-After seconds",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}


def documented(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with ``ErrorBody`` (``descriptions``,
    keyed ``s401`` and so on, override the generic wording)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {"model": ErrorBody, "description": descriptions.get(f"s{status}", DESCRIPTIONS[status])}
        if status == 503:
            out[status]["headers"] = RETRY_AFTER
    return out


class HTTPRefusal(HTTPException):
    """An ``HTTPException`` whose body names the request's fields at fault (``errors``)."""

    def __init__(self, status: int, detail: str, errors: list[FieldError], headers: dict[str, str] | None = None) -> None:
        super().__init__(status, detail, headers)
        self.errors = errors


def refused(status: int, detail: str, reason: str) -> HTTPException:
    """An ``HTTPException`` counted under ``reason`` in the rejected-events metric."""
    metrics.EVENTS_REJECTED.labels(reason).inc()
    return HTTPException(status, detail)


def error(status: int, detail: str, errors: list[FieldError] = (), headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(detail=detail, errors=list(errors)).model_dump(), status_code=status, headers=headers)


M = TypeVar("M", bound=BaseModel)


def model_body(model: type[M], data: object) -> M | JSONResponse:
    """A JSON body (``load_json``'s) as ``model``, validated strictly, or the 422 that says
    which field is wrong. Routes that check credentials first read their body themselves and
    end here, instead of letting FastAPI read it before any check."""
    if not isinstance(data, dict):
        raise BadBody("body must be a JSON object")
    errors = [FieldError(field=f"body.{f}", message=m, type="invalid_json") for f, m in problems(data)]
    if not errors:
        try:
            return model.model_validate(data, strict=True)
        except ValidationError as exc:
            errors = [FieldError.of(".".join(["body", *map(str, e["loc"])]), e) for e in exc.errors(include_url=False, include_input=False)]
    return error(422, "the request is not valid: see errors", errors)


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route of ``app`` answers on the request's path, asked of each route
    (included routers too) as a request with that method; HEAD wherever GET (``HeadAsGet``).
    Asked at the app's own root (a refusal raised inside a mount carries the mount's
    ``root_path``); the one mount, the docs' static files, answers GET and HEAD only."""
    scope = {**request.scope, "root_path": request.scope.get("app_root_path", request.scope.get("root_path", ""))}
    allowed = {m for m in METHODS if any(route.matches({**scope, "method": m})[0] == Match.FULL for route in app.router.routes
                                         if m == "GET" or not isinstance(route, Mount))}
    return sorted(allowed | ({"HEAD"} if "GET" in allowed else set()))


def install(app: FastAPI) -> None:
    """Register the handlers that turn every refusal into an ``ErrorBody``."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette names only the first route on the path; Allow must list every method on it.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request))}
        return error(exc.status_code, str(exc.detail), getattr(exc, "errors", ()), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [FieldError.of(".".join(str(p) for p in e["loc"]), e) for e in exc.errors()]
        return error(422, "the request is not valid: see errors", errors)

    @app.exception_handler(BadBody)
    async def bad_body(request: Request, exc: BadBody) -> Response:
        return error(400, str(exc))

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        metrics.EVENTS_REJECTED.labels("too_large").inc()
        return error(413, str(exc), headers={"Connection": "close"})

    @app.exception_handler(BrokerUnavailable)
    async def broker_unavailable(request: Request, exc: BrokerUnavailable) -> Response:
        metrics.EVENTS_REJECTED.labels("broker_unavailable").inc()
        # Never 2xx for what the broker did not acknowledge.
        return error(503, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(KafkaError)
    async def broker_unreachable(request: Request, exc: KafkaError) -> Response:
        # A read of the broker (an erasure's identity links, say) that could not even connect.
        log.warning("the broker could not be reached: %s", type(exc).__name__)
        return await broker_unavailable(request, BrokerUnavailable(5, "the broker could not be reached: nothing is promised"))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> Response:
        # Reached only by a bug: the body is the one error body; Starlette then re-raises, so
        # the traceback is logged.
        return error(500, "internal error")

    @app.exception_handler(ClientDisconnect)
    async def client_left(request: Request, exc: ClientDisconnect) -> Response:
        # The client went away mid-body: nothing to answer, nothing wrong with us.
        log.info("client disconnected before sending its whole body: %s %s", request.method, request.url.path)
        return Response(status_code=400)


def wants_json(request: Request) -> bool:
    """A script (a page's own JavaScript, or another) asked for JSON; a browser gets pages."""
    return "application/json" in request.headers.get("accept", "")
