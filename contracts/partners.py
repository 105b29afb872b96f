"""A coalition member organization, as the coalition file lists it, with its connector settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, StringConstraints, field_validator

from .events import Slug
from .people import Frozen

PartnerKind = Literal[
    "backbone", "union", "faith", "community", "seniors", "guaranteed_income", "student", "tenant", "other"
]


class ActionNetworkLink(Frozen):
    """How the partner's Action Network webhook reaches us and what its events mean here."""

    token_sha256: str | None = Field(default=None, description="SHA-256 (hex) of the secret URL token; the token itself is never stored.")
    actions: dict[Annotated[str, StringConstraints(strip_whitespace=False, pattern=r"^[!-~]{1,128}$")], Slug] = Field(
        default={}, description="Action Network event id (the last part of its API URL) → turnout action id.")


class MobilizeLink(Frozen):
    """The partner's Mobilize organization, polled for attendances (``turnout mobilize poll``)."""

    organization_id: int
    api_key: SecretStr
    events: dict[Annotated[str, StringConstraints(strip_whitespace=False, pattern=r"^[0-9]{1,18}$")], Slug] = Field(
        default={}, description="Mobilize event id (a number) → turnout action id.")

    @field_validator("api_key")
    @classmethod
    def _key_given(cls, key: SecretStr) -> SecretStr:
        if not key.get_secret_value().strip():  # every poll would fail on a "Bearer " header
            raise ValueError("is empty: give the partner's Mobilize API key")
        return key


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
