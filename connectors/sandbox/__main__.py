"""``python -m connectors.sandbox --port 8099``: run the sandbox providers on their own."""

from __future__ import annotations

import argparse
import json

import uvicorn

from .faults import Faults
from .server import SandboxConfig, create_sandbox


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m connectors.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--account-sid")
    parser.add_argument("--auth-token")
    parser.add_argument("--sendgrid-api-key")
    parser.add_argument("--status-callback-url")
    parser.add_argument("--inbound-url")
    parser.add_argument("--event-webhook-url")
    parser.add_argument("--faults", default="{}", help='JSON, e.g. \'{"share_429": 0.1}\'')
    args = parser.parse_args(argv)
    given = {
        "account_sid": args.account_sid, "auth_token": args.auth_token,
        "sendgrid_api_key": args.sendgrid_api_key, "status_callback_url": args.status_callback_url,
        "inbound_url": args.inbound_url, "event_webhook_url": args.event_webhook_url,
    }
    config = SandboxConfig(
        seed=args.seed, faults=Faults.model_validate(json.loads(args.faults)),
        **{k: v for k, v in given.items() if v is not None},
    )
    app = create_sandbox(config)
    print(f"SendGrid event webhook public key: {app.state.sandbox.sendgrid_public_key}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
