"""Managing dashboard accounts from the dashboard: a partner's admins invite and remove their
own partner's staff; organizers anyone's (``turnout accounts`` does the same from the CLI).

The one-time sign-in link is answered to whoever invited, to pass on: turnout sends no email.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import AsyncIterator, Callable, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from connectors.accounts.rules import AccountRefused, check_manager, invite_link
from connectors.accounts.store import AccountStore, AccountsUnavailable, email_of
from contracts.accounts import Account, AccountRole
from streams.coalition import Coalition
from streams.settings import Settings

from ..body import load_json, read_limited
from ..errors import FieldError, HTTPRefusal, documented, model_body
from .access import Access
from .view import Viewer


class AccountView(BaseModel):
    email: str
    role: AccountRole
    partner: str | None
    status: Literal["invited", "active"]
    link_expires_at: datetime | None  # of an unused sign-in link

    @classmethod
    def of(cls, a: Account) -> "AccountView":
        return cls(email=a.email, role=a.role, partner=a.partner, status="active" if a.password_hash else "invited", link_expires_at=a.invite_expires_at)


class Invitation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(json_schema_extra={"format": "email"})
    role: AccountRole = "viewer"
    partner: str | None = None  # an admin's own partner when left out


INVITATION = {**Invitation.model_json_schema(), "additionalProperties": False}


class Invited(AccountView):
    link: str  # the one-time sign-in link: shown once, pass it on yourself


def router(s: Settings, access: Access, accounts: AccountStore, coalition: Callable[[], Coalition]) -> APIRouter:
    r = APIRouter(tags=["dashboard accounts"])

    def manager(viewer: Viewer) -> str | None:
        return None if viewer.role == "organizer" else viewer.partner

    @r.get("/dashboard/accounts", response_model=list[AccountView], summary="The accounts the signed-in admin manages (its partner's; an organizer: all)",
           responses=documented(403, s403="Signed in, but not as an admin or organizer"))
    async def listing(request: Request) -> list[AccountView]:
        viewer = access.admin(request)
        return [AccountView.of(a) for a in accounts.book.accounts(manager(viewer))]

    @r.post("/dashboard/accounts", status_code=201, response_model=Invited, summary="Invite a person: answers their one-time sign-in link",
            responses=documented(400, 403, 409, 413, 422, 503, s403="Not an admin or organizer, or inviting for another partner",
                                 s409="The address already has an account, or belongs to another partner's"),
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": INVITATION}}}})
    async def invite(request: Request) -> Invited | JSONResponse:
        viewer = access.admin(request)  # first: no body is read for someone who may not invite
        body = model_body(Invitation, load_json(await read_limited(request, s.max_body_bytes)))
        if isinstance(body, JSONResponse):
            return body
        partner = body.partner if body.partner is not None or viewer.role == "organizer" else viewer.partner
        if body.role == "organizer" and body.partner is None:
            partner = None  # not the inviting admin's own: an organizer has none (one given is refused below)
        def known_partner() -> None:
            if partner is not None and partner not in coalition().partners:
                raise AccountRefused(f"no partner {partner!r} in the coalition file", 422, "partner")

        async with _answers():
            # Every field at fault named at once; a 403 alone (an admin learns no other partner's id).
            refused_together(lambda: check_manager(manager(viewer), body.role, partner), lambda: email_of(body.email), known_partner)
            account, token = await accounts.invite(body.email, body.role, partner, viewer.email or "organizer token",
                                                   datetime.now(timezone.utc), s.invite_hours, manager(viewer))
        return Invited(**AccountView.of(account).model_dump(), link=invite_link(address(s, request), token))

    @r.delete("/dashboard/accounts/{email}", status_code=204, summary="Remove an account: its sessions end at once",
              responses=documented(403, 404, 503, s403="Not an admin or organizer", s404="No such account (among the admin's partner's)"))
    async def remove(request: Request, email: str) -> Response:
        viewer = access.admin(request)
        async with _answers():
            await accounts.remove(email, manager(viewer))
        return Response(status_code=204)

    return r


def address(s: Settings, request: Request) -> str:
    """Where the dashboard's sign-in links point: ``TURNOUT_PUBLIC_URL`` when it is set (as the
    CLI's: a proxy or a forged Host would name another), else where the request came."""
    return s.public_url if "public_url" in s.model_fields_set else str(request.base_url)


def refused_together(*checks: Callable[[], object]) -> None:
    """Run every check: a refusal other than 422 is raised at once, the 422s together (one
    error per field at fault)."""
    found = []
    for check in checks:
        try:
            check()
        except AccountRefused as exc:
            if exc.status != 422:
                raise
            found.append(exc)
    if found:
        raise HTTPRefusal(422, "; ".join(map(str, found)), [FieldError(field=f"body.{e.field}", message=str(e), type="value_error") for e in found])


@asynccontextmanager
async def _answers() -> AsyncIterator[None]:
    """Refusals and an unavailable broker as HTTP answers."""
    try:
        yield
    except AccountRefused as exc:
        named = [FieldError(field=f"body.{exc.field}", message=str(exc), type="value_error")] if exc.field else []
        raise HTTPRefusal(exc.status, str(exc), named) from None
    except AccountsUnavailable as exc:
        raise HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
