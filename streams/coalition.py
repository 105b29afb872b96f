"""The coalition file (TOML): the partners and their webhook secrets.

```toml
[[partners]]
id = "union-local-1"
name = "Union Local 1"
kind = "union"
role = "member"                  # or "backbone": the hub (see the README's "Roles and authority")
secret = "…"
enabled = true
import_key = "…"                 # set by the first `turnout partners rotate-secret`: the secret before it

[partners.action_network]        # optional: see `turnout action-network`
token_sha256 = "…"
actions = { "d91b4b2e-…" = "rally-1201" }

[partners.mobilize]              # optional: see `turnout mobilize`
organization_id = 1234
api_key = "…"
events = { "567890" = "rally-1201" }
```
The file holds secrets: keep it out of version control and readable only by the service.
Commands that change a partner change only its values (``tomlkit``): comments, order and
layout written by hand are kept.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import secrets
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import tomlkit
from pydantic import SecretStr, ValidationError

from contracts.partners import Partner

from .friendly import explain

log = logging.getLogger(__name__)


class CoalitionError(Exception):
    """The coalition file is missing, unreadable or invalid; the message says where."""


class BadValue(CoalitionError):
    """A value given for the coalition file (a new partner's id or name) is not one it can hold."""


class Coalition:
    def __init__(self, partners: list[Partner]) -> None:
        self.partners = {p.id: p for p in partners}

    def names(self) -> dict[str, str]:
        """Partner id → display name, every partner listed."""
        return {p.id: p.name for p in self.partners.values()}

    def get(self, partner_id: str) -> Partner | None:
        """The partner if it exists and is enabled."""
        p = self.partners.get(partner_id)
        return p if p is not None and p.enabled else None


class CoalitionFile:
    """The coalition file, read again when it changes (its modification time, looked at once
    every ``every`` seconds at most), so `turnout partners add` takes effect at once. A change
    that breaks it (a typo while editing by hand) keeps the last good file in force, said once
    in one line; a file broken from the start raises ``CoalitionError``."""

    def __init__(self, path: Path, every: float = 0.0) -> None:
        self.path, self.every = path, every
        self._mtime: float | None = None
        self._checked = -math.inf
        self._coalition = Coalition([])
        self._good = False

    def current(self) -> Coalition:
        if self.every and time.monotonic() - self._checked < self.every:
            return self._coalition
        self._checked = time.monotonic()
        mtime = self.path.stat().st_mtime if self.path.exists() else None
        if mtime != self._mtime:
            try:
                self._coalition, self._mtime = load(self.path, missing_ok=True), mtime
            except CoalitionError as exc:
                if not self._good:
                    raise
                self._mtime = mtime  # not read again until it changes again
                log.warning("%s; the last good coalition file stays in force until this is fixed", exc)
            else:
                self._good = True
        return self._coalition


class SponsorNames(Mapping[str, str]):
    """Partner id → name as the coalition file says now (a partner added while the workers run
    is named in its messages at once); the last readable file's while it is being edited."""

    def __init__(self, file: CoalitionFile) -> None:
        self.file = file
        self._of: Coalition | None = None
        self._names: dict[str, str] = {}

    def _current(self) -> dict[str, str]:
        try:
            coalition = self.file.current()
        except CoalitionError:
            return self._names
        if coalition is not self._of:
            self._of, self._names = coalition, coalition.names()
        return self._names

    def __getitem__(self, partner_id: str) -> str:
        return self._current()[partner_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


def backbone_name(file: CoalitionFile) -> str | None:
    """The enabled backbone partner's name as the file says now (the first by id), if any."""
    try:
        partners = file.current().partners
    except CoalitionError:
        return None
    return next((p.name for _, p in sorted(partners.items()) if p.role == "backbone" and p.enabled), None)


#: What is said of a coalition file not there (yet) when a server starts.
NOT_YET = "does not exist yet: no partner can post until you add one (turnout partners add)"


def load(path: Path, missing_ok: bool = False) -> Coalition:
    """The partners of the coalition file at ``path``. A missing file is an error that says
    how to create one, unless ``missing_ok`` (then: no partners)."""
    if not path.exists() and missing_ok:
        return Coalition([])
    return checked(tomllib.loads(read(path)), path)


def read(path: Path) -> str:
    """The coalition file's text, once it is known to be TOML; else a ``CoalitionError`` that
    says what to do."""
    if not path.exists():
        raise CoalitionError(f"no coalition file at {path.absolute()}: create it with `turnout partners add ID --name NAME "
                             "--kind KIND`, or point TURNOUT_COALITION at yours")
    try:
        text = path.read_text()
        tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CoalitionError(f"{path}: not a readable TOML file ({exc}); fix it or restore a copy") from None
    return text


def checked(data: dict[str, Any], path: Path) -> Coalition:
    """The partners of the coalition file's contents, or a ``CoalitionError`` saying which entry is wrong."""
    entries = data.get("partners", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CoalitionError(f"{path}: `partners` must be a list of [[partners]] tables, each with id, name, kind and secret "
                             "(see `turnout partners add`)")
    partners = []
    for i, entry in enumerate(entries, 1):
        try:
            partners.append(Partner.model_validate(entry))
        except ValidationError as exc:
            who = f" ({entry['id']})" if isinstance(entry.get("id"), str) else ""
            raise CoalitionError(f"{path}: partner {i}{who}: {explain(exc)}; fix that entry in the file") from None
    ids = [p.id for p in partners]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise CoalitionError(f"{path}: partner id {', '.join(twice)} appears more than once; remove or rename one")
    return Coalition(partners)


def add_partner(path: Path, partner_id: str, name: str, kind: str, role: str = "member") -> Partner:
    """Append a partner with a fresh secret; refuse an id that exists."""
    if load(path, missing_ok=True).partners.get(partner_id):
        raise CoalitionError(f"partner {partner_id!r} already exists in {path}")
    try:
        partner = Partner(id=partner_id, name=name, kind=kind, role=role, secret=SecretStr(secrets.token_urlsafe(32)))
    except ValidationError as exc:
        raise BadValue(explain(exc)) from None
    entry = {"id": partner.id, "name": partner.name, "kind": partner.kind, "role": partner.role,
             "secret": partner.secret.get_secret_value(), "enabled": True}
    block = tomlkit.dumps({"partners": [entry]})
    prefix = "\n" if path.exists() and path.read_text().strip() else ""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(prefix + block)
    return partner


def update_partner(path: Path, partner_id: str, change: Callable[[dict[str, Any]], None]) -> Partner:
    """Apply ``change`` to the partner's entry in place, validate, and rewrite the file (mode
    0600), keeping everything else in it as written, comments included."""
    data = tomlkit.parse(read(path))
    entries = data.get("partners", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        checked(data.unwrap(), path)  # raises, saying what is wrong
    entry = next((e for e in entries if e.get("id") == partner_id), None)
    if entry is None:
        known = ", ".join(str(e.get("id")) for e in entries) or "none yet"
        raise CoalitionError(f"no partner {partner_id!r} in {path} (partners: {known})")
    # The blank lines and comments at the end of the entry introduce the next one: keys the
    # change adds go before them, not under a comment about the next partner.
    body, tail = entry.value.body, []
    while body and body[-1][0] is None:
        tail.append(body.pop())
    change(entry)
    for _, item in reversed(tail):
        entry.value.append(None, item)
    try:
        partner = Partner.model_validate(entry.unwrap())
    except ValidationError as exc:
        raise CoalitionError(f"{partner_id}: {explain(exc)}") from None
    checked(data.unwrap(), path)  # never write a file the web app would refuse
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(tomlkit.dumps(data))
    tmp.replace(path)
    return partner


def rotate_secret(path: Path, partner_id: str) -> Partner:
    """Give the partner a fresh webhook secret: the old one is refused from now on (posts signed
    with it, and its staff's dashboard sessions: README, Dashboard accounts). The first rotation
    keeps the old secret as the partner's ``import_key``: a sheet imported again gives the event
    ids it gave before, and counts once."""

    def change(entry: dict[str, Any]) -> None:
        entry.setdefault("import_key", entry.get("secret"))
        entry["secret"] = secrets.token_urlsafe(32)

    return update_partner(path, partner_id, change)


def set_enabled(path: Path, partner_id: str, enabled: bool) -> Partner:
    """Accept (``True``) or refuse (``False``) the partner's posts; refused, its staff are signed out."""
    return update_partner(path, partner_id, lambda entry: entry.update(enabled=enabled))


def rotate_action_network_token(path: Path, partner_id: str) -> str:
    """A fresh secret URL token for the partner's Action Network webhook; only its hash is kept."""
    token = secrets.token_urlsafe(24)

    def change(entry: dict[str, Any]) -> None:
        entry.setdefault("action_network", {})["token_sha256"] = token_digest(token)

    update_partner(path, partner_id, change)
    return token


def action_network_event_id(event: str) -> str | None:
    """The id of an Action Network event given as its id or its API URL
    (``https://actionnetwork.org/api/v2/events/<id>``, a query or a last slash aside); ``None`` for
    a URL on another host, or another link on actionnetwork.org (an event's page, its attendances)."""
    if "/" not in event:
        return event
    url = urlsplit(event)
    host = url.hostname or ""
    if host != "actionnetwork.org" and not host.endswith(".actionnetwork.org"):
        return None
    path = [part for part in url.path.split("/") if part]
    return path[3] if len(path) == 4 and path[:3] == ["api", "v2", "events"] else None


def map_action_network_event(path: Path, partner_id: str, event: str, action_id: str | None) -> Partner:
    """Count the partner's Action Network ``event`` (id or API URL) as ``action_id``; None unmaps it."""
    key = action_network_event_id(event)
    if key is None:
        raise CoalitionError(f"{event[:80]!r} is not an Action Network event (an id, or its https://actionnetwork.org/api/v2/events/<id> "
                             "URL: the event's page address is not)")
    if not re.fullmatch(r"[!-~]{1,128}", key):
        raise CoalitionError(f"{event[:80]!r} is not an Action Network event id (printable characters, no spaces)")

    def change(entry: dict[str, Any]) -> None:
        actions = entry.setdefault("action_network", {}).setdefault("actions", {})
        if action_id is None:
            if actions.pop(key, None) is None:
                raise CoalitionError(f"{partner_id}: Action Network event {key!r} is not mapped")
        else:
            actions[key] = action_id

    return update_partner(path, partner_id, change)


def token_digest(token: str) -> str:
    # URL tokens are 192 random bits: a plain hash is enough, no salt or stretching needed.
    return hashlib.sha256(token.encode()).hexdigest()


def connect_mobilize(path: Path, partner_id: str, organization_id: int, api_key: str) -> Partner:
    """Poll Mobilize organization ``organization_id`` for the partner, with its API key."""

    def change(entry: dict[str, Any]) -> None:
        old = entry.get("mobilize") or {}
        entry["mobilize"] = {"organization_id": organization_id, "api_key": api_key, "events": old.get("events", {})}

    return update_partner(path, partner_id, change)


def map_mobilize_event(path: Path, partner_id: str, event_id: str, action_id: str | None) -> Partner:
    """Count attendances of Mobilize event ``event_id`` as RSVPs and check-ins for ``action_id``; None unmaps it."""
    if not re.fullmatch(r"[0-9]{1,18}", event_id):
        raise CoalitionError(f"{event_id[:80]!r} is not a Mobilize event id (a number, e.g. 7001)")

    def change(entry: dict[str, Any]) -> None:
        if "mobilize" not in entry:
            raise CoalitionError(f"{partner_id}: not connected to Mobilize yet (turnout mobilize connect)")
        events = entry["mobilize"].setdefault("events", {})
        if action_id is not None:
            events[str(event_id)] = action_id
        elif events.pop(str(event_id), None) is None:
            raise CoalitionError(f"{partner_id}: Mobilize event {event_id!r} is not mapped")

    return update_partner(path, partner_id, change)


def disconnect_mobilize(path: Path, partner_id: str) -> int:
    """Stop polling the partner's Mobilize organization (its key and mappings go); which one it was."""
    gone: list[int] = []

    def change(entry: dict[str, Any]) -> None:
        if "mobilize" not in entry:
            raise CoalitionError(f"{partner_id}: not connected to Mobilize")
        gone.append(int(entry.pop("mobilize")["organization_id"]))

    update_partner(path, partner_id, change)
    return gone[0]
