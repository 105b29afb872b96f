"""The demo coalition: partners of the kinds turnout is for, an upcoming rally with pledges,
and simulated sign-ups, RSVPs and check-ins posted through the real signed webhook.

Partners differ in how well they produce, so the tally shows who delivers and who is
"just a name on the letterhead". Contact details are fictional: 555-01xx numbers in area code
341 (``DEMO_PHONES``), a range no README example uses, and example.org addresses.
"""

from __future__ import annotations

import json
import random
import time
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import httpx
from rich.console import Console
from rich.console import Group
from rich.live import Live

from streams.coalition import CoalitionError, CoalitionFile, add_partner, load
from streams.settings import Settings
from streams.stack import turnout_command

from .signing import headers
from .tally_table import action_table, natural_width

ACTION_ID = "rally-1201"
ALERT_ID = "hearing-alert"
# (id, name, kind, pledge, share of recruits who show up)
PARTNERS = [
    ("coalition-backbone", "Fair Care Coalition (backbone)", "backbone", 0, 0.0),
    ("union-local-1", "Care Workers Union Local 1", "union", 40, 0.8),
    ("grace-congregation", "Grace Street Congregation", "faith", 25, 0.9),
    ("eastside-tenants", "Eastside Tenants Alliance", "community", 30, 0.5),
    ("oak-valley-seniors", "Oak Valley Seniors Council", "seniors", 20, 0.05),
]
POSTAL_CODES = ["94607", "94606", "94612", "94609", "94601"]
#: Simulated supporters' numbers (+1 341 555 0101…0199): fictional, and no README example is one of them.
DEMO_PHONES = "+1341555{:04d}"
#: Seconds between two printings of the figures when the output is not a terminal.
PRINT_EVERY = 10.0
console = Console(soft_wrap=True)


def ensure_demo_partners(path: Path) -> None:
    known = load(path, missing_ok=True).partners
    for pid, name, kind, _, _ in PARTNERS:
        if pid not in known:
            add_partner(path, pid, name, kind, role="backbone" if kind == "backbone" else "member")


def action_event(now: datetime) -> dict:
    starts = (now + timedelta(days=7)).replace(hour=2, minute=0, second=0, microsecond=0)
    return {
        "type": "action", "event_id": f"demo-{ACTION_ID}", "occurred_at": now.isoformat(),
        "action_id": ACTION_ID, "title": "Rally for Fair Care Funding", "kind": "rally",
        "starts_at": starts.isoformat(), "time_zone": "America/Los_Angeles",
        "location": {"venue": "City Hall steps", "locality": "Oakland", "region": "CA", "postal_code": "94612"},
        "target": {"postal_codes": POSTAL_CODES},
        "pledges": [{"partner": pid, "count": pledge} for pid, _, _, pledge, _ in PARTNERS if pledge],
        "templates": {"sms": {"en": "{given_name}, rally {action_title} {local_time}. RSVP {rsvp_link}"}},
        "rapid_response": False,
    }


class Simulator:
    """Posts a plausible trickle of activity, partner by partner, through the signed webhook."""

    def __init__(self, s: Settings, base: str, seed: int = 1201) -> None:
        self.base = base
        self.rng = random.Random(seed)
        self.coalition = CoalitionFile(s.coalition)  # read again when it changes: a rotated secret, a partner disabled
        self.people: dict[str, list[dict]] = {pid: [] for pid, *_ in PARTNERS[1:]}
        self.n = 0
        self.client = httpx.Client(timeout=10)

    def secret(self, partner: str) -> str | None:
        """The partner's secret as the coalition file says now (None: removed or disabled there)."""
        try:
            found = self.coalition.current().get(partner)
        except CoalitionError:  # being edited by hand: try again at the next post
            return None
        return found.secret.get_secret_value() if found is not None and found.enabled else None

    def post(self, partner: str, events: list[dict]) -> bool:
        """Post as ``partner``; whether the web app answered (a partner removed: nothing posted, ``True``)."""
        if (secret := self.secret(partner)) is None:
            return True
        body = json.dumps(events).encode()
        h = headers(partner, secret, body, time.time())
        try:
            r = self.client.post(f"{self.base}/v1/events", content=body, headers=h)
        except httpx.TransportError as exc:
            slow(exc)
            return False
        if r.status_code != 202:
            console.print(f"[yellow]demo post as {partner}: {r.status_code} {r.text[:200]}[/]")
        return True

    def tallies(self, token: str, actions: list[str]) -> list[dict] | None:
        """The actions' tallies as the API answers them now (``None``: the web app did not answer)."""
        auth = {"Authorization": f"Bearer {token}"}
        try:
            return [r.json() for a in actions if (r := self.client.get(f"{self.base}/v1/actions/{a}/tallies", headers=auth)).status_code == 200]
        except httpx.TransportError as exc:
            slow(exc)
            return None

    def start(self) -> bool:
        return self.post("coalition-backbone", [action_event(datetime.now(timezone.utc))])

    def alert(self) -> None:
        """A rapid-response alert to everyone signed up so far: watch asks go out and come back."""
        now = datetime.now(timezone.utc)
        self.post("coalition-backbone", [{
            "type": "action", "event_id": "demo-alert", "occurred_at": now.isoformat(), "action_id": ALERT_ID,
            "title": "Emergency budget hearing", "kind": "hearing", "starts_at": (now + timedelta(days=1)).isoformat(),
            "time_zone": "America/Los_Angeles", "location": {"venue": "Council Chambers", "locality": "Oakland"},
            "target": {"postal_codes": POSTAL_CODES}, "rapid_response": True,
            "templates": {"sms": {"en": "{given_name}, the council votes on care funding {local_time} at {place}. Be there: {rsvp_link}"},
                          "email": {"en": {"subject": "{action_title}", "body": "Hi {given_name}, join us {local_time} at {place}: {rsvp_link}"}}},
        }])

    def tick(self) -> None:
        now = datetime.now(timezone.utc).isoformat()
        for pid, _, _, pledge, show_rate in PARTNERS[1:]:
            events = []
            if len(self.people[pid]) < pledge * 1.5 and self.rng.random() < 0.7:
                self.n += 1
                person = {"given_name": f"Supporter{self.n}", "postal_code": self.rng.choice(POSTAL_CODES), "language": "en"}
                if self.n < 100:
                    person["phone"] = DEMO_PHONES.format(100 + self.n)
                else:
                    person["email"] = f"supporter{self.n}@example.org"
                self.people[pid].append(person)
                ref = {k: person[k] for k in ("phone", "email") if k in person}
                # The demo partners' sign-up forms ask for consent on behalf of the whole coalition,
                # so the backbone's alert reaches them (README: Roles and authority).
                consent = {c: {"granted": field in person, "scope": "coalition"} for c, field in (("sms", "phone"), ("email", "email"))}
                events.append({"type": "signup", "event_id": f"s-{self.n}", "occurred_at": now, "person": person, "consent": consent})
                events.append({"type": "rsvp", "event_id": f"r-{self.n}", "occurred_at": now, "action_id": ACTION_ID,
                               "status": "yes", "person": ref})
            elif self.people[pid] and self.rng.random() < show_rate * 0.5:
                i = self.rng.randrange(len(self.people[pid]))
                person = self.people[pid][i]
                ref = {k: person[k] for k in ("phone", "email") if k in person}
                # Re-posting a check-in for someone already in is harmless: one attendee.
                events.append({"type": "checkin", "event_id": f"c-{pid}-{i}", "occurred_at": now,
                               "action_id": ACTION_ID, "person": ref})
            if events:
                self.post(pid, events)


def slow(exc: httpx.TransportError) -> None:
    """A request of the demo's was not answered: said, and the demo goes on. A process that
    exits stops the stack (``streams.stack``); a web app that is slow for a while does not."""
    console.print(f"[yellow]demo: no answer from the web app ({type(exc).__name__}); the demo goes on[/]")


def run_demo(s: Settings, base: str, alive: Callable[[], bool]) -> None:
    sim = Simulator(s, base)
    started = sim.start()
    token = s.organizer_token.get_secret_value()
    partner = "union-local-1"
    turnout = turnout_command()
    example = json.dumps({"type": "checkin", "event_id": "my-first-checkin", "occurred_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "action_id": ACTION_ID, "person": {"phone": "+15105550199"}})
    console.print(f"partner {partner} secret   {sim.secret(partner)}")
    console.print("post your own signed event (then watch the union's attended count move):")
    console.print(f"  {turnout} sign {partner} --url {base} --data '{example}' | sh", soft_wrap=True, highlight=False)
    console.print(f"read the tallies:\n  curl -s -H 'Authorization: Bearer {token}' {base}/v1/actions/{ACTION_ID}/tallies", soft_wrap=True, highlight=False)
    console.print("Ctrl-C to stop.\n")
    ticks, printed, printed_at = 0, None, -PRINT_EVERY
    # Into a file or a pipe (`make run | tee run.log`) a live table shows only when it stops: the
    # figures are printed whole instead, when they have changed, at most every PRINT_EVERY seconds.
    live = Live(console=console, refresh_per_second=2) if console.is_terminal else None
    with live or nullcontext():
        while alive():
            started = started or sim.start()
            sim.tick()
            ticks += 1
            if ticks == 60:
                sim.alert()
                console.print("rapid-response alert posted; texts to anyone in quiet hours (21:00-09:00 their time) wait until 09:00")
            if (answers := sim.tallies(token, [ACTION_ID, ALERT_ID])) is not None:
                frame = Group(*map(action_table, answers))
                if live is not None:
                    live.update(frame)
                elif (figures := [(a["partners"], a["totals"]) for a in answers]) != printed and time.monotonic() - printed_at >= PRINT_EVERY:
                    console.print(frame, width=natural_width(frame))
                    printed, printed_at = figures, time.monotonic()
            time.sleep(0.5)  # demo pacing, not synchronisation
