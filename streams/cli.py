"""The `turnout` command. This is the composition root: it reads settings once and wires the
broker, the worker (``agents``) and the web app (``connectors``), imported only when run."""

from __future__ import annotations

import asyncio
import codecs
import io
import json
import logging.config
import os
import shlex
import shutil
import signal
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, get_args

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from contracts.partners import PartnerKind
from contracts.people import normalize_email, normalize_phone

from . import coalition as coalition_file
from pydantic import ValidationError

from .friendly import explain, one_line, plural
from .logs import logging_config
from .settings import Settings, unknown_settings

console = Console(stderr=True, soft_wrap=True)  # a line whole in a file or a pipe: rich cuts at 80 columns there


@contextmanager
def coalition_errors() -> Iterator[None]:
    """A broken coalition file or a refused change is a clean CLI error, not a traceback."""
    try:
        yield
    except coalition_file.BadValue as exc:  # a value given on the command line: a usage error (exit code 2)
        raise click.UsageError(str(exc)) from None
    except coalition_file.CoalitionError as exc:
        raise click.ClickException(str(exc)) from None


def settings(stack: bool = True) -> Settings:
    """The settings from the environment; with ``stack``, every one not given explicitly is
    taken from the `turnout up` running from here (streams/running.py)."""
    from . import running

    try:
        s = Settings()
        state = running.find(Path.cwd()) if stack and s.find_stack else None
        return running.with_stack(s, state) if state else s
    except ValidationError as exc:
        raise click.ClickException(f"bad configuration: {explain(exc, env_name)}") from None


NOTHING_RUNNING = ("no `turnout up` is running from {cwd} or a parent directory (no live .turnout/stack.json): "
                   "start one with `turnout up` (or `make run`), or {alternative}")


def nothing_running(s: Settings, alternative: str) -> click.ClickException:
    if not s.find_stack:
        return click.ClickException(f"TURNOUT_FIND_STACK is off, so no running `turnout up` is looked for: {alternative}")
    return click.ClickException(NOTHING_RUNNING.format(cwd=Path.cwd(), alternative=alternative))


def show(table: Table, width: int | None = None) -> None:
    """Print a table: to a terminal at its width; to a file or a pipe at ``width``, or whole however
    wide (rich would cut it at 80 columns: "turnout.even…")."""
    from connectors.tally_table import natural_width

    out = Console()
    if not out.is_terminal:
        out = Console(width=width or natural_width(table))  # else its natural width, unbounded
    out.print(table)


#: How long a command waits for a broker that does not answer (a broker that is up answers at
#: once; docker compose runs `topics ensure` once Kafka is healthy).
BROKER_WAIT = 5.0


def require_broker(s: Settings) -> str:
    """The Kafka bootstrap servers, or one line saying how to get some."""
    if not s.kafka_bootstrap_servers:
        raise nothing_running(s, "set KAFKA_BOOTSTRAP_SERVERS")
    return s.kafka_bootstrap_servers


def require_reachable(s: Settings) -> None:
    """A server command says in one line that the broker cannot be reached, before it starts
    (the web app would exit 3 with a traceback, a worker 1 with Faust's)."""
    from kafka.errors import KafkaError

    from .admin import admin_client, refuse_other_partitions

    try:
        admin = admin_client(require_broker(s), BROKER_WAIT)
    except KafkaError as exc:
        raise stopped(exc) from None
    try:
        refuse_other_partitions(admin, s)  # PartitionsDiffer: one line, as `Turnout.invoke` says every known failure
    finally:
        admin.close()


def require_person_key(s: Settings) -> None:
    if s.person_key_secret is None:
        raise click.ClickException("TURNOUT_PERSON_KEY_SECRET is not set: it keys every person's hash, and must stay the same for as "
                                   "long as the coalition's data lives; `turnout up` generates one for the embedded broker")


def require_master_key(s: Settings) -> None:
    """Processes that read or write people's sealed fields need the coalition's master key."""
    if s.master_key is None:
        raise click.ClickException("TURNOUT_MASTER_KEY is not set: it unlocks the data keys that seal people's names, phones and emails "
                                   "(README: Erasure on request); `turnout up` generates one for the embedded broker")


def require_clock(s: Settings) -> None:
    """A file clock must tell the time before a worker starts: else every agent that asks crashes."""
    from .startup import clock_problem

    if problem := clock_problem(s):
        raise click.ClickException(problem)


def require_coalition(s: Settings) -> None:
    """A server command refuses a coalition file that is there but does not read, and says that
    one is not there yet (it runs: the file is read again when it appears)."""
    try:
        coalition_file.load(s.coalition, missing_ok=True)
    except coalition_file.CoalitionError as exc:
        raise click.ClickException(str(exc)) from None
    if not s.coalition.exists():
        console.print(f"[yellow]coalition file {s.coalition.absolute()} {coalition_file.NOT_YET}[/]")


def require_port(host: str, port: int) -> None:
    """A server command says in one line that it cannot listen, before it starts (uvicorn would
    log it as JSON and exit 3)."""
    import errno

    from .broker import bind_problem

    if (exc := bind_problem(port, host)) is not None:
        busy = " (another turnout web app or sandbox? --port picks another)" if exc.errno == errno.EADDRINUSE else ""
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}{busy}")


def web_url(url: str | None, s: Settings) -> str:
    """The web app's base URL: ``--url``, else TURNOUT_URL, else the running stack's."""
    url = url or s.url
    if not url:
        raise nothing_running(s, "pass --url (or set TURNOUT_URL)")
    # --url is the base URL everywhere; a full /v1/events address (as `sign` once wanted) still works.
    return url.rstrip("/").removesuffix("/v1/events")


URL_HELP = "The web app's base URL. Default: TURNOUT_URL, else the `turnout up` running from here."


def warn_if_unposted(s: Settings, action_id: str, url: str | None = None) -> None:
    """One line on standard error when the running web app has not seen ``action_id`` posted
    (its RSVPs and check-ins are kept but not counted until a partner posts it), or cannot say."""
    import httpx
    from urllib.parse import quote

    try:
        r = httpx.get(f"{web_url(url, s)}/v1/actions/{quote(action_id, safe='')}/tallies", headers=organizer_headers(s), timeout=10)
    except (httpx.HTTPError, click.ClickException) as exc:
        reason = exc.message if isinstance(exc, click.ClickException) else f"{type(exc).__name__}: {exc}"
        click.echo(f"note: could not check that action {action_id!r} has been posted ({reason})", err=True)
        return
    if r.status_code == 404 or (r.status_code == 200 and r.json().get("title") is None):
        click.echo(f"warning: no partner has posted action {action_id!r}: its RSVPs and check-ins are kept but not counted "
                   "until it is (check the id, or post the action first)", err=True)
    elif r.status_code != 200:
        click.echo(f"note: could not check that action {action_id!r} has been posted ({refusal(r)})", err=True)


def stopped(exc: Exception) -> click.ClickException:
    """A failure a command expects, in one line: the broker's own (aiokafka's errors are
    RuntimeErrors) as ``one_line`` says it, anything else in its own words."""
    message, known = one_line(exc)
    return click.ClickException(message if known else str(exc))


def quiet_kafka_clients() -> None:
    """The clients log a failed connection themselves; the command reports it once, in one line."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def env_name(loc: tuple) -> str:
    """The environment variable behind a setting."""
    field = str(loc[0]) if loc else ""
    return "KAFKA_BOOTSTRAP_SERVERS" if field == "kafka_bootstrap_servers" else f"TURNOUT_{field.upper()}"


def organizer_headers(s: Settings) -> dict[str, str]:
    """What a CLI command sends to the web app's organizer endpoints."""
    if s.organizer_token is None:
        raise click.ClickException("TURNOUT_ORGANIZER_TOKEN is not set (`turnout up` prints the one it made)")
    return {"Authorization": f"Bearer {s.organizer_token.get_secret_value()}"}


def action_id_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An action id as partners' events spell it, or a usage error saying the rule (before any
    row is read or any request made)."""
    from pydantic import TypeAdapter

    from contracts.events import Slug

    try:
        return None if value is None else TypeAdapter(Slug).validate_python(value)
    except ValidationError as exc:
        raise click.UsageError(explain(exc, lambda loc: param.opts[0]), ctx) from None


def url_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A web address, as the URL settings take them, or a usage error."""
    from .settings import web_address

    try:
        return web_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def email_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An email address, normalized as accounts keep them, or a usage error."""
    try:
        return None if value is None else normalize_email(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def json_option(ctx: click.Context, param: click.Parameter, value: str) -> object:
    """An option's JSON value, or a usage error saying where it stopped making sense."""
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON ({exc.msg} at character {exc.pos + 1})") from None


class Turnout(click.Group):
    """Whatever stops a command is one line on standard error and exit code 1; the traceback
    only with ``--debug``."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # the reader went away (`| head`): nothing to say, nothing failed
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush must not fail again
            raise click.exceptions.Exit(0) from None
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            message, known = one_line(exc)
            raise click.ClickException(message if known else f"{message} (a bug? `turnout --debug …` shows where)") from None


EPILOG = """\b
Examples:
  turnout up --demo                       the demo: broker, workers, web app, simulated partners
  turnout partners add union-local-1 --name "Union Local 1" --kind union
  turnout import union-local-1 sheet.csv --type signup --consent sms --dry-run
  turnout tallies                         next to a running `turnout up`, nothing to configure
\b
Commands find a `turnout up` running from this directory (or a parent) through its state
file, .turnout/stack.json; KAFKA_BOOTSTRAP_SERVERS, TURNOUT_URL and --url override it.
Exit codes: 0 done, 1 failed (or bad rows), 2 usage error or an erasure still queued."""


@click.group(cls=Turnout, help="turnout: signed partner webhooks → Kafka → Faust agents → exact live tallies.", epilog=EPILOG)
@click.option("--debug", is_flag=True, help="Show the traceback when something fails.")
@click.version_option(package_name="turnout", prog_name="turnout")
def main(debug: bool) -> None:
    pass


@main.command(help="Run the whole pipeline: broker (embedded unless KAFKA_BOOTSTRAP_SERVERS), worker(s), web.",
              epilog="It writes .turnout/stack.json (removed when it stops) so that other turnout commands run from this "
                     "directory find it, and logs to .turnout/logs/. Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 could not "
                     "start or a process it needs stopped (the reason is printed).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Web app port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Number of Faust worker processes.")
@click.option("--demo", is_flag=True, help="A demo coalition (its own file, .turnout/demo-coalition.toml) and simulated activity through the webhook.")
@click.option("--organizer", default=None, metavar="EMAIL", callback=email_option,
              help="The organizer account whose one-time dashboard sign-in link is printed (default: the first the broker knows, else organizer@example.org).")
def up(port: int, workers: int, demo: bool, organizer: str | None) -> None:
    from .stack import StackError, run_stack

    try:
        run_stack(settings(stack=False), port=port, workers=workers, demo=demo, organizer=organizer)
    except StackError as exc:
        raise click.ClickException(str(exc)) from None


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
    require_broker(s)
    require_master_key(s)
    require_person_key(s)
    require_clock(s)
    require_coalition(s)
    if s.provider_settings_missing():
        raise click.ClickException(f"provider credentials are only partly set: missing {', '.join(s.provider_settings_missing())}; "
                                   "set all of them to send for real, or none")
    from agents.outreach.agents import outreach_from
    from connectors.providers.outbox import outbox_from

    from . import gc_tuning

    require_reachable(s)
    gc_tuning.tune()
    pipeline = build(s)
    if not s.providers_configured:
        console.print("[yellow]no provider credentials: asks are planned and recorded cancelled, never sent (see README)[/]")
    for warning in s.sending_warnings():
        console.print(f"[yellow]{escape(warning)}[/]")
    register(pipeline, s, outreach_from(s, outbox_from(s) if s.providers_configured else None))
    if s.metrics_port:
        from prometheus_client import start_http_server

        from .app import watch_lag
        from .metrics import worker_scrape

        watch_lag(pipeline)
        try:
            start_http_server(s.metrics_port, registry=worker_scrape())
        except OSError as exc:
            raise click.ClickException(f"TURNOUT_METRICS_PORT {s.metrics_port}: cannot serve /metrics there ({exc.strerror or exc}); "
                                       "give each worker a free port of its own") from None
    worker = faust.Worker(pipeline.app, loglevel="info", logging_config=logging_config(s.log_format), quiet=True)
    worker.execute_from_commandline()


@main.command(help="Run the web app (ingress, tally API) with uvicorn.")
@click.option("--host", default=None, help="Bind address (default TURNOUT_WEB_HOST).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port (default TURNOUT_WEB_PORT).")
def web(host: str | None, port: int | None) -> None:
    import uvicorn

    from connectors.web import server
    from connectors.web.app import create_app

    from . import gc_tuning

    s = settings()
    require_broker(s)
    require_master_key(s)
    require_person_key(s)
    if s.organizer_token is None:
        raise click.ClickException("TURNOUT_ORGANIZER_TOKEN is not set")
    require_coalition(s)
    require_port(host or s.web_host, port or s.web_port)
    require_reachable(s)
    gc_tuning.tune()
    try:
        app = create_app(s)
    except (coalition_file.CoalitionError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    # Open dashboard streams must not hold a restart up: they reconnect by themselves.
    log_config = logging_config(s.log_format, "WARNING")
    log_config["loggers"]["connectors.web"] = {"level": "INFO"}  # refusals and dropped clients: one line each
    log_config["loggers"]["uvicorn.error"] = {"level": "INFO"}  # started, where it listens, stopped
    config = server.config(app, s, host or s.web_host, port or s.web_port, log_config=log_config, timeout_graceful_shutdown=2)
    uvicorn.Server(config).run()


@main.command(help="Run the sandbox providers (Twilio and SendGrid APIs) for the configured web app.")
@click.option("--port", default=8099, show_default=True, type=click.IntRange(1, 65535))
@click.option("--faults", default="{}", callback=json_option,
              help='JSON, e.g. \'{"share_429": 0.3}\'')
@click.option("--sms-mps", type=click.FloatRange(min=0), default=None,
              help="Message segments per second each sender's queue lets out, as Twilio's MPS (0: no queue). Default: TURNOUT_SANDBOX_SMS_MPS, else 0.")
def sandbox(port: int, faults: dict, sms_mps: float | None) -> None:
    import uvicorn

    from connectors.sandbox.faults import Faults
    from connectors.sandbox.server import SandboxConfig, create_sandbox

    from . import gc_tuning

    require_port("127.0.0.1", port)
    gc_tuning.tune()
    s = settings()
    web = s.public_url.rstrip("/")
    config = SandboxConfig(
        **({"account_sid": s.twilio_account_sid} if s.twilio_account_sid else {}),
        **({"auth_token": s.twilio_auth_token} if s.twilio_auth_token else {}),
        **({"sendgrid_api_key": s.sendgrid_api_key} if s.sendgrid_api_key else {}),
        sendgrid_private_key_pem=s.sandbox_signing_key,
        inbound_url=f"{web}/v1/providers/twilio/inbound",
        event_webhook_url=f"{web}/v1/providers/sendgrid/events",
        faults=Faults.model_validate(faults),
        sms_mps=s.sandbox_sms_mps if sms_mps is None else sms_mps,
    )
    uvicorn.run(create_sandbox(config), host="127.0.0.1", port=port, log_config=logging_config(s.log_format, "WARNING"))


@main.group(help="The data keys that seal people's names, phones, emails and postal codes (README: Erasure on request).")
def keys() -> None:
    pass


@keys.command("rewrap", help="Wrap every data key with TURNOUT_MASTER_KEY, after a rotation (the old key still in TURNOUT_PREVIOUS_MASTER_KEYS).")
def keys_rewrap() -> None:
    import asyncio

    from connectors.web.publisher import KafkaPublisher

    from .data_keys import KafkaDataKeys
    from .topology import events_topic

    s = settings()
    require_broker(s)
    require_master_key(s)

    async def run() -> tuple[int, int]:
        publisher = KafkaPublisher(s.bootstrap, events_topic(s), s.ack_timeout, s.idempotent_producer)
        data_keys = KafkaDataKeys(s, publisher.publish)
        try:  # a producer that failed to start is closed too
            await publisher.start()
            return await data_keys.rewrap(), data_keys.unreadable
        finally:
            await data_keys.stop()
            await publisher.stop()

    quiet_kafka_clients()
    try:
        done, unreadable = asyncio.run(run())
    except RuntimeError as exc:
        raise stopped(exc) from None
    if unreadable:  # said alone: "nothing to do" before it contradicted it (an outside probe)
        raise click.ClickException(f"{plural(unreadable, 'data key')} wrapped by a master key you did not give (TURNOUT_PREVIOUS_MASTER_KEYS): "
                                   f"not rewrapped" + (f"; the other {plural(done, 'data key')} rewrapped" if done else ""))
    click.echo(f"wrapped {plural(done, 'data key')} with the current master key" if done else
               "every data key was already wrapped with the current master key: nothing to do")


@main.group(help="Where personal data lives (for a data-sharing agreement).")
def privacy() -> None:
    pass


@privacy.command("report", help="Every place personal data lives: what, how long, and how erasure reaches it.")
@click.option("--markdown", "as_markdown", is_flag=True, help="A Markdown table (docs/privacy.md has one).")
def privacy_report(as_markdown: bool) -> None:
    from .privacy import inventory, markdown

    s = settings()
    if as_markdown:
        click.echo(markdown(s))
        return
    # One block per place, wrapped to the terminal (100 columns in a pipe): five columns of
    # sentences make no table a terminal can show.
    width = max(shutil.get_terminal_size((100, 24)).columns, 40)
    click.echo("Personal data in this deployment\n")
    for p in inventory(s):
        click.echo(f"{p.where} ({p.kind})")
        for label, text in (("holds", p.holds), ("kept", p.retention), ("erasure", p.erasure)):
            click.echo(textwrap.fill(text, width, initial_indent=f"  {label + ':':9}", subsequent_indent=" " * 11, break_on_hyphens=False))
        click.echo()


@main.group(help="Kafka topics.")
def topics() -> None:
    pass


@topics.command("ensure", help="Create every topic turnout declares (partitions, compaction) if missing.")
def topics_ensure() -> None:
    from .admin import ensure_topics
    from .topology import topic_specs

    s = settings()
    require_broker(s)
    created = ensure_topics(s, timeout=BROKER_WAIT)
    for spec in topic_specs(s):
        mark = "created" if spec.name in created else "exists"
        click.echo(f"{mark:8} {spec.name} partitions={spec.partitions}{' compacted' if spec.compacted else ''}")


@main.group(help="Coalition partners (the coalition file, TURNOUT_COALITION).")
def partners() -> None:
    pass


@partners.command("add", help="Add a partner with a fresh webhook secret, and print the secret.")
@click.argument("partner_id")
@click.option("--name", required=True)
@click.option("--kind", required=True, type=click.Choice(get_args(PartnerKind)), help="What kind of organization it is.")
@click.option("--role", type=click.Choice(["member", "backbone"]), default="member", show_default=True,
              help="backbone: the coalition's hub (changes any action, reaches everyone whose consent covers the coalition).")
def partners_add(partner_id: str, name: str, kind: str, role: str) -> None:
    path = settings().coalition
    with coalition_errors():
        p = coalition_file.add_partner(path, partner_id, name, kind, role)
    console.print(f"added [bold]{p.id}[/] to {escape(str(path))}; its webhook secret (shown once here, kept in the file):")
    click.echo(p.secret.get_secret_value())


@partners.command("rotate-secret", help="Give a partner a fresh webhook secret and print it; the old one is refused from now on.")
@click.argument("partner_id")
def partners_rotate_secret(partner_id: str) -> None:
    path = settings().coalition
    with coalition_errors():
        p = coalition_file.rotate_secret(path, partner_id)
    console.print(f"[bold]{p.id}[/]: new webhook secret (shown once here, kept in {escape(str(path))}). Posts signed with the "
                  "old one are refused from now on, and its staff's dashboard sessions have ended: give the partner this one.")
    click.echo(p.secret.get_secret_value())


@partners.command("disable", help="Refuse a partner's posts and end its staff's dashboard sessions (until enabled again).")
@click.argument("partner_id")
def partners_disable(partner_id: str) -> None:
    set_enabled(partner_id, False, f"disabled: its posts are refused (401) and its staff cannot sign in; "
                                   f"`turnout partners enable {partner_id}` undoes it.")


@partners.command("enable", help="Accept a disabled partner's posts again.")
@click.argument("partner_id")
def partners_enable(partner_id: str) -> None:
    set_enabled(partner_id, True, "enabled: its posts are accepted again.")


def set_enabled(partner_id: str, enabled: bool, said: str) -> None:
    with coalition_errors():
        coalition_file.set_enabled(settings().coalition, partner_id, enabled)
    console.print(f"[bold]{partner_id}[/] {said}")


@partners.command("list", help="List partners (no secrets).")
def partners_list() -> None:
    path = settings().coalition
    with coalition_errors():
        c = coalition_file.load(path)
    # Names and paths are shown as written: rich would read "[east]" as markup.
    table = Table("id", "name", "kind", "role", "enabled", title=escape(str(path)))
    for p in c.partners.values():
        table.add_row(p.id, escape(p.name), p.kind, p.role, "yes" if p.enabled else "no")
    show(table)


@main.group(help="Dashboard accounts: the people who sign in to the dashboard (kept on the broker; see README).")
def accounts() -> None:
    pass


def accounts_log(s: Settings):
    """Where `turnout accounts` reads and writes accounts: the accounts topic."""
    from connectors.accounts.store import KafkaAccountLog

    require_broker(s)
    return KafkaAccountLog(s)


def with_accounts(s: Settings, action):
    """Run ``action(store)`` on the accounts as the broker holds them now, then disconnect."""
    from connectors.accounts.rules import AccountRefused
    from connectors.accounts.store import AccountStore, AccountsUnavailable

    async def run():
        store = AccountStore(accounts_log(s))
        await store.start(follow=False)
        try:
            return await action(store)
        finally:
            await store.stop()

    quiet_kafka_clients()
    try:
        return asyncio.run(run())
    except (AccountRefused, AccountsUnavailable, RuntimeError) as exc:
        raise stopped(exc) from None


@accounts.command("invite", help="Create a dashboard account for EMAIL (or a fresh link for an existing one) and print its one-time sign-in link.")
@click.argument("email", callback=email_option)
@click.option("--partner", "partner_id", default=None, help="The partner whose figures the account sees.")
@click.option("--role", type=click.Choice(["viewer", "admin"]), default="viewer", show_default=True,
              help="admin: may also invite and remove the partner's accounts from the dashboard.")
@click.option("--organizer", is_flag=True, help="An organizer account: sees every partner, manages every account.")
@click.option("--url", default=None, callback=url_option, help="The dashboard's address the link starts with (default TURNOUT_PUBLIC_URL).")
def accounts_invite(email: str, partner_id: str | None, role: str, organizer: bool, url: str | None) -> None:
    from datetime import datetime, timezone

    from connectors.accounts.rules import describe, invite_link

    if organizer == (partner_id is not None):
        raise click.UsageError("give exactly one of --partner PARTNER or --organizer")
    if organizer and click.get_current_context().get_parameter_source("role") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--role is for a partner's accounts: an organizer account has no other role")
    s = settings()
    if partner_id is not None:
        with coalition_errors():
            if partner_id not in (partners := coalition_file.load(s.coalition).partners):
                raise click.ClickException(f"no partner {partner_id!r} in {s.coalition} (partners: {', '.join(sorted(partners)) or 'none yet'})")
    account, token = with_accounts(s, lambda store: store.invite(email, "organizer" if organizer else role, partner_id, "turnout accounts invite",
                                                                  datetime.now(timezone.utc), s.invite_hours))
    console.print(f"{escape(account.email)} is {escape(describe(account))}. Their one-time sign-in link (works once, until "
                  f"{account.invite_expires_at:%Y-%m-%d %H:%M} UTC; pass it on yourself, nothing is emailed):", highlight=False)
    click.echo(invite_link(url or s.public_url, token))


@accounts.command("list", help="List dashboard accounts (no passwords, no links).")
@click.option("--partner", "partner_id", default=None, help="Only this partner's accounts.")
def accounts_list(partner_id: str | None) -> None:
    async def listing(store):
        return store.book.accounts(partner_id)

    s = settings()
    found = with_accounts(s, listing)
    if partner_id is not None and not found:
        with coalition_errors():
            if partner_id not in coalition_file.load(s.coalition, missing_ok=True).partners:
                raise click.ClickException(f"no partner {partner_id!r} in {s.coalition}, and no account of one")
    table = Table("email", "partner", "role", "status", title="dashboard accounts")
    for a in found:
        status = "active" if a.password_hash else f"invited (link until {a.invite_expires_at:%Y-%m-%d %H:%M} UTC)"
        table.add_row(a.email, a.partner or "(organizer)", a.role, status)
    show(table)


@accounts.command("remove", help="Remove EMAIL's dashboard account: every session of it ends at once.")
@click.argument("email")
def accounts_remove(email: str) -> None:
    from connectors.accounts.rules import describe

    account = with_accounts(settings(), lambda store: store.remove(email))
    click.echo(f"removed {account.email} ({describe(account)}); their dashboard sessions have ended")


@main.group("action-network", help="A partner's Action Network webhook (see README).")
def action_network() -> None:
    pass


@action_network.command("token", help="Give PARTNER a new secret webhook URL (the old one stops working) and print it.")
@click.argument("partner_id")
def action_network_token(partner_id: str) -> None:
    from urllib.parse import urlsplit

    s = settings()
    with coalition_errors():
        token = coalition_file.rotate_action_network_token(s.coalition, partner_id)
    console.print(f"new Action Network webhook URL for [bold]{partner_id}[/] (shown once; only its hash is kept):")
    click.echo(f"{s.public_url.rstrip('/')}/v1/partners/{partner_id}/action-network/{token}")
    if not s.public_url.startswith("https://") or urlsplit(s.public_url).hostname in ("localhost", "127.0.0.1", "::1"):
        click.echo(f"warning: TURNOUT_PUBLIC_URL is {s.public_url}: Action Network cannot reach it (it posts to a public https:// "
                   "address). Set TURNOUT_PUBLIC_URL to the web app's public address and run this again.", err=True)


@action_network.command("map", help="Count attendances of Action Network EVENT (id or API URL) as RSVPs for ACTION_ID.")
@click.argument("partner_id")
@click.argument("event")
@click.argument("action_id")
@click.option("--url", default=None, callback=url_option, help=URL_HELP + " Asked whether ACTION_ID has been posted.")
def action_network_map(partner_id: str, event: str, action_id: str, url: str | None) -> None:
    with coalition_errors():
        p = coalition_file.map_action_network_event(settings().coalition, partner_id, event, action_id)
    click.echo("\n".join(arrows(p.action_network.actions)))
    warn_if_unposted(settings(), action_id, url)


@action_network.command("unmap", help="Stop counting attendances of Action Network EVENT.")
@click.argument("partner_id")
@click.argument("event")
def action_network_unmap(partner_id: str, event: str) -> None:
    with coalition_errors():
        p = coalition_file.map_action_network_event(settings().coalition, partner_id, event, None)
    click.echo(unmapped(event, p.action_network.actions))


def unmapped(event: str, mapped: dict[str, str]) -> str:
    """What `unmap` says: the event, and what is mapped now."""
    return f"{event} unmapped; mapped now: {', '.join(arrows(mapped)) or 'none'}"


def arrows(mapped: dict[str, str]) -> list[str]:
    """A partner's event mappings as `map` and `unmap` show them: "event -> action"."""
    return [f"{event} -> {action}" for event, action in mapped.items()]


@main.group(help="Partners' Mobilize organizations, polled for attendances (see README).")
def mobilize() -> None:
    pass


@mobilize.command("connect", help="Poll Mobilize organization ORG_ID for PARTNER with its API key (prompted, not echoed).")
@click.argument("partner_id")
@click.argument("org_id", type=int)
@click.option("--api-key", default=None, help="The partner's Mobilize API key (default: prompted for, not echoed).")
def mobilize_connect(partner_id: str, org_id: int, api_key: str | None) -> None:
    path = settings().coalition
    with coalition_errors():  # nobody types a secret for a partner that is not there
        if partner_id not in coalition_file.load(path).partners:
            raise coalition_file.CoalitionError(f"no partner {partner_id!r} in {path}")
    if api_key is None:
        api_key = click.prompt("Mobilize API key", hide_input=True)
    with coalition_errors():
        coalition_file.connect_mobilize(path, partner_id, org_id, api_key.strip())
    click.echo(f"{partner_id}: polling Mobilize organization {org_id}")


@mobilize.command("map", help="Count attendances of Mobilize EVENT_ID (for PARTNER) as RSVPs and check-ins for ACTION_ID.")
@click.argument("partner_id")
@click.argument("event_id")
@click.argument("action_id")
@click.option("--url", default=None, callback=url_option, help=URL_HELP + " Asked whether ACTION_ID has been posted.")
def mobilize_map(partner_id: str, event_id: str, action_id: str, url: str | None) -> None:
    with coalition_errors():
        p = coalition_file.map_mobilize_event(settings().coalition, partner_id, event_id, action_id)
    click.echo("\n".join(arrows(p.mobilize.events)))
    warn_if_unposted(settings(), action_id, url)


@mobilize.command("unmap", help="Stop counting attendances of Mobilize EVENT_ID (for PARTNER).")
@click.argument("partner_id")
@click.argument("event_id")
def mobilize_unmap(partner_id: str, event_id: str) -> None:
    with coalition_errors():
        p = coalition_file.map_mobilize_event(settings().coalition, partner_id, event_id, None)
    click.echo(unmapped(event_id, p.mobilize.events))


@mobilize.command("disconnect", help="Stop polling PARTNER's Mobilize organization (its API key and event mappings are removed).")
@click.argument("partner_id")
def mobilize_disconnect(partner_id: str) -> None:
    with coalition_errors():
        org = coalition_file.disconnect_mobilize(settings().coalition, partner_id)
    click.echo(f"{partner_id}: no longer polling Mobilize organization {org}")


@mobilize.command("poll", help="Poll every connected partner's attendances, every TURNOUT_MOBILIZE_INTERVAL seconds.")
@click.option("--once", is_flag=True, help="One pass over every partner, then exit (non-zero if a pass failed).")
def mobilize_poll(once: bool) -> None:
    import asyncio

    import httpx

    from connectors.mobilize_poller import MobilizeRefused, poll
    from connectors.providers.errors import RetryLater
    from connectors.web.publisher import KafkaPublisher

    from .data_keys import KafkaDataKeys
    from .topology import events_topic

    s = settings()
    require_broker(s)
    require_master_key(s)
    logging.config.dictConfig(logging_config(s.log_format))
    for chatty in ("httpx", "aiokafka"):  # a line per request, a producer's start and stop: not the poller's news
        logging.getLogger(chatty).setLevel(logging.WARNING)
    with coalition_errors():
        coalition = coalition_file.load(s.coalition)
    if not any(p.mobilize is not None for p in coalition.partners.values()):  # as `turnout up` decides to start it
        raise click.ClickException(f"no partner in {s.coalition} is connected to Mobilize, so there is nothing to poll "
                                   "(turnout mobilize connect PARTNER ORG_ID)")

    async def run() -> None:
        publisher = KafkaPublisher(s.bootstrap, events_topic(s), s.ack_timeout, s.idempotent_producer)
        data_keys = KafkaDataKeys(s, publisher.publish)
        try:  # a producer that failed to start is closed too
            await publisher.start()
            async with httpx.AsyncClient(timeout=30) as http:
                await poll(s, lambda: coalition_file.load(s.coalition), publisher, http, once, data_keys)  # re-read at every pass
        finally:
            await data_keys.stop()
            await publisher.stop()

    try:
        asyncio.run(run())
    except (MobilizeRefused, RetryLater) as exc:
        raise click.ClickException(f"Mobilize pass failed (cursor kept; run again): {exc}") from None
    except KeyboardInterrupt:
        pass


def enabled_partner(s: Settings, partner_id: str):
    """The enabled partner ``partner_id`` of the coalition file, or one line saying what is wrong."""
    from . import running

    if not s.coalition.exists() and "coalition" not in s.model_fields_set and s.find_stack and running.find(Path.cwd()) is None:
        # Most likely run away from the `turnout up` whose coalition it means (an outside probe).
        raise click.ClickException(f"no coalition file at {s.coalition.absolute()}, and no `turnout up` is running from {Path.cwd()} or a "
                                   "parent directory to take one from: run this where `turnout up` runs, or create the file with "
                                   "`turnout partners add ID --name NAME --kind KIND`, or point TURNOUT_COALITION at yours")
    with coalition_errors():
        coalition = coalition_file.load(s.coalition)
    partner = coalition.partners.get(partner_id)
    if partner is None:
        known = ", ".join(sorted(coalition.partners)) or "none yet"
        raise click.ClickException(f"no partner {partner_id!r} in {s.coalition.absolute()} (partners: {known})")
    if not partner.enabled:
        raise click.ClickException(f"partner {partner_id!r} is disabled in {s.coalition.absolute()} (enabled = false)")
    return partner


@main.command("settings", help="Show the settings in effect (secrets hidden), or the README's configuration table.",
              epilog="`turnout settings --markdown --readme README.md` rewrites the README's table (make settings-doc).")
@click.option("--markdown", is_flag=True, help="Print every setting's variable, default and meaning as the README's Markdown table.")
@click.option("--readme", type=click.Path(dir_okay=False, path_type=Path), default=None, help="With --markdown: write the table into this README instead.")
def settings_command(markdown: bool, readme: Path | None) -> None:
    from pydantic import SecretStr

    from .settings_doc import env_name, markdown_table, write_readme

    if markdown:
        if readme:
            write_readme(readme)
        else:
            click.echo(markdown_table(), nl=False)
        return
    s = settings()
    explicit = Settings().model_fields_set
    table = Table(Column("variable", no_wrap=True), Column("value", overflow="fold"), "from", box=None)  # names whole, to paste
    for name in Settings.model_fields:
        value = getattr(s, name)
        shown = "(hidden)" if isinstance(value, SecretStr) else "unset" if value is None else str(value)
        source = "environment" if name in explicit else "running stack" if name in s.model_fields_set else "default"
        table.add_row(env_name(name), escape(shown), source)
    show(table)
    for warning in unknown_settings(os.environ):
        click.echo(f"warning: {warning}", err=True)


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
@click.option("--url", default=None, callback=url_option, help="The web app's base URL (it posts to URL/v1/events). Default: TURNOUT_URL, else the running "
              "`turnout up`, else http://127.0.0.1:TURNOUT_WEB_PORT.")
def sign(partner_id: str, data: str | None, file_, url: str | None) -> None:
    from connectors.signing import headers

    if (data is None) == (file_ is None):
        raise click.UsageError("give exactly one of --data or --file")
    body = data.encode() if data is not None else file_.read().removeprefix(codecs.BOM_UTF8)  # Notepad's: no part of the JSON
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{file_.name} is not UTF-8 (byte {exc.start + 1}); the web app reads UTF-8 JSON only",
                                 param_hint="--file") from None
    where = "--data" if data is not None else "--file"
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", param_hint=where) from None
    if not isinstance(parsed, (dict, list)):
        raise click.BadParameter("not an event (a JSON object) or a list of events", param_hint=where)
    s = settings()
    partner = enabled_partner(s, partner_id)
    base = web_url(url, s)  # printed, never called: still, no address made up when no stack runs
    h = headers(partner.id, partner.secret.get_secret_value(), body, time.time())
    parts = ["curl", "-sS", "-X", "POST", f"{base}/v1/events"] + [x for k, v in h.items() for x in ("-H", f"{k}: {v}")]
    click.echo(shlex.join(parts + ["--data-binary", text]))


@main.command("import", help="Import a CSV sign-in sheet as PARTNER through the signed ingress (see README).",
              epilog="""\b
Examples:
  turnout import union-local-1 sheet.csv --type signup --consent sms --dry-run
  turnout import union-local-1 rsvps.csv --type rsvp --action rally-1201 --tz America/Los_Angeles
  turnout import union-local-1 do-not-text.csv --type opt_out --stop sms
\b
The file may be UTF-8 (with or without BOM), UTF-16 with BOM, Windows-1252 or Latin-1,
separated by commas, semicolons or tabs. Exit codes: 0 every row imported, 1 a bad row or a
failure (the bad rows are listed with their line), 2 usage error.""")
@click.argument("partner_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--type", "kind", type=click.Choice(["signup", "rsvp", "checkin", "opt_out"]), required=True,
              help="What each row is: a sign-up, an RSVP, a check-in, or an opt-out (a do-not-contact list).")
@click.option("--action", "action_id", default=None, callback=action_id_option, help="The turnout action (required for rsvp and checkin).")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD", help="Read FIELD from COLUMN (repeatable).")
@click.option("--consent", multiple=True, type=click.Choice(["sms", "email"]), help="The sheet collected consent for this channel (repeatable).")
@click.option("--stop", multiple=True, type=click.Choice(["sms", "email"]),
              help="With --type opt_out: the channel each row's person asked to stop (repeatable).")
@click.option("--tz", "tz", default=None, metavar="ZONE", help="Read dates without a UTC offset in this IANA zone (default: TURNOUT_TIME_ZONE).")
@click.option("--delimiter", type=click.Choice(["comma", "semicolon", "tab"]), default=None, help="Default: sniffed from the header row.")
@click.option("--dry-run", is_flag=True, help="Check every row, show which column became which field, report the bad rows; post nothing.")
@click.option("--url", default=None, callback=url_option, help=URL_HELP)
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 500), help="Events per request.")
def import_(partner_id: str, file: Path, kind: str, action_id: str | None, maps: tuple[str, ...], consent: tuple[str, ...],
            stop: tuple[str, ...], tz: str | None, delimiter: str | None, dry_run: bool, url: str | None, batch: int) -> None:
    # Usage errors (2), said before the file is read.
    if kind in ("rsvp", "checkin") and not action_id:
        raise click.UsageError(f"--action is required with --type {kind} (the turnout action its rows are for)")
    if (kind == "opt_out") != bool(stop):
        raise click.UsageError("--type opt_out needs --stop sms and/or --stop email (the channels to stop), and --stop is for --type opt_out only")
    if kind == "opt_out" and (consent or action_id):
        raise click.UsageError("an opt-out sheet takes no --consent or --action: it stops the --stop channels for each row's person")
    s = settings()
    partner = enabled_partner(s, partner_id)
    pairs = [m.split("=", 1) for m in maps if "=" in m]
    if len(pairs) != len(maps):
        raise click.UsageError("--map takes COLUMN=FIELD")
    columns = [column for column, _ in pairs]
    if twice := next((c for c in columns if columns.count(c) > 1), None):
        raise click.UsageError(f"--map names column {twice!r} more than once: a column is read as one field")
    extra = dict(pairs)
    rows, problems = read_sheet(s, file, kind, partner, action_id, extra, consent, tz, delimiter, stop)
    for problem in problems:
        console.print(f"[red]line {problem.line}[/]: {escape(problem.reason)}", highlight=False, soft_wrap=True)
    if action_id and kind != "signup":
        warn_if_unposted(s, action_id, url)
    if dry_run:
        click.echo(f"dry run: {plural(len(rows), 'row')} would be imported, {plural(len(problems), 'bad row')}")
        sys.exit(1 if problems else 0)
    accepted = post_rows(web_url(url, s), partner, file, rows, problems, batch, s.max_body_bytes)
    click.echo(f"imported {plural(accepted, 'row')} from {file.name} as {partner.id}; "
               + (f"{plural(len(problems), 'bad row')} not imported" if problems else "no bad rows"))
    sys.exit(1 if problems else 0)


def read_sheet(s: Settings, file: Path, kind: str, partner, action_id: str | None, extra: dict[str, str],
               consent: tuple[str, ...], tz: str | None, delimiter: str | None, stop: tuple[str, ...] = ()):
    """The sheet, its events and its bad rows; says how it was read and which column became which field."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from rich.progress import Progress

    from connectors import csv_files, csv_import
    from contracts.zones import known_zone

    name = tz or s.time_zone
    if name and not known_zone(name):
        raise click.BadParameter(f"{name[:64]!r} is not an IANA time zone (e.g. America/Los_Angeles)", param_hint="--tz")
    zone = ZoneInfo(name) if name else None
    # Rows without a date happened when the sheet was last saved: a re-run gives identical events.
    saved = datetime.fromtimestamp(file.stat().st_mtime, timezone.utc).replace(microsecond=0)
    try:
        sheet = csv_files.open_sheet(file.read_bytes(), {"comma": ",", "semicolon": ";", "tab": "\t"}.get(delimiter or ""))
        # Read first: it says what is wrong with the file itself (an empty one, say) before the columns.
        # Every row passes the ingress's checks: a sheet of 100,000 rows takes a minute, so it shows how far it got.
        with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
            task = progress.add_task(f"checking {escape(file.name)}", total=len(sheet.text))

            def lines() -> Iterator[str]:
                for line in io.StringIO(sheet.text, newline=""):
                    progress.advance(task, len(line))
                    yield line

            rows, problems = csv_import.read(lines(), kind, partner=partner.id, secret=partner.import_ids_key(),
                                             action=action_id, default_at=saved, region=s.default_region, extra=extra,
                                             consent=frozenset(consent), delimiter=sheet.delimiter, zone=zone, stop=frozenset(stop))
        header = next((r for r in csv_import.csv.reader(io.StringIO(sheet.text, newline=""), delimiter=sheet.delimiter) if r), [])
        mapping = csv_import.read_columns(csv_import.column_map([h for h in header if h], extra), kind)
    except (csv_import.CsvError, csv_import.csv.Error, csv_files.NotASheet) as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    unused = [h for h in header if h and h not in mapping.values()]
    console.print(f"read {file.name} as {sheet.describe()}; columns: "
                  + ", ".join(f"{column!r} → {field}" for field, column in mapping.items())
                  + (f"; not used: {', '.join(repr(h) for h in unused)}" if unused else ""), markup=False, highlight=False, soft_wrap=True)
    return rows, problems


def post_rows(url: str, partner, file: Path, rows: list, problems: list, batch: int, limit: int) -> int:
    """Post the rows in batches through the signed ingress, each a request body of at most
    ``limit`` bytes; the rows it refuses, or none could carry, join ``problems``."""
    import httpx
    from rich.progress import Progress

    from connectors import csv_import
    from connectors.ingress_client import IngressClient, IngressRefused, encoded, requests

    client = IngressClient(url, partner.id, partner.secret.get_secret_value())
    accepted = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"posting {escape(file.name)}", total=len(rows))
        for run in requests([r.event for r in rows], batch, limit):
            chunk = rows[run.start : run.stop]
            if len(chunk) == 1 and (size := len(encoded([chunk[0].event]))) > limit:
                reason = f"too large to post: {size:,} bytes, and the web app takes {limit:,} in one request (TURNOUT_MAX_BODY_BYTES)"
                console.print(f"[red]line {chunk[0].line}[/]: {escape(reason)}", highlight=False, soft_wrap=True)
                problems.append(csv_import.Problem(chunk[0].line, reason))
                progress.advance(task, 1)
                continue
            try:
                answer = client.post([r.event for r in chunk])
            except (IngressRefused, httpx.HTTPError) as exc:
                reason = (refusal(exc.response, " (is the coalition file the one that web app reads?)") if isinstance(exc, IngressRefused)
                          else one_line(exc)[0])
                raise click.ClickException(f"stopped after {accepted} of {plural(len(rows), 'row')} (re-running is safe): {reason}") from None
            accepted += answer["accepted"] + answer["duplicates"]
            for rejection in answer["rejected"]:
                reasons = "; ".join(f"{e['field']}: {e['message']}" for e in rejection["errors"])
                console.print(f"[red]line {chunk[rejection['index']].line}[/]: {escape(reasons)}", highlight=False, soft_wrap=True)
                problems.append(csv_import.Problem(chunk[rejection["index"]].line, reasons))
            progress.advance(task, len(chunk))
    return accepted


@main.group(help="Supporters' records.")
def people() -> None:
    pass


@people.command("forget", help="Erase a person (by phone or email) on request, through a running web app; report what was removed.",
                epilog="Exit codes: 0 erased everywhere, 2 still queued (no worker has reported for some partitions), 1 failed.")
@click.option("--phone", default=None)
@click.option("--email", default=None)
@click.option("--url", default=None, callback=url_option, help=URL_HELP)
def people_forget(phone: str | None, email: str | None, url: str | None) -> None:
    import httpx

    if (phone is None) == (email is None):
        raise click.UsageError("give exactly one of --phone or --email")
    s = settings()
    try:  # as the web app will read it: a value that is no phone or email is a usage error, not a refusal
        normalize_phone(phone, s.default_region) if phone is not None else normalize_email(email or "")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--phone" if phone is not None else "--email") from None
    body = {"phone": phone} if phone is not None else {"email": email}
    r = httpx.post(web_url(url, s) + "/v1/people/forget", json=body, timeout=60, headers=organizer_headers(s))
    if r.status_code not in (200, 202):
        raise click.ClickException(refusal(r))
    x = r.json()
    if x["complete"] and not (x["people_removed"] or x["asks_cancelled"] or x.get("data_keys_erased")):
        # Not "deleted 0 data keys, so every copy … is unreadable" (an outside probe).
        click.echo(f"nobody is known by that {'phone' if phone is not None else 'email'}: nothing was removed")
        return
    members = f" (signed up by {', '.join(x['partners'])})" if x["partners"] else ""
    so_far = "" if x["complete"] else "so far: "  # the workers that have not reported yet remove the rest
    keys = x.get("data_keys_erased", 0)
    shredded = (f"deleted {plural(keys, 'data key')}, so every copy of their name, phone, email and postal code (events, asks, tables, "
                "backups) is unreadable" if keys else "deleted no data key (none is known for them)")
    click.echo(f"{so_far}removed {plural(x['people_removed'], 'person record')}{members}; cancelled {plural(x['asks_cancelled'], 'queued ask')}; "
               f"{shredded}; memberships, RSVPs, check-ins and ask outcomes are kept without contact details, so tallies keep their counts; "
               "any opt-out they gave stays (keyed hashes only), so they are not texted or emailed on that channel again")
    if not x["complete"]:
        click.echo(f"only {x['partitions_reported']} of {plural(x['partitions'], 'partition')} have reported so far (are workers running?); "
                   f"the request ({x['request_id']}) stays queued and will be carried out")
        sys.exit(2)


def refusal(r, unauthorized: str = " (is TURNOUT_ORGANIZER_TOKEN the stack's?)") -> str:
    """A refused request to the web app in one line: its ``detail``, not the raw JSON; for a 401
    or 403, ``unauthorized`` says which credential to check."""
    try:
        detail = r.json().get("detail", r.text)
    except ValueError:
        detail = r.text
    if isinstance(detail, list):  # FastAPI's own validation errors
        detail = "; ".join(f"{'.'.join(str(x) for x in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail)
    hint = unauthorized if r.status_code in (401, 403) else ""
    return f"the web app refused ({r.status_code}): {str(detail).strip()[:300]}{hint}"


@main.command(help="Show tallies from a running web app: per partner across actions, or one action's.")
@click.option("--action", "action_id", default=None, callback=action_id_option, help="One action's per-partner tallies.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")
@click.option("--url", default=None, callback=url_option, help=URL_HELP)
def tallies(action_id: str | None, as_json: bool, url: str | None) -> None:
    import httpx

    from connectors.tally_table import action_table, coalition_table

    s = settings()
    path = f"/v1/actions/{action_id}/tallies" if action_id else "/v1/tallies"
    r = httpx.get(web_url(url, s) + path, headers=organizer_headers(s), timeout=30)
    if r.status_code != 200:
        raise click.ClickException(refusal(r))
    if as_json:
        click.echo(json.dumps(r.json(), indent=2))
    else:
        show(action_table(r.json()) if action_id else coalition_table(r.json()), width=80)  # made to fit 80 columns (connectors.tally_table)


@main.command(help="Export the tallies as CSV, read from the broker: per action and partner, --unique people, or --aggregate for funders.",
              epilog="The aggregate CSV is data only (it loads as is in pandas and spreadsheets); its suppression note goes "
                     "to FILE.note.txt beside --out FILE, or to standard error, or first as a '# ' line with --note-line.")
@click.option("--aggregate", is_flag=True, help="One row per action, no partner names, counts from 1 to 10 suppressed.")
@click.option("--unique", is_flag=True, help="One row per action and one for the coalition: people each counted once, and the show rate.")
@click.option("--note-line", is_flag=True, help="With --aggregate: put the suppression note first, as a '# ' line.")
@click.option("--bom", is_flag=True, help="Start with a UTF-8 byte-order mark: Excel needs it to read accented names right.")
@click.option("--out", "out_name", type=click.Path(dir_okay=False), default=None, help="Write here (default: standard output).")
def export(aggregate: bool, unique: bool, note_line: bool, bom: bool, out_name: str | None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from connectors.web.exports import SUPPRESSION_NOTE, aggregate_csv, for_excel, tallies_csv, unique_csv
    from connectors.web.tally_reader import TallyReader
    from contracts.tallies import TallyBook

    if aggregate and unique:
        raise click.UsageError("give at most one of --aggregate or --unique")
    if note_line and not aggregate:
        raise click.UsageError("--note-line goes with --aggregate (only the aggregate has a note)")
    if out_name is not None and (not Path(out_name).name or out_name.endswith(os.sep)):
        # Said before the read, not after it (an empty name failed then; x/ wrote a file x).
        raise click.BadParameter(f"{out_name!r} names no file: give a file name, e.g. tallies.csv", param_hint="--out")
    out = Path(out_name) if out_name is not None else None
    if out is not None and not out.absolute().parent.is_dir():
        raise click.BadParameter(f"{out.absolute().parent} is not a directory", param_hint="--out")
    s = settings()
    require_broker(s)
    quiet_kafka_clients()
    with coalition_errors():  # names only: without the file, partners are shown by id
        names = coalition_file.load(s.coalition, missing_ok=True).names()
    book = TallyBook()
    columns = (TextColumn("reading the fact topics"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=out is None) as bar:
        task = bar.add_task("read", total=None)
        asyncio.run(TallyReader(s, book).read_to_end(lambda done, total: bar.update(task, completed=done, total=total)))
    chunks = aggregate_csv(book, note_line) if aggregate else unique_csv(book) if unique else tallies_csv(book, names)
    chunks = for_excel(chunks, bom)
    note = out.with_name(out.name + ".note.txt") if out and aggregate and not note_line else None
    if out is None:
        for chunk in chunks:
            click.echo(chunk, nl=False)
        if aggregate and not note_line:
            console.print(f"note: {SUPPRESSION_NOTE}", highlight=False)
        return
    tmp = out.with_name(out.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        f.writelines(chunks)
    tmp.replace(out)
    if note:
        note.write_text(SUPPRESSION_NOTE + "\n")
    console.print(f"wrote {out}" + (f" and its note, {note}" if note else ""), markup=False)


@main.command(help="Run only the embedded broker (Tansu, memory-only) and print its address.")
@click.option("--port", default=9092, show_default=True, type=click.IntRange(1, 65535))
def broker(port: int) -> None:
    from .broker import EmbeddedBroker

    require_port("127.0.0.1", port)  # else it printed the address of whatever held the port, and exited 0
    # Ctrl-C stops it even when started where SIGINT is ignored (a script's background job), as `turnout up`.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with EmbeddedBroker(port) as b:
            # Both, to export as printed: the other commands need to know it is this broker (no idempotent producer).
            click.echo(f"KAFKA_BOOTSTRAP_SERVERS={b.bootstrap} TURNOUT_BROKER_FLAVOR=tansu  (memory-only; Ctrl-C to stop)")
            code = b.proc.wait()
    except KeyboardInterrupt:  # the broker is stopped by then (the with block's exit)
        return
    if code:
        raise click.ClickException(f"the broker stopped (exit code {code})")


if __name__ == "__main__":
    sys.exit(main())
