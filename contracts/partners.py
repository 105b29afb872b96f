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


#: Longest display name: it heads tables and dashboard pages.
NAME_MAX = 120
#: A webhook secret's length: long enough not to be guessed, short enough to paste.
SECRET_MIN, SECRET_MAX = 16, 512


class Partner(Frozen):
    id: Slug
    name: str = Field(description=f"Display name, 1 to {NAME_MAX} characters.")
    kind: PartnerKind
    secret: SecretStr = Field(description=f"Webhook secret (HMAC key), {SECRET_MIN} to {SECRET_MAX} printable characters, no spaces.")
    role: Role = Field(default="member", description="`backbone`: the hub, may change any action and reach the whole coalition; `member`: only its own.")
    enabled: bool = True
    import_key: SecretStr | None = Field(default=None, description="Keys the event ids `turnout import` gives a sheet's rows; absent: the "
                                         "secret. `rotate-secret` keeps the old secret here, so a sheet imported again after a rotation "
                                         "gives the same ids and counts once.")
    action_network: ActionNetworkLink = ActionNetworkLink()
    mobilize: MobilizeLink | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        name = name.strip()
        if not name:
            raise ValueError("is empty: give the organization's name")
        if len(name) > NAME_MAX:
            raise ValueError(f"is {len(name)} characters long; at most {NAME_MAX}")
        if any(c < " " or c == "\x7f" for c in name):
            raise ValueError("holds a control character (a line break or tab?)")
        return name

    def import_ids_key(self) -> str:
        """What keys the event ids of this partner's imported rows (``connectors.csv_import``)."""
        return (self.import_key or self.secret).get_secret_value()

    @field_validator("secret")
    @classmethod
    def _secret(cls, secret: SecretStr) -> SecretStr:
        value = secret.get_secret_value()  # never quoted back: the message says what is wrong, not what it is
        if not SECRET_MIN <= len(value) <= SECRET_MAX:
            raise ValueError(f"must be {SECRET_MIN} to {SECRET_MAX} characters (it has {len(value)}): "
                             "`turnout partners rotate-secret ID` makes a good one")
        if not all("!" <= c <= "~" for c in value):
            raise ValueError("may hold only printable ASCII characters, no spaces: "
                             "`turnout partners rotate-secret ID` makes a good one")
        return secret
