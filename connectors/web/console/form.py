"""The organizer console's action form, to and from the partner ``action`` event. Pure.

The start is typed as a wall time in the action's own zone (``2026-12-02T15:47`` in
``America/Los_Angeles``), never the browser's: the form sends both and this module makes the
aware ``starts_at`` from them. Lists are typed one per line or comma-separated; pledges as
``partner: count`` lines. What is wrong is left to the contract and the ingress to say, by field.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Mapping
from zoneinfo import ZoneInfo

from contracts.events import ActionEvent
from contracts.facts import ActionRecord, version
from contracts.zones import known_zone, skipped

LANGUAGES = ("en", "es")
KINDS = ("rally", "march", "town_hall", "call_in", "hearing", "canvass", "vigil", "meeting", "other")
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
         "America/Anchorage", "Pacific/Honolulu", "America/Puerto_Rico")


def _items(text: str) -> list[str]:
    return [x.strip() for x in re.split(r"[,\n]", text or "") if x.strip()]


def _wall(local: str, zone: str) -> datetime | None:
    try:
        wall = datetime.fromisoformat(local)
    except ValueError:
        return None
    return wall.replace(tzinfo=ZoneInfo(zone)) if wall.tzinfo is None and known_zone(zone) else None


def starts_at(local: str, zone: str, fold: bool = False) -> str | None:
    """The ISO 8601 instant of wall time ``local`` in ``zone`` (``None``: either is unreadable;
    the contract then names ``starts_at``). A wall time the clocks pass twice (the night they go
    back) is the first of the two, or the second with ``fold``."""
    wall = _wall(local, zone)
    return None if wall is None else wall.replace(fold=int(fold)).isoformat()


def skipped_problem(local: str, zone: str) -> str | None:
    """What is wrong with a wall time the clocks skip in ``zone`` (the night they go forward),
    else ``None``: it would silently become an hour later."""
    wall = _wall(local, zone)
    if wall is None or not skipped(wall):
        return None
    hour = wall.strftime("%I:%M %p").lstrip("0")
    return f"{hour} does not exist on {wall:%a %b} {wall.day}, {wall.year} in {zone}: the clocks go forward an hour then"


def pledges(text: str) -> list[dict] | str:
    """``partner: count`` lines; what is not one is passed on as typed, for the contract to
    refuse by name: a count that is not a number as its text, a line with no colon as a partner."""
    out: list[dict] = []
    for line in _items(text):
        m = re.fullmatch(r"([^:\s]+)\s*:\s*(.*)", line)
        if m is None:
            out.append({"partner": line, "count": -1})
        else:
            out.append({"partner": m[1], "count": int(m[2]) if re.fullmatch(r"-?\d{1,18}", m[2]) else m[2]})
    return out


#: The form's input for each field of the action event (its contract path) the form has one for.
_INPUTS = {"action_id": "action_id", "title": "title", "kind": "kind", "starts_at": "local_start", "local_start": "local_start",
           "time_zone": "time_zone", "location.venue": "venue", "location.locality": "locality", "location.region": "region",
           "location.postal_code": "location_postal_code", "location.address_lines": "address_lines",
           "target": "target_postal_codes", "target.postal_codes": "target_postal_codes", "target.regions": "target_regions", "pledges": "pledges"}


def input_of(field: str, message: str = "") -> str | None:
    """The id of the form's input that an error about ``field`` (``location.venue``,
    ``templates.email.es.subject``, ``pledges.1.partner``) is about; ``None`` if the form has none.
    ``{place}`` with no location is fixed by giving a venue."""
    if field == "templates" and "{place}" in message:
        return "venue"
    if field == "templates":
        return "sms_en"
    parts = field.split(".")
    if parts[:1] == ["templates"] and len(parts) >= 3 and parts[2] in LANGUAGES:
        if parts[1] == "sms":
            return f"sms_{parts[2]}"
        return f"email_{'subject' if parts[3:4] == ['subject'] else 'body'}_{parts[2]}" if parts[1] == "email" else None
    return _INPUTS.get(".".join(parts[:2])) or _INPUTS.get(parts[0])


def _lines(text: str | None) -> str:
    """A template as typed: a browser sends each line break as CRLF, which the text would carry
    (one character more per break than the box shows and counts); a plain newline instead."""
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


def to_event(form: Mapping[str, str], event_id: str, occurred_at: datetime) -> dict:
    """The ``action`` event (its JSON form) the console posts for ``form``."""
    get = lambda name: (form.get(name) or "").strip()  # noqa: E731
    location = {k: v for k, v in (("venue", get("venue")), ("locality", get("locality")), ("region", get("region")),
                                   ("postal_code", get("location_postal_code"))) if v}
    if lines := [x for x in (form.get("address_lines") or "").splitlines() if x.strip()]:
        location["address_lines"] = [x.strip() for x in lines]
    sms = {lang: _lines(form[f"sms_{lang}"]) for lang in LANGUAGES if get(f"sms_{lang}")}
    email = {lang: {"subject": get(f"email_subject_{lang}"), "body": _lines(form.get(f"email_body_{lang}"))}
             for lang in LANGUAGES if get(f"email_subject_{lang}") or get(f"email_body_{lang}")}
    try:  # templates in languages the form has no boxes for, carried through an edit unchanged
        other = json.loads(form.get("other_templates") or "{}")
        sms = {**other.get("sms", {}), **sms}
        email = {**other.get("email", {}), **email}
    except (ValueError, AttributeError, TypeError, RecursionError):  # not the page's own JSON of them (garbled by hand): the boxes stand
        pass
    event = {
        "type": "action", "event_id": event_id, "occurred_at": occurred_at.isoformat(), "action_id": get("action_id"),
        "title": get("title"), "kind": get("kind"), "starts_at": starts_at(get("local_start"), get("time_zone"), get("local_start_fold") == "1"),
        "time_zone": get("time_zone"), "location": location,
        "target": {"postal_codes": _items(form.get("target_postal_codes", "")), "regions": _items(form.get("target_regions", ""))},
        "pledges": pledges(form.get("pledges", "")), "templates": {"sms": sms, "email": email},
        "rapid_response": form.get("rapid_response") == "yes", "override_quiet_hours": form.get("override_quiet_hours") == "yes",
    }
    return event


def from_action(action: ActionEvent, listed: Mapping[str, int] | None = None) -> dict[str, str]:
    """The form's fields for editing a posted action (its start as a wall time in its zone); the
    pledges as it lists them, and ``listed`` (the pledges listed in it that count now, by partner)
    that it does not: one a version posted since left out still counts, and leaving its line out
    of the edit would take it back unseen."""
    pledged = {p.partner: p.count for p in action.pledges}
    pledged.update((pid, n) for pid, n in (listed or {}).items() if pid not in pledged)
    loc, t = action.location, action.templates
    out = {
        "action_id": action.action_id, "title": action.title, "kind": action.kind, "time_zone": action.time_zone,
        "local_start": (local := action.starts_at.astimezone(ZoneInfo(action.time_zone))).strftime("%Y-%m-%dT%H:%M"),
        "local_start_fold": str(local.fold),  # the second of a wall time the clocks pass twice
        "venue": loc.venue or "", "address_lines": "\n".join(loc.address_lines), "locality": loc.locality or "",
        "region": loc.region or "", "location_postal_code": loc.postal_code or "",
        "target_postal_codes": ", ".join(action.target.postal_codes), "target_regions": ", ".join(action.target.regions),
        "pledges": "\n".join(f"{pid}: {n}" for pid, n in pledged.items()),
        "rapid_response": "yes" if action.rapid_response else "", "override_quiet_hours": "yes" if action.override_quiet_hours else "",
        "based_on": version(action),  # the version this edit starts from (``version_problem``)
    }
    out["other_templates"] = json.dumps({"sms": {k: v for k, v in t.sms.items() if k not in LANGUAGES},
                                         "email": {k: v.model_dump() for k, v in t.email.items() if k not in LANGUAGES}})
    for lang in LANGUAGES:
        out[f"sms_{lang}"] = t.sms.get(lang, "")
        mail = t.email.get(lang)
        out[f"email_subject_{lang}"], out[f"email_body_{lang}"] = (mail.subject, mail.body) if mail else ("", "")
    return out


def version_problem(form: Mapping[str, str], posted: ActionRecord | None) -> str | None:
    """Why the form may not be posted over the action as it is now: a new action's form (its
    ``based_on`` empty) naming an id in use, or an edit's whose action changed since it was opened
    (another tab or organizer saved meanwhile): posted, either would replace what is there
    without a word. ``None`` when the form has no ``based_on`` (not the console's own form)."""
    based = form.get("based_on")
    if based is None or posted is None or based == version(posted.action):
        return None
    if not based:
        return f"an action {posted.action.action_id!r} exists already (“{posted.action.title}”): choose another id, or edit that one from the dashboard"
    return f"changed since this form was opened (now “{posted.action.title}”): open it again to edit what is there now (nothing was saved)"
