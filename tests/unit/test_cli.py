from pathlib import Path

from click.testing import CliRunner

from contracts.schema import partner_events_schema
from streams.cli import main

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schema" / "partner-events.json"


def test_checked_in_schema_is_in_sync():
    assert DOCS.read_text() == partner_events_schema(), "run: turnout schema --out docs/schema/partner-events.json"


def test_partners_add_prints_a_secret_and_list_hides_it(tmp_path):
    runner = CliRunner()
    env = {"TURNOUT_COALITION": str(tmp_path / "c.toml")}
    r = runner.invoke(main, ["partners", "add", "union-local-1", "--name", "Union Local 1", "--kind", "union"], env=env)
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip().splitlines()[-1]
    assert len(secret) >= 32
    listed = runner.invoke(main, ["partners", "list"], env=env)
    assert "union-local-1" in listed.output and secret not in listed.output
    again = runner.invoke(main, ["partners", "add", "union-local-1", "--name", "X", "--kind", "union"], env=env)
    assert again.exit_code != 0 and "already exists" in again.output
    bad = runner.invoke(main, ["partners", "add", "Bad Id", "--name", "X", "--kind", "union"], env=env)
    assert bad.exit_code != 0 and "id" in bad.output


def test_sign_prints_a_curl_command_that_verifies(tmp_path):
    import shlex

    from connectors.signing import verify

    runner = CliRunner()
    env = {"TURNOUT_COALITION": str(tmp_path / "c.toml")}
    secret = runner.invoke(main, ["partners", "add", "union-a", "--name", "U", "--kind", "union"], env=env).stdout.strip().splitlines()[-1]
    r = runner.invoke(main, ["sign", "union-a", "--data", '{"a": 1}'], env=env)
    args = shlex.split(r.stdout)
    h = dict(args[i + 1].split(": ", 1) for i, a in enumerate(args) if a == "-H")
    import time

    verify(secret, h["X-Turnout-Timestamp"], h["X-Turnout-Signature"], b'{"a": 1}', time.time(), 300)
