"""A coalition member organization, as the coalition file lists it, with its connector settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from .events import Slug
from .people import Frozen

PartnerKind = Literal[
    "backbone", "union", "faith", "community", "seniors", "guaranteed_income", "student", "tenant", "other"
]


class ActionNetworkLink(Frozen):
    """How the partner's Action Network webhook reaches us and what its events mean here."""

    token_sha256: str | None = Field(default=None, description="SHA-256 (hex) of the secret URL token; the token itself is never stored.")
    actions: dict[str, Slug] = Field(default={}, description="Action Network event id (or its API URL) → turnout action id.")


class MobilizeLink(Frozen):
    """The partner's Mobilize organization, polled for attendances (``turnout mobilize poll``)."""

    organization_id: int
    api_key: SecretStr
    events: dict[str, Slug] = Field(default={}, description="Mobilize event id → turnout action id.")


Role = Literal["backbone", "member"]


class Partner(Frozen):
    id: Slug
    name: str
    kind: PartnerKind
    secret: SecretStr
    role: Role = Field(default="member", description="`backbone`: the hub, may change any action and reach the whole coalition; `member`: only its own.")
    enabled: bool = True
    action_network: ActionNetworkLink = ActionNetworkLink()
    mobilize: MobilizeLink | None = None
