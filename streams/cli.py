"""The `turnout` command. This is the composition root: it reads settings once and wires the
broker, the worker (``agents``) and the web app (``connectors``), imported only when run."""

from __future__ import annotations

import asyncio
import json
import logging.config
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import click
from rich.console import Console
from rich.table import Table

from . import coalition as coalition_file
from .logs import logging_config
from .settings import Settings

console = Console(stderr=True)


@contextmanager
def coalition_errors() -> Iterator[None]:
    """A broken coalition file or a refused change is a clean CLI error, not a traceback."""
    try:
        yield
    except coalition_file.CoalitionError as exc:
        raise click.ClickException(str(exc)) from None


def settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError names the variable
        raise click.ClickException(f"bad configuration: {exc}") from None


def organizer_headers(s: Settings) -> dict[str, str]:
    """What a CLI command sends to the web app's organizer endpoints."""
    if s.organizer_token is None:
        raise click.ClickException("TURNOUT_ORGANIZER_TOKEN is not set")
    return {"Authorization": f"Bearer {s.organizer_token.get_secret_value()}"}


@click.group(help="turnout: signed partner webhooks → Kafka → Faust agents → exact live tallies.")
def main() -> None:
    pass


@main.command(help="Run the whole pipeline: broker (embedded unless KAFKA_BOOTSTRAP_SERVERS), worker(s), web.")
@click.option("--port", default=8000, show_default=True, help="Web app port.")
@click.option("--workers", default=1, show_default=True, help="Number of Faust worker processes.")
@click.option("--demo", is_flag=True, help="Create a demo coalition and stream simulated activity through the webhook.")
def up(port: int, workers: int, demo: bool) -> None:
    from .stack import run_stack

    run_stack(settings(), port=port, workers=workers, demo=demo)


@main.command(help="Run a Faust worker (the agents).")
def worker() -> None:
    import faust
    import mode.loop

    # uvloop (as uvicorn picks it for the web app): the worker's provider requests, Kafka
    # traffic and agents share one event loop, and uvloop's costs a fraction of asyncio's.
    mode.loop.use("uvloop")

    from agents import register

    from .app import build

    s = settings()
    from agents.outreach.agents import outreach_from
    from connectors.providers.outbox import outbox_from

    pipeline = build(s)
    if not s.providers_configured:
        console.print("[yellow]no provider credentials: asks are planned and recorded cancelled, never sent (see README)[/]")
    register(pipeline, s, outreach_from(s, outbox_from(s) if s.providers_configured else None))
    if s.metrics_port:
        from prometheus_client import start_http_server

        from .app import watch_lag

        watch_lag(pipeline)
        start_http_server(s.metrics_port)
    worker = faust.Worker(pipeline.app, loglevel="info", logging_config=logging_config(s.log_format), quiet=True)
    worker.execute_from_commandline()


@main.command(help="Run the web app (ingress, tally API) with uvicorn.")
@click.option("--host", default=None, help="Bind address (default TURNOUT_WEB_HOST).")
@click.option("--port", default=None, type=int, help="Port (default TURNOUT_WEB_PORT).")
def web(host: str | None, port: int | None) -> None:
    import uvicorn

    from connectors.web import server
    from connectors.web.app import create_app

    s = settings()
    if s.organizer_token is None:
        raise click.ClickException("TURNOUT_ORGANIZER_TOKEN is not set")
    try:
        app = create_app(s)
    except (coalition_file.CoalitionError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    # Open dashboard streams must not hold a restart up: they reconnect by themselves.
    log_config = logging_config(s.log_format, "WARNING")
    log_config["loggers"]["connectors.web"] = {"level": "INFO"}  # refusals and dropped clients: one line each
    config = server.config(app, s, host or s.web_host, port or s.web_port, log_config=log_config, timeout_graceful_shutdown=2)
    uvicorn.Server(config).run()


@main.command(help="Run the sandbox providers (Twilio and SendGrid APIs) for the configured web app.")
@click.option("--port", default=8099, show_default=True)
@click.option("--faults", default="{}", help='JSON, e.g. \'{"share_429": 0.3}\'')
@click.option("--sms-mps", type=click.FloatRange(min=0), default=None,
              help="Texts per second each sender's queue lets out, as Twilio's does (0: no queue). Default: TURNOUT_SANDBOX_SMS_MPS, else 0.")
def sandbox(port: int, faults: str, sms_mps: float | None) -> None:
    import uvicorn

    from connectors.sandbox.faults import Faults
    from connectors.sandbox.server import SandboxConfig, create_sandbox

    s = settings()
    web = s.public_url.rstrip("/")
    config = SandboxConfig(
        **({"account_sid": s.twilio_account_sid} if s.twilio_account_sid else {}),
        **({"auth_token": s.twilio_auth_token} if s.twilio_auth_token else {}),
        **({"sendgrid_api_key": s.sendgrid_api_key} if s.sendgrid_api_key else {}),
        sendgrid_private_key_pem=s.sandbox_signing_key,
        inbound_url=f"{web}/v1/providers/twilio/inbound",
        event_webhook_url=f"{web}/v1/providers/sendgrid/events",
        faults=Faults.model_validate(json.loads(faults)),
        sms_mps=s.sandbox_sms_mps if sms_mps is None else sms_mps,
    )
    uvicorn.run(create_sandbox(config), host="127.0.0.1", port=port, log_config=logging_config(s.log_format, "WARNING"))


@main.group(help="Kafka topics.")
def topics() -> None:
    pass


@topics.command("ensure", help="Create every topic turnout declares (partitions, compaction) if missing.")
def topics_ensure() -> None:
    from .admin import ensure_topics
    from .topology import topic_specs

    s = settings()
    created = ensure_topics(s)
    for spec in topic_specs(s):
        mark = "created" if spec.name in created else "exists"
        click.echo(f"{mark:8} {spec.name} partitions={spec.partitions}{' compacted' if spec.compacted else ''}")


@main.group(help="Coalition partners (the coalition file, TURNOUT_COALITION).")
def partners() -> None:
    pass


@partners.command("add", help="Add a partner with a fresh webhook secret, and print the secret.")
@click.argument("partner_id")
@click.option("--name", required=True)
@click.option("--kind", required=True, help="backbone, union, faith, community, seniors, guaranteed_income, student, tenant, other")
@click.option("--role", type=click.Choice(["member", "backbone"]), default="member", show_default=True,
              help="backbone: the coalition's hub (changes any action, reaches everyone whose consent covers the coalition).")
def partners_add(partner_id: str, name: str, kind: str, role: str) -> None:
    path = settings().coalition
    with coalition_errors():
        p = coalition_file.add_partner(path, partner_id, name, kind, role)
    console.print(f"added [bold]{p.id}[/] to {path}; its webhook secret (shown once here, kept in the file):")
    click.echo(p.secret.get_secret_value())


@partners.command("list", help="List partners (no secrets).")
def partners_list() -> None:
    path = settings().coalition
    with coalition_errors():
        c = coalition_file.load(path)
    table = Table("id", "name", "kind", "role", "enabled", title=str(path))
    for p in c.partners.values():
        table.add_row(p.id, p.name, p.kind, p.role, "yes" if p.enabled else "no")
    Console().print(table)


@main.group("action-network", help="A partner's Action Network webhook (see README).")
def action_network() -> None:
    pass


@action_network.command("token", help="Give PARTNER a new secret webhook URL (the old one stops working) and print it.")
@click.argument("partner_id")
def action_network_token(partner_id: str) -> None:
    s = settings()
    with coalition_errors():
        token = coalition_file.rotate_action_network_token(s.coalition, partner_id)
    console.print(f"new Action Network webhook URL for [bold]{partner_id}[/] (shown once; only its hash is kept):")
    click.echo(f"{s.public_url.rstrip('/')}/v1/partners/{partner_id}/action-network/{token}")


@action_network.command("map", help="Count attendances of Action Network EVENT (id or API URL) as RSVPs for ACTION_ID.")
@click.argument("partner_id")
@click.argument("event")
@click.argument("action_id")
def action_network_map(partner_id: str, event: str, action_id: str) -> None:
    with coalition_errors():
        p = coalition_file.map_action_network_event(settings().coalition, partner_id, event, action_id)
    for an_event, action in p.action_network.actions.items():
        click.echo(f"{an_event} -> {action}")


@action_network.command("unmap", help="Stop counting attendances of Action Network EVENT.")
@click.argument("partner_id")
@click.argument("event")
def action_network_unmap(partner_id: str, event: str) -> None:
    with coalition_errors():
        coalition_file.map_action_network_event(settings().coalition, partner_id, event, None)


@main.group(help="Partners' Mobilize organizations, polled for attendances (see README).")
def mobilize() -> None:
    pass


@mobilize.command("connect", help="Poll Mobilize organization ORG_ID for PARTNER with its API key (prompted, not echoed).")
@click.argument("partner_id")
@click.argument("org_id", type=int)
@click.option("--api-key", prompt="Mobilize API key", hide_input=True)
def mobilize_connect(partner_id: str, org_id: int, api_key: str) -> None:
    with coalition_errors():
        coalition_file.connect_mobilize(settings().coalition, partner_id, org_id, api_key.strip())
    click.echo(f"{partner_id}: polling Mobilize organization {org_id}")


@mobilize.command("map", help="Count attendances of Mobilize EVENT_ID (for PARTNER) as RSVPs and check-ins for ACTION_ID.")
@click.argument("partner_id")
@click.argument("event_id")
@click.argument("action_id")
def mobilize_map(partner_id: str, event_id: str, action_id: str) -> None:
    with coalition_errors():
        p = coalition_file.map_mobilize_event(settings().coalition, partner_id, event_id, action_id)
    for mz_event, action in p.mobilize.events.items():
        click.echo(f"{mz_event} -> {action}")


@mobilize.command("poll", help="Poll every connected partner's attendances, every TURNOUT_MOBILIZE_INTERVAL seconds.")
@click.option("--once", is_flag=True, help="One pass over every partner, then exit (non-zero if a pass failed).")
def mobilize_poll(once: bool) -> None:
    import asyncio

    import httpx

    from connectors.mobilize_poller import MobilizeRefused, poll
    from connectors.providers.errors import RetryLater
    from connectors.web.publisher import KafkaPublisher

    from .topology import events_topic

    s = settings()
    logging.config.dictConfig(logging_config(s.log_format))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    coalition = coalition_file.load(s.coalition)

    async def run() -> None:
        publisher = KafkaPublisher(s.bootstrap, events_topic(s), s.ack_timeout, s.idempotent_producer)
        await publisher.start()
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                await poll(s, coalition, publisher, http, once)
        finally:
            await publisher.stop()

    try:
        asyncio.run(run())
    except (MobilizeRefused, RetryLater) as exc:
        raise click.ClickException(f"Mobilize pass failed (cursor kept; run again): {exc}") from None
    except KeyboardInterrupt:
        pass


@main.command(help="Print the JSON Schema of partner events (or write it to --out).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def schema(out: Path | None) -> None:
    from contracts.schema import partner_events_schema

    text = partner_events_schema()
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    else:
        click.echo(text, nl=False)


@main.command(help="Print a signed curl command posting JSON as PARTNER (secret from the coalition file).")
@click.argument("partner_id")
@click.option("--data", help="The JSON body.")
@click.option("--file", "file_", type=click.File("rb"), help="Read the JSON body from a file ('-' for stdin).")
@click.option("--url", default="http://127.0.0.1:8000/v1/events", show_default=True)
def sign(partner_id: str, data: str | None, file_, url: str) -> None:
    from connectors.signing import headers

    if (data is None) == (file_ is None):
        raise click.UsageError("give exactly one of --data or --file")
    body = data.encode() if data is not None else file_.read()
    partner = coalition_file.load(settings().coalition).get(partner_id)
    if partner is None:
        raise click.ClickException(f"no enabled partner {partner_id!r} in the coalition file")
    h = headers(partner.id, partner.secret.get_secret_value(), body, time.time())
    parts = ["curl", "-sS", "-X", "POST", url] + [x for k, v in h.items() for x in ("-H", f"{k}: {v}")]
    click.echo(shlex.join(parts + ["--data-binary", body.decode()]))


@main.command("import", help="Import a CSV sign-in sheet as PARTNER through the signed ingress (see README).")
@click.argument("partner_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--type", "kind", type=click.Choice(["signup", "rsvp", "checkin"]), required=True)
@click.option("--action", "action_id", default=None, help="The turnout action (required for rsvp and checkin).")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD", help="Read FIELD from COLUMN (repeatable).")
@click.option("--consent", multiple=True, type=click.Choice(["sms", "email"]), help="The sheet collected consent for this channel (repeatable).")
@click.option("--dry-run", is_flag=True, help="Check every row and report the bad ones; post nothing.")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True)
@click.option("--batch", default=500, show_default=True, help="Events per request.")
def import_(partner_id: str, file: Path, kind: str, action_id: str | None, maps: tuple[str, ...], consent: tuple[str, ...],
            dry_run: bool, url: str, batch: int) -> None:
    from datetime import datetime, timezone

    import httpx
    from rich.progress import Progress

    from connectors import csv_import
    from connectors.ingress_client import IngressClient, IngressRefused

    s = settings()
    partner = coalition_file.load(s.coalition).get(partner_id)
    if partner is None:
        raise click.ClickException(f"no enabled partner {partner_id!r} in the coalition file")
    extra = dict(m.split("=", 1) for m in maps if "=" in m)
    if len(extra) != len(maps):
        raise click.UsageError("--map takes COLUMN=FIELD")
    # Rows without a date happened when the sheet was last saved: a re-run gives identical events.
    saved = datetime.fromtimestamp(file.stat().st_mtime, timezone.utc).replace(microsecond=0)
    try:
        with file.open(newline="", encoding="utf-8-sig") as f:
            rows, problems = csv_import.read(f, kind, partner=partner.id, secret=partner.secret.get_secret_value(), action=action_id,
                                             default_at=saved, region=s.default_region, extra=extra, consent=frozenset(consent))
    except (csv_import.CsvError, UnicodeDecodeError, csv_import.csv.Error) as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    for problem in problems:
        console.print(f"[red]line {problem.line}[/]: {problem.reason}", highlight=False)
    if dry_run:
        click.echo(f"dry run: {len(rows)} rows would be imported, {len(problems)} bad")
        sys.exit(1 if problems else 0)
    client = IngressClient(url, partner.id, partner.secret.get_secret_value())
    accepted = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"posting {file.name}", total=len(rows))
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            try:
                answer = client.post([r.event for r in chunk])
            except (IngressRefused, httpx.HTTPError) as exc:
                raise click.ClickException(f"stopped after {accepted} of {len(rows)} rows (re-running is safe): {exc}") from None
            accepted += answer["accepted"] + answer["duplicates"]
            for rejection in answer["rejected"]:
                reasons = "; ".join(f"{e['field']}: {e['message']}" for e in rejection["errors"])
                console.print(f"[red]line {chunk[rejection['index']].line}[/]: {reasons}", highlight=False)
                problems.append(csv_import.Problem(chunk[rejection["index"]].line, reasons))
            progress.advance(task, len(chunk))
    click.echo(f"imported {accepted} rows from {file.name} as {partner.id}; {len(problems)} bad rows not imported")
    sys.exit(1 if problems else 0)


@main.group(help="Supporters' records.")
def people() -> None:
    pass


@people.command("forget", help="Erase a person (by phone or email) on request, through a running web app; report what was removed.")
@click.option("--phone", default=None)
@click.option("--email", default=None)
@click.option("--url", default="http://127.0.0.1:8000", show_default=True)
def people_forget(phone: str | None, email: str | None, url: str) -> None:
    import httpx

    if (phone is None) == (email is None):
        raise click.UsageError("give exactly one of --phone or --email")
    body = {"phone": phone} if phone is not None else {"email": email}
    r = httpx.post(url + "/v1/people/forget", json=body, timeout=60, headers=organizer_headers(settings()))
    if r.status_code not in (200, 202):
        raise click.ClickException(f"{r.status_code}: {r.text}")
    x = r.json()
    members = f" (signed up by {', '.join(x['partners'])})" if x["partners"] else ""
    click.echo(f"removed {x['people_removed']} person record(s){members}; cancelled {x['asks_cancelled']} queued ask(s); "
               "memberships, RSVPs, check-ins and ask outcomes are kept without contact details, so tallies keep their counts")
    if not x["complete"]:
        click.echo(f"only {x['partitions_reported']} of {x['partitions']} partitions have reported so far (are workers running?); "
                   f"the request ({x['request_id']}) stays queued and will be carried out")
        sys.exit(2)


@main.command(help="Show tallies from a running web app.")
@click.option("--action", "action_id", default=None, help="One action's per-partner tallies.")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True)
def tallies(action_id: str | None, url: str) -> None:
    import httpx

    path = f"/v1/actions/{action_id}/tallies" if action_id else "/v1/tallies"
    r = httpx.get(url + path, headers=organizer_headers(settings()))
    if r.status_code != 200:
        raise click.ClickException(f"{r.status_code}: {r.text}")
    click.echo(json.dumps(r.json(), indent=2))


@main.command(help="Export the tallies as CSV, read from the broker: per action and partner, or --aggregate for funders.")
@click.option("--aggregate", is_flag=True, help="One row per action, no partner names, counts from 1 to 10 suppressed.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here (default: standard output).")
def export(aggregate: bool, out: Path | None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from connectors.web.exports import aggregate_csv, tallies_csv
    from connectors.web.tally_reader import TallyReader
    from contracts.tallies import TallyBook

    s = settings()
    book = TallyBook()
    columns = (TextColumn("reading the fact topics"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=out is None) as bar:
        task = bar.add_task("read", total=None)
        asyncio.run(TallyReader(s, book).read_to_end(lambda done, total: bar.update(task, completed=done, total=total)))
    with coalition_errors():
        names = coalition_file.load(s.coalition).names()
    chunks = aggregate_csv(book) if aggregate else tallies_csv(book, names)
    if out is None:
        for chunk in chunks:
            click.echo(chunk, nl=False)
        return
    tmp = out.with_name(out.name + ".part")
    with tmp.open("w", newline="") as f:
        f.writelines(chunks)
    tmp.replace(out)
    console.print(f"wrote {out}")


@main.command(help="Run only the embedded broker (Tansu, memory-only) and print its address.")
@click.option("--port", default=9092, show_default=True)
def broker(port: int) -> None:
    from .broker import EmbeddedBroker

    with EmbeddedBroker(port) as b:
        click.echo(f"KAFKA_BOOTSTRAP_SERVERS={b.bootstrap}  (memory-only; Ctrl-C to stop)")
        try:
            b.proc.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    sys.exit(main())
