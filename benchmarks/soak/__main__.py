"""The fault and load suite: ``make soak`` (or ``python -m benchmarks.soak``).

Five scenarios, one after the other, each with its own embedded broker, workers, web app (and
sandbox providers for the outreach ones), each bounded by ``--timeout`` seconds:

1. ``load``          N signed events through the ingress as fast as it takes them (--clients
                     concurrent senders, batches of 500, a few re-posted), then the tallies must
                     equal the acknowledged events exactly. Two workers.
2. ``kill-load``     the same with a worker SIGKILLed --kills times (and replaced) as the counts
                     grow, posting paced at --kill-rate so the kills land during the load.
3. ``fan-out-kill``  a rapid-response action to --people people through the sandbox's Twilio
                     queue (--sms-mps texts/s leave it) while a worker is SIGKILLed --kills
                     times as the texts are handed over: no number texted twice, everyone texted
                     exactly once, no SMS ask in doubt (orphaned texts are looked up at the
                     provider) and none left sending, tallies exact once the queue has drained.
4. ``broker-pause``  paced load; the broker is frozen (SIGSTOP) for --pause seconds: 503 with
                     Retry-After while frozen, never 2xx; after SIGCONT everything counted.
5. ``storm``         SMS + email to --storm-people people through a sandbox answering 15% 429,
                     15% 5xx and hanging 5% of requests past the client's timeout; judged from
                     the sandbox's attempt log.

The summary table: size, seconds (first post to settled), rate, lost (acknowledged facts or
eligible asks missing), double (counted or sent twice), in doubt (asks never resent because a
worker or a request died with them), 503s seen, PASS/FAIL; then each scenario's own figures.
The exit code is 1 when any scenario failed. The run itself prints no verdict on speed: the
rates are figures to compare between runs on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for `tests.factories`

from rich.console import Console

from benchmarks.soak.ingress import broker_pause, load
from benchmarks.soak.outcome import Outcome, summary
from benchmarks.soak.outreach import fan_out
from benchmarks.soak.storm import storm

SCENARIOS = ("load", "kill-load", "fan-out-kill", "broker-pause", "storm")


def scenario(name: str, args: argparse.Namespace, console: Console):
    common = dict(timeout=args.timeout, workdir=args.workdir)
    if name == "load":
        return load(console, name=name, events=args.events, clients=args.clients, workers=2, **common)
    if name == "kill-load":
        return load(console, name=name, events=args.kill_events, clients=args.clients, workers=2, kills=args.kills,
                    rate=args.kill_rate, **common)
    if name == "fan-out-kill":
        return fan_out(console, name=name, people=args.people, kills=args.kills, sms_mps=args.sms_mps, **common)
    if name == "broker-pause":
        return broker_pause(console, name=name, events=args.pause_events, rate=args.pause_rate, pause=args.pause,
                            ack_timeout=args.ack_timeout, **common)
    return storm(console, name=name, people=args.storm_people, share_timeout=args.storm_timeouts, **common)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), help="run these scenarios only")
    ap.add_argument("--events", type=int, default=200_000, help="events of the load scenario (default 200000)")
    ap.add_argument("--clients", type=int, default=4, help="concurrent senders (default 4: more did not help on 2 cores)")
    ap.add_argument("--kill-events", type=int, default=200_000, help="events of the kill-load scenario (default 200000)")
    ap.add_argument("--kill-rate", type=float, default=1500, help="events/s posted in kill-load (default 1500)")
    ap.add_argument("--kills", type=int, default=5, help="worker SIGKILLs in kill-load and fan-out-kill (default 5)")
    ap.add_argument("--people", type=int, default=20_000, help="people in the fan-out (default 20000)")
    ap.add_argument("--sms-mps", type=float, default=200, help="texts per second the sandbox's queue lets out in the fan-out "
                    "(default 200: 20000 people drain in 100 s)")
    ap.add_argument("--pause", type=float, default=20, help="seconds the broker is frozen (default 20)")
    ap.add_argument("--pause-events", type=int, default=60_000, help="events of broker-pause (default 60000)")
    ap.add_argument("--ack-timeout", type=float, default=5, help="TURNOUT_ACK_TIMEOUT in broker-pause: below --pause (default 5)")
    ap.add_argument("--pause-rate", type=float, default=1000, help="events/s posted in broker-pause (default 1000)")
    ap.add_argument("--storm-people", type=int, default=5_000, help="people asked by SMS and email in the storm (default 5000)")
    ap.add_argument("--storm-timeouts", type=float, default=0.05, help="share of provider requests that time out (default 0.05)")
    ap.add_argument("--timeout", type=float, default=900, help="deadline per scenario, seconds (default 900)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep every scenario's logs here (default: a temporary "
                    "directory, removed unless the scenario failed)")
    args = ap.parse_args()
    console = Console(width=max(Console().width, 150))
    console.print(f"cores: {os.cpu_count()}; scenarios: {', '.join(args.only)}; deadline {args.timeout:.0f} s each")
    outcomes: list[Outcome] = []
    t0 = time.monotonic()
    for name in args.only:
        console.rule(name)
        outcome = asyncio.run(scenario(name, args, console))
        outcomes.append(outcome)
        console.print(f"{name}: {'PASS' if outcome.passed else 'FAIL'} in {outcome.seconds:,.1f} s", markup=False)
    console.rule(f"all done in {time.monotonic() - t0:,.0f} s")
    summary(outcomes, console)
    sys.exit(0 if all(o.passed for o in outcomes) else 1)


if __name__ == "__main__":
    main()
