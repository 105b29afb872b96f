"""A coalition member organization, as the coalition file lists it."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from .events import Slug
from .people import Frozen

PartnerKind = Literal[
    "backbone", "union", "faith", "community", "seniors", "guaranteed_income", "student", "tenant", "other"
]


class Partner(Frozen):
    id: Slug
    name: str
    kind: PartnerKind
    secret: SecretStr
    enabled: bool = True
