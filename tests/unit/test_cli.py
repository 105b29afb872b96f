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
    # With no stack running and no --url, no address is made up (a newcomer probe: it printed port 8000).
    nowhere = runner.invoke(main, ["sign", "union-a", "--data", '{"a": 1}'], env={**env, "TURNOUT_FIND_STACK": "false"})
    assert nowhere.exit_code == 1 and "--url" in nowhere.output and "127.0.0.1:8000" not in nowhere.output
    r = runner.invoke(main, ["sign", "union-a", "--data", '{"a": 1}', "--url", "http://127.0.0.1:8111"], env=env)
    assert r.exit_code == 0 and "http://127.0.0.1:8111/v1/events" in r.stdout
    args = shlex.split(r.stdout)
    h = dict(args[i + 1].split(": ", 1) for i, a in enumerate(args) if a == "-H")
    import time

    verify(secret, h["X-Turnout-Timestamp"], h["X-Turnout-Signature"], b'{"a": 1}', time.time(), 300)


def test_action_network_token_and_mapping(tmp_path):
    from streams.coalition import load, token_digest

    runner = CliRunner()
    env = {"TURNOUT_COALITION": str(tmp_path / "c.toml"), "TURNOUT_PUBLIC_URL": "https://turnout.example.org"}
    runner.invoke(main, ["partners", "add", "union-a", "--name", "U", "--kind", "union"], env=env)
    r = runner.invoke(main, ["action-network", "token", "union-a"], env=env)
    url = r.stdout.strip().splitlines()[-1]
    assert url.startswith("https://turnout.example.org/v1/partners/union-a/action-network/")
    token = url.rsplit("/", 1)[1]
    assert load(tmp_path / "c.toml").get("union-a").action_network.token_sha256 == token_digest(token)
    assert token not in (tmp_path / "c.toml").read_text()
    r = runner.invoke(main, ["action-network", "map", "union-a", "https://actionnetwork.org/api/v2/events/abc-1", "rally-1"],
                      env={**env, "TURNOUT_URL": "http://127.0.0.1:9"})  # nothing listens there
    assert r.exit_code == 0 and "abc-1 -> rally-1" in r.output
    assert "could not check that action 'rally-1' has been posted" in r.output  # mapped all the same, and says so
    # The note said "pass --url", which map did not take (an outside probe): it does now.
    r = runner.invoke(main, ["action-network", "map", "union-a", "abc-1", "rally-1", "--url", "http://127.0.0.1:9"], env=env)
    assert r.exit_code == 0 and "could not check that action 'rally-1' has been posted (TURNOUT_ORGANIZER_TOKEN is not set" in r.output
    # A webhook URL Action Network cannot reach is said to be one (an outside probe: printed as if fine).
    local = runner.invoke(main, ["action-network", "token", "union-a"], env={**env, "TURNOUT_PUBLIC_URL": "http://127.0.0.1:8000"})
    assert local.exit_code == 0 and "warning: TURNOUT_PUBLIC_URL is http://127.0.0.1:8000: Action Network cannot reach it" in local.output
    assert "warning" not in runner.invoke(main, ["action-network", "token", "union-a"], env=env).output
    assert runner.invoke(main, ["action-network", "map", "union-a", "abc-2", "Not A Slug"], env=env).exit_code != 0
    # Junk was mapped as it came (an outside probe): an empty id, a space, another site's URL.
    for junk, says in (("", "is not an Action Network event id"), ("a b", "is not an Action Network event id"),
                       ("https://evil.example/api/v2/events/x", "is not an Action Network event (an id, or its https://actionnetwork.org"),
                       # Another page or API link on actionnetwork.org mapped its last part (an outside probe: "attendances", "events").
                       ("https://actionnetwork.org/events/rally-for-fair-care?source=email", "is not an Action Network event (an id, or its"),
                       ("https://actionnetwork.org/api/v2/events/d91b/attendances", "is not an Action Network event (an id, or its"),
                       ("https://actionnetwork.org/api/v2/events/", "is not an Action Network event (an id, or its")):
        r = runner.invoke(main, ["action-network", "map", "union-a", junk, "rally-2"], env=env)
        assert r.exit_code == 1 and says in r.output, r.output
    assert set(load(tmp_path / "c.toml").get("union-a").action_network.actions) == {"abc-1"}
    r = runner.invoke(main, ["action-network", "map", "union-a", "https://actionnetwork.org/api/v2/events/abc-1/?x=1", "rally-1"], env=env)
    assert r.exit_code == 0 and "abc-1 -> rally-1" in r.output
    r = runner.invoke(main, ["action-network", "unmap", "union-a", "abc-1"], env=env)
    assert r.exit_code == 0 and r.output == "abc-1 unmapped; mapped now: none\n"  # it said nothing (an outside probe)
    assert load(tmp_path / "c.toml").get("union-a").action_network.actions == {}
    assert runner.invoke(main, ["action-network", "token", "nobody"], env=env).exit_code != 0


def test_mobilize_connect_prompts_for_the_key_and_map_needs_a_connection(tmp_path):
    from streams.coalition import load

    runner = CliRunner()
    env = {"TURNOUT_COALITION": str(tmp_path / "c.toml")}
    runner.invoke(main, ["partners", "add", "union-a", "--name", "U", "--kind", "union"], env=env)
    assert runner.invoke(main, ["mobilize", "map", "union-a", "7001", "rally-1"], env=env).exit_code != 0
    r = runner.invoke(main, ["mobilize", "connect", "union-a", "101"], input="mz-secret-key\n", env=env)
    assert r.exit_code == 0 and "mz-secret-key" not in r.output, r.output
    assert runner.invoke(main, ["mobilize", "map", "union-a", "7001", "rally-1"], env=env).exit_code == 0
    link = load(tmp_path / "c.toml").get("union-a").mobilize
    assert (link.organization_id, link.api_key.get_secret_value(), link.events) == (101, "mz-secret-key", {"7001": "rally-1"})
    assert "mz-secret-key" not in runner.invoke(main, ["partners", "list"], env=env).output
    # An empty key was taken, and every poll then failed on a "Bearer " header; an event id must be Mobilize's number.
    r = runner.invoke(main, ["mobilize", "connect", "union-a", "101", "--api-key", " "], env=env)
    assert r.exit_code == 1 and "mobilize.api_key: is empty" in r.output, r.output
    r = runner.invoke(main, ["mobilize", "map", "union-a", "abc", "rally-1"], env=env)
    assert r.exit_code == 1 and "'abc' is not a Mobilize event id (a number" in r.output, r.output
    assert load(tmp_path / "c.toml").get("union-a").mobilize.api_key.get_secret_value() == "mz-secret-key"


def test_a_mobilize_event_is_unmapped_and_a_partner_disconnected_by_command(tmp_path):
    """An outside probe: no unmap or disconnect; a partner whose key Mobilize refused failed
    every poll until the coalition file was edited by hand."""
    from streams.coalition import load

    runner = CliRunner()
    env = {"TURNOUT_COALITION": str(tmp_path / "c.toml")}
    runner.invoke(main, ["partners", "add", "union-a", "--name", "U", "--kind", "union"], env=env)
    runner.invoke(main, ["mobilize", "connect", "union-a", "101", "--api-key", "k"], env=env)
    for event in ("7001", "7002"):
        runner.invoke(main, ["mobilize", "map", "union-a", event, "rally-1", "--url", "http://127.0.0.1:9"], env=env)
    r = runner.invoke(main, ["mobilize", "unmap", "union-a", "7001"], env=env)
    assert r.exit_code == 0 and r.output == "7001 unmapped; mapped now: 7002 -> rally-1\n", r.output
    r = runner.invoke(main, ["mobilize", "unmap", "union-a", "7001"], env=env)
    assert r.exit_code == 1 and "Mobilize event '7001' is not mapped" in r.output, r.output
    r = runner.invoke(main, ["mobilize", "disconnect", "union-a"], env=env)
    assert r.exit_code == 0 and "union-a: no longer polling Mobilize organization 101" in r.output, r.output
    assert load(tmp_path / "c.toml").get("union-a").mobilize is None
    r = runner.invoke(main, ["mobilize", "disconnect", "union-a"], env=env)
    assert r.exit_code == 1 and "not connected to Mobilize" in r.output, r.output
