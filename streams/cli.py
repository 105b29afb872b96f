"""The `turnout` command. This is the composition root: it reads settings once and wires the
broker, the worker (``agents``) and the web app (``connectors``), imported only when run."""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from . import coalition as coalition_file
from .settings import Settings

console = Console(stderr=True)


def settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError names the variable
        raise click.ClickException(f"bad configuration: {exc}") from None


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
    pipeline = build(s)
    outreach = None
    if s.providers_configured:
        from agents.outreach.agents import outreach_from
        from connectors.providers.outbox import outbox_from

        outreach = outreach_from(s, outbox_from(s))
    else:
        console.print("[yellow]no provider credentials: asks are planned but not sent (see README)[/]")
    register(pipeline, s, outreach)
    worker = faust.Worker(pipeline.app, loglevel="info")
    # The Twilio SDK logs every request at INFO, with the recipient's number in the URL body.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    worker.execute_from_commandline()


@main.command(help="Run the web app (ingress, tally API) with uvicorn.")
@click.option("--host", default=None, help="Bind address (default TURNOUT_WEB_HOST).")
@click.option("--port", default=None, type=int, help="Port (default TURNOUT_WEB_PORT).")
def web(host: str | None, port: int | None) -> None:
    import uvicorn

    from connectors.web.app import create_app

    s = settings()
    if s.organizer_token is None:
        raise click.ClickException("TURNOUT_ORGANIZER_TOKEN is not set")
    try:
        app = create_app(s)
    except (coalition_file.CoalitionError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    uvicorn.run(app, host=host or s.web_host, port=port or s.web_port, log_level="warning")


@main.command(help="Run the sandbox providers (Twilio and SendGrid APIs) for the configured web app.")
@click.option("--port", default=8099, show_default=True)
@click.option("--faults", default="{}", help='JSON, e.g. \'{"share_429": 0.3}\'')
def sandbox(port: int, faults: str) -> None:
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
    )
    uvicorn.run(create_sandbox(config), host="127.0.0.1", port=port, log_level="warning")


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
def partners_add(partner_id: str, name: str, kind: str) -> None:
    path = settings().coalition
    try:
        p = coalition_file.add_partner(path, partner_id, name, kind)
    except coalition_file.CoalitionError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"added [bold]{p.id}[/] to {path}; its webhook secret (shown once here, kept in the file):")
    click.echo(p.secret.get_secret_value())


@partners.command("list", help="List partners (no secrets).")
def partners_list() -> None:
    path = settings().coalition
    try:
        c = coalition_file.load(path)
    except coalition_file.CoalitionError as exc:
        raise click.ClickException(str(exc)) from None
    table = Table("id", "name", "kind", "enabled", title=str(path))
    for p in c.partners.values():
        table.add_row(p.id, p.name, p.kind, "yes" if p.enabled else "no")
    Console().print(table)


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


@main.command(help="Show tallies from a running web app.")
@click.option("--action", "action_id", default=None, help="One action's per-partner tallies.")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True)
def tallies(action_id: str | None, url: str) -> None:
    import httpx

    s = settings()
    if s.organizer_token is None:
        raise click.ClickException("TURNOUT_ORGANIZER_TOKEN is not set")
    path = f"/v1/actions/{action_id}/tallies" if action_id else "/v1/tallies"
    r = httpx.get(url + path, headers={"Authorization": f"Bearer {s.organizer_token.get_secret_value()}"})
    if r.status_code != 200:
        raise click.ClickException(f"{r.status_code}: {r.text}")
    click.echo(json.dumps(r.json(), indent=2))


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
