"""The OpenAPI document: FastAPI's, plus what it cannot infer.

- Security schemes. A partner signs with three headers together (``PARTNER_SECURITY``);
  Twilio and SendGrid sign theirs (``TWILIO_SECURITY``, ``SENDGRID_SECURITY``); organizers
  send a bearer token or a dashboard session cookie (declared by ``organizer_auth``, a
  FastAPI security dependency). The Action Network route and ``/healthz`` declare none
  (``security: []``): the former's secret is in its URL.
- The partner events' JSON Schema (one component per event type, ``PartnerEvent`` the union).
- Every 422 is an ``ErrorBody`` (FastAPI documents its own validation error shape otherwise).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Security
from fastapi.openapi.utils import get_openapi
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from contracts.events import partner_event

from .errors import ErrorBody

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "partnerId": {"type": "apiKey", "in": "header", "name": "X-Turnout-Partner", "description": "The partner's id."},
    "partnerTimestamp": {"type": "apiKey", "in": "header", "name": "X-Turnout-Timestamp",
                         "description": "Unix seconds; within TURNOUT_SIGNATURE_TOLERANCE (300 s) of the server's clock."},
    "partnerSignature": {"type": "apiKey", "in": "header", "name": "X-Turnout-Signature",
                         "description": 'v1=<hex HMAC-SHA256(partner secret, "<timestamp>.<raw body>")>'},
    "twilioSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Signature",
                        "description": "Twilio's request signature over TURNOUT_PUBLIC_URL + path and the form."},
    "sendgridSignature": {"type": "apiKey", "in": "header", "name": "X-Twilio-Email-Event-Webhook-Signature",
                          "description": "SendGrid's ECDSA signature over the timestamp and the raw body."},
    "sendgridTimestamp": {"type": "apiKey", "in": "header", "name": "X-Twilio-Email-Event-Webhook-Timestamp",
                          "description": "Unix seconds; refused when older than TURNOUT_SENDGRID_SIGNATURE_WINDOW."},
}
LICENSE = {"name": "GNU Affero General Public License v3.0 or later", "identifier": "AGPL-3.0-or-later"}
PARTNER_SECURITY = [{"partnerId": [], "partnerTimestamp": [], "partnerSignature": []}]
TWILIO_SECURITY = [{"twilioSignature": []}]
SENDGRID_SECURITY = [{"sendgridSignature": [], "sendgridTimestamp": []}]

_bearer = HTTPBearer(auto_error=False, scheme_name="organizerToken", description="Authorization: Bearer <TURNOUT_ORGANIZER_TOKEN>")
#: The dashboard's signed session cookie.
SESSION_COOKIE = "turnout_session"

_session = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="dashboardSession",
                        description="A dashboard sign-in (POST /dashboard/login)")


def organizer_auth(token: HTTPAuthorizationCredentials | None = Security(_bearer), session: str | None = Security(_session)) -> None:
    """Declares, for the document, that a route takes the organizer token or a dashboard
    session. It checks nothing: the route's own dependency does."""


def document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes,
                         license_info=LICENSE, servers=[{"url": "/", "description": "This web app"}])
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    schemas = components.setdefault("schemas", {})
    defs = partner_event.json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(defs.pop("$defs", {}))
    schemas["PartnerEvent"] = defs
    error = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error.pop("$defs", {}))
    schemas["ErrorBody"] = error
    for operation in (op for path in schema["paths"].values() for op in path.values()):
        invalid = operation.get("responses", {}).get("422")
        if invalid and "HTTPValidationError" in str(invalid):
            operation["responses"]["422"] = {"description": "A parameter is wrong; `errors` names each one",
                                             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema
