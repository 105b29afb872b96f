"""`turnout up`: broker (embedded unless configured), topics, worker(s), web, and optionally the demo.

Every process started here is stopped on Ctrl-C or SIGTERM, and dies with this one if it is
killed (PR_SET_PDEATHSIG), so no orphans are left.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from pydantic import SecretStr
from rich.console import Console
from rich.markup import escape

from . import running
from .admin import ensure_topics
from .broker import EmbeddedBroker, free_port, wait_for_port
from .coalition import CoalitionError, CoalitionFile
from .processes import child_dies_with_parent, stop_process
from .settings import Settings, unknown_settings
from .startup import StackError, claim, fresh_logs, local_urls, metrics_ports, preflight, stack_notes
from .supervisor import Supervisor, tail

#: The demo's own coalition file, beside the state file: demo partners never enter yours.
DEMO_COALITION = Path(".turnout") / "demo-coalition.toml"

console = Console(soft_wrap=True)  # a line whole however narrow the terminal, or in a file: an address is never cut


def child_env(s: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TURNOUT_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    for name in Settings.model_fields:
        value = getattr(s, name)
        if value is None:
            continue
        value = value.get_secret_value() if isinstance(value, SecretStr) else value
        value = value.resolve() if isinstance(value, Path) else value
        env["KAFKA_BOOTSTRAP_SERVERS" if name == "kafka_bootstrap_servers" else f"TURNOUT_{name.upper()}"] = str(value)
    # Exactly these settings: nothing filled in from a `turnout up` running where the child starts.
    env["TURNOUT_FIND_STACK"] = "false"
    return env


def sandbox_settings(s: Settings, web_port: int, sandbox_port: int) -> dict[str, object]:
    """Credentials and URLs that point the real SDKs at the sandbox providers."""
    from connectors.sandbox.signing import EventSigner
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    url = f"http://127.0.0.1:{sandbox_port}"
    return dict(
        twilio_account_sid="AC" + secrets.token_hex(16), twilio_auth_token=SecretStr(secrets.token_hex(16)),
        twilio_from="+15005550006", twilio_base_url=url, sendgrid_api_key=SecretStr("SG." + secrets.token_urlsafe(24)),
        sendgrid_base_url=url, sendgrid_public_key=EventSigner(pem).public_key, sandbox_url=url,
        sandbox_signing_key=SecretStr(pem.decode()), public_url=f"http://127.0.0.1:{web_port}",
    )


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "streams.cli", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
        preexec_fn=child_dies_with_parent,
        start_new_session=True,  # Ctrl-C reaches only `turnout up`, which stops children in order
    )


def turnout_command() -> str:
    """How another shell runs this turnout, for the commands the banner prints: the installed
    command's path (``make run`` runs it from a virtualenv that shell may not have activated),
    else ``turnout`` (run as ``python -m streams.cli``)."""
    path = Path(sys.argv[0])
    return str(path.resolve()) if path.name == "turnout" else "turnout"


#: Set by Ctrl-C or SIGTERM (``_interrupt``), for the loops that wait while the stack runs.
STOP = threading.Event()


def _interrupt(signum: int, frame: object) -> None:
    """Ctrl-C or SIGTERM: remembered, then raised. Remembered because a KeyboardInterrupt raised
    where Python ignores exceptions (an object's ``__del__``, say asyncio's loop being collected)
    is lost: the stack kept running after a Ctrl-C (seen once in CI, under load). Ignored from
    then on: a second Ctrl-C must not cut the stop short, leaving children behind (the stop is
    bounded: ``stop_process``)."""
    STOP.set()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


#: The organizer account `turnout up` signs in when the broker holds none.
DEFAULT_ORGANIZER = "organizer@example.org"


def organizer_sign_in(s: Settings, base: str, email: str | None = None) -> tuple[str, str]:
    """A one-time sign-in link for an organizer account: ``email``'s, else the first organizer
    the broker knows, else ``DEFAULT_ORGANIZER``'s (created). A password set earlier keeps
    working until the new link is used."""
    from connectors.accounts.rules import AccountRefused, invite_link
    from connectors.accounts.store import AccountStore, AccountsUnavailable, KafkaAccountLog

    async def invite() -> tuple[str, str]:
        store = AccountStore(KafkaAccountLog(s))
        await store.start(follow=False)
        try:
            organizers = [a.email for a in store.book.accounts() if a.role == "organizer"]
            who = email or (organizers[0] if organizers else DEFAULT_ORGANIZER)
            account, token = await store.invite(who, "organizer", None, "turnout up", datetime.now(timezone.utc), s.invite_hours)
        finally:
            await store.stop()
        return account.email, invite_link(base, token)

    try:
        return asyncio.run(invite())
    except (AccountRefused, AccountsUnavailable) as exc:
        raise SystemExit(f"no dashboard sign-in link for the organizer: {exc}") from None


def run_stack(s: Settings, port: int, workers: int, demo: bool, organizer: str | None = None) -> None:
    """Run until Ctrl-C or SIGTERM (returns), or until a process the stack needs has stopped
    (raises ``StackError`` with the reason, after stopping everything else)."""
    here = Path.cwd()
    preflight(s, port, here, here / DEMO_COALITION if demo else s.coalition, workers)
    claimed = claim(here)  # noqa: F841 - held open until this function returns
    STOP.clear()
    signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C stops the stack even when it was started where SIGINT is ignored (a shell script's
    # background job, `make run &`): Python would leave it ignored, and nothing would stop it.
    signal.signal(signal.SIGINT, _interrupt)
    broker: EmbeddedBroker | None = None
    sup = Supervisor(spawn, console)
    logs = fresh_logs(here)
    try:
        updates: dict[str, object] = dict(local_urls(s, port))
        if not s.kafka_bootstrap_servers:
            broker = EmbeddedBroker().start()
            sup.add("the embedded broker", broker.proc)
            updates.update(kafka_bootstrap_servers=broker.bootstrap, broker_flavor="tansu")
            console.print(f"embedded broker (Tansu, memory-only: nothing survives a restart) on {broker.bootstrap}")
        if s.organizer_token is None:
            updates["organizer_token"] = SecretStr(secrets.token_urlsafe(18))
        if s.person_key_secret is None:
            if not broker:
                raise StackError("TURNOUT_PERSON_KEY_SECRET must be set with an external Kafka: person keys must stay stable")
            updates["person_key_secret"] = SecretStr(secrets.token_urlsafe(32))
        if s.master_key is None:
            if not broker:
                raise StackError("TURNOUT_MASTER_KEY must be set with an external Kafka: without it no sealed personal data can be read")
            updates["master_key"] = SecretStr(secrets.token_urlsafe(32))
        if demo:
            from connectors.demo import ensure_demo_partners

            updates["coalition"] = here / DEMO_COALITION  # the demo's partners never enter your own file
            ensure_demo_partners(here / DEMO_COALITION)
        s = s.model_copy(update=updates)
        sandbox_port = None
        if s.sandbox_providers:
            sandbox_port = free_port()
            # The sandbox signs its callbacks for TURNOUT_PUBLIC_URL when that is given, as Twilio would.
            s = s.model_copy(update={**sandbox_settings(s, port, sandbox_port), "public_url": s.public_url})
        ensure_topics(s)  # PartitionsDiffer (an external Kafka's topics): one line, as the CLI says every known failure
        env = child_env(s)
        if sandbox_port:
            sandbox = sup.add("the sandbox providers", spawn(["sandbox", "--port", str(sandbox_port)], env, logs / "sandbox.log"), logs / "sandbox.log")
            _wait_listening(sup, sandbox_port, sandbox)
            queue = f", texts leave at {s.sandbox_sms_mps:g}/s per sender" if s.sandbox_sms_mps else ""
            console.print(f"sandbox providers (Twilio + SendGrid APIs, inbox at {s.sandbox_url}/_sandbox/inbox{queue})")
        metrics = metrics_ports(s, workers)
        for i in range(workers):
            log = logs / f"worker-{i}.log"
            mine = {**env, "TURNOUT_METRICS_PORT": str(metrics[i])} if metrics else env  # one port a worker
            sup.add(f"worker {i}", spawn(["worker"], mine, log), log, restart=(["worker"], mine))
        if metrics:
            console.print(f"worker metrics on port{'s' if workers > 1 else ''} {', '.join(map(str, metrics))} (/metrics)")
        poll_mobilize = mobilize_poller(s, sup, env, logs)
        poll_mobilize()

        def alive() -> bool:  # while the stack runs, a partner connected to Mobilize since starts the poller
            poll_mobilize()
            return sup.alive() and not STOP.is_set()
        web = sup.add("the web app", spawn(["web", "--host", "127.0.0.1", "--port", str(port)], env, logs / "web.log"), logs / "web.log")
        _wait_listening(sup, port, web)
        base = f"http://127.0.0.1:{port}"
        console.print(f"web app   {base}  (API docs {base}/docs)   logs in {logs}/")
        email, link = organizer_sign_in(s, base, organizer)
        console.print(f"dashboard {base}/dashboard  sign in as {email} with this one-time link (you choose a password):", highlight=False)
        console.print(f"  {link}", soft_wrap=True, highlight=False)
        console.print(f"organizer token (API and CLI, not the dashboard)   {s.organizer_token.get_secret_value()}", highlight=False)
        if broker:
            console.print("dashboard accounts for partners' staff, from another shell in this directory:\n"
                          f"  {turnout_command()} accounts invite EMAIL --partner PARTNER --role viewer", soft_wrap=True, highlight=False)
        for line in stack_notes(s, here / running.STATE, demo):
            console.print(line, highlight=False, soft_wrap=True)
        for warning in unknown_settings(os.environ):
            console.print(f"[yellow]warning: {escape(warning)}[/]", highlight=False, soft_wrap=True)
        running.write(running.new_state(s, env, base, logs, demo), here)  # last: once it exists, the banner is whole
        if demo:
            from connectors.demo import run_demo

            try:
                run_demo(s, base, alive)
            except Exception:
                # A process died under the demo (its requests fail first): the stack's reason says
                # which, once the supervisor has seen it exit; anything else is the demo's own error.
                _wait_any(sup.procs(), 5.0)
                if sup.alive():
                    raise
        else:
            console.print("running; Ctrl-C to stop")
            while alive():
                _wait_any(sup.procs(), 1.0)
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        running.remove(here)
        if sup.reason:
            _explain(sup)
        console.print("stopping…")
        for p in reversed(sup.procs()):
            stop_process(p)
        if broker:
            broker.stop()
    if sup.reason:
        raise StackError(f"stopped: {sup.reason}")


def mobilize_poller(s: Settings, sup: Supervisor, env: dict[str, str], logs: Path, every: float = 5.0) -> Callable[[], None]:
    """Start the Mobilize poller once a partner of the coalition file is connected to Mobilize:
    at start, or later while the stack runs (`turnout mobilize connect` from another shell)."""
    file, started = CoalitionFile(s.coalition, every=every), False

    def check() -> None:
        nonlocal started
        if started:
            return
        try:
            connected = any(p.mobilize for p in file.current().partners.values())
        except CoalitionError:
            return  # being edited, perhaps: looked at again in ``every`` seconds
        if connected:
            sup.add("the Mobilize poller", spawn(["mobilize", "poll"], env, logs / "mobilize.log"), logs / "mobilize.log",
                    restart=(["mobilize", "poll"], env))
            console.print("polling Mobilize for the partners connected to it")
            started = True

    return check


def _wait_listening(sup: Supervisor, port: int, proc: subprocess.Popen) -> None:
    try:
        wait_for_port(port, 60, proc)
    except (RuntimeError, TimeoutError):
        child = next(c for c in sup.children if c.proc is proc)
        code = proc.poll()
        how = f"exited (code {code})" if code is not None else "is not listening after 60 s"
        sup.reason = f"{child.name} {how} before it listened on port {port}; see {child.log}"
        raise _Stopped from None


class _Stopped(Exception):
    """A process the stack needs did not come up: stop (``Supervisor.reason`` says why)."""


def _explain(sup: Supervisor) -> None:
    child = next((c for c in sup.children if c.log and str(c.log) in sup.reason), None)
    lines = tail(child.log) if child else []
    if lines:
        console.print(f"last lines of {child.log}:", highlight=False)
        for line in lines:
            console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)


def _wait_any(procs: list[subprocess.Popen], timeout: float) -> None:
    try:
        procs[0].wait(timeout)
    except subprocess.TimeoutExpired:
        pass
