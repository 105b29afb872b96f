"""The coalition file (TOML): the partners and their webhook secrets.

```toml
[[partners]]
id = "union-local-1"
name = "Union Local 1"
kind = "union"
secret = "…"
enabled = true
```
The file holds secrets: keep it out of version control and readable only by the service.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path

import tomli_w
from pydantic import SecretStr, ValidationError

from contracts.partners import Partner


class CoalitionError(Exception):
    """The coalition file is missing, unreadable or invalid; the message says where."""


class Coalition:
    def __init__(self, partners: list[Partner]) -> None:
        self.partners = {p.id: p for p in partners}

    def get(self, partner_id: str) -> Partner | None:
        """The partner if it exists and is enabled."""
        p = self.partners.get(partner_id)
        return p if p is not None and p.enabled else None


def load(path: Path) -> Coalition:
    if not path.exists():
        return Coalition([])
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CoalitionError(f"{path}: {exc}") from None
    partners = []
    for i, entry in enumerate(data.get("partners", [])):
        try:
            partners.append(Partner.model_validate(entry))
        except ValidationError as exc:
            raise CoalitionError(f"{path}: partners[{i}]: {exc}") from None
    ids = [p.id for p in partners]
    if len(ids) != len(set(ids)):
        raise CoalitionError(f"{path}: a partner id appears twice")
    return Coalition(partners)


def add_partner(path: Path, partner_id: str, name: str, kind: str) -> Partner:
    """Append a partner with a fresh secret; refuse an id that exists."""
    if load(path).partners.get(partner_id):
        raise CoalitionError(f"partner {partner_id!r} already exists in {path}")
    try:
        partner = Partner(id=partner_id, name=name, kind=kind, secret=SecretStr(secrets.token_urlsafe(32)))
    except ValidationError as exc:
        raise CoalitionError(_first_error(exc)) from None
    entry = {"id": partner.id, "name": partner.name, "kind": partner.kind, "secret": partner.secret.get_secret_value(), "enabled": True}
    block = tomli_w.dumps({"partners": [entry]})
    prefix = "\n" if path.exists() and path.read_text().strip() else ""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(prefix + block)
    return partner


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"
