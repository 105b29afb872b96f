"""`turnout partners`: rotating a secret, disabling and enabling a partner, as data staff do it,
with the coalition file kept as they wrote it, and partner names and secrets within bounds."""

import io
import json
import stat
import time
import tomllib
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from connectors.signing import headers
from connectors.web.app import create_app
from connectors.web.publisher import ListPublisher
from contracts.tallies import TallyBook
from streams.settings import Settings
from tests.cli import bare, turnout
from tests.factories import pledge

HAND_WRITTEN = '''# Our coalition. Ask Maria before changing anything here.
[[partners]]
id = "union-a"   # Local 1, the hub's union
name = "Union A"
kind = "union"
secret = "{secret}"
enabled = true

# Faith partners below.
[[partners]]
id = "faith-b"
name = "Faith B"
kind = "faith"
secret = "faith-b-secret-0123456789"
'''


@pytest.fixture
def here(tmp_path, monkeypatch):
    bare(monkeypatch, tmp_path)
    return tmp_path


def written(here, secret="union-a-secret-0123456789"):
    path = here / "coalition.toml"
    path.write_text(HAND_WRITTEN.format(secret=secret))
    return path


def entry(path, partner_id):
    return next(p for p in tomllib.loads(path.read_text())["partners"] if p["id"] == partner_id)


def test_rotate_secret_prints_a_new_secret_keeps_the_file_as_written_and_the_old_one_stops_working(here):
    path = written(here)
    client = TestClient(create_app(Settings(coalition=path, organizer_token=SecretStr("t" * 24), person_key_secret=SecretStr("k"),
                                            kafka_bootstrap_servers="unused:9092"), publisher=ListPublisher(), book=TallyBook()))
    body = json.dumps(pledge("p1", "rally-1", 5)).encode()

    def post(secret):
        return client.post("/v1/events", content=body, headers=headers("union-a", secret, body, time.time()))

    assert post("union-a-secret-0123456789").status_code == 202
    r = turnout("partners", "rotate-secret", "union-a")
    assert r.exit_code == 0, r.output
    new = r.output.strip().splitlines()[-1]
    assert entry(path, "union-a")["secret"] == new and len(new) >= 32 and new != "union-a-secret-0123456789"
    # Comments, order and layout as written: the secret changed, and the old one keys imported rows' ids from now on.
    assert path.read_text() == HAND_WRITTEN.format(secret=new).replace(
        "enabled = true\n", 'enabled = true\nimport_key = "union-a-secret-0123456789"\n')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert post("union-a-secret-0123456789").status_code == 401
    assert post(new).status_code == 202


def test_a_sheet_imported_again_after_rotations_gives_the_same_event_ids(here):
    """An outside probe: a check-in sheet imported again after `rotate-secret` got new event ids, so
    a check-in withdrawn since counted again."""
    from connectors.csv_import import read
    from streams.coalition import load

    path = written(here)

    def ids():
        key = load(path).partners["union-a"].import_ids_key()
        rows, problems = read(io.StringIO("phone,name\n(510) 555-0101,Ana\n"), "checkin", partner="union-a", secret=key,
                              action="rally-1", default_at=datetime(2026, 11, 24, 18, tzinfo=timezone.utc))
        assert not problems
        return [row.event["event_id"] for row in rows]

    before = ids()
    assert turnout("partners", "rotate-secret", "union-a").exit_code == 0
    assert turnout("partners", "rotate-secret", "union-a").exit_code == 0
    assert ids() == before
    assert entry(path, "union-a")["import_key"] == "union-a-secret-0123456789"


def test_a_weak_hand_written_secret_is_refused_without_quoting_it_and_rotate_secret_mends_it(here):
    path = written(here, secret="hunter2")
    r = turnout("partners", "list")
    assert r.exit_code == 1 and "partner 1 (union-a): secret: must be 16 to 512 characters (it has 7)" in r.output, r.output
    assert "hunter2" not in r.output and "rotate-secret" in r.output
    r = turnout("partners", "rotate-secret", "union-a")  # what the message advises works on the broken file
    assert r.exit_code == 0, r.output
    assert turnout("partners", "list").exit_code == 0
    path.write_text(HAND_WRITTEN.format(secret="has a space in it 0123456789"))
    r = turnout("partners", "list")
    assert r.exit_code == 1 and "may hold only printable ASCII characters, no spaces" in r.output and "has a space" not in r.output


def test_disable_and_enable(here):
    path = written(here)
    r = turnout("partners", "disable", "faith-b")
    assert r.exit_code == 0 and "refused (401)" in r.output and "turnout partners enable faith-b" in r.output, r.output
    assert entry(path, "faith-b")["enabled"] is False and entry(path, "union-a")["enabled"] is True
    assert "# Faith partners below." in path.read_text()
    assert [line.split("│")[5].strip() for line in turnout("partners", "list").output.splitlines() if "faith-b" in line] == ["no"]
    assert turnout("partners", "enable", "faith-b").exit_code == 0
    assert entry(path, "faith-b")["enabled"] is True


def test_an_unknown_partner_is_named_with_those_there_are(here):
    written(here)
    for command in ("rotate-secret", "disable", "enable"):
        r = turnout("partners", command, "faith-x")
        assert r.exit_code == 1 and "no partner 'faith-x' in coalition.toml (partners: union-a, faith-b)" in r.output, r.output


def test_other_commands_that_change_a_partner_keep_comments_too(here):
    path = written(here)
    assert turnout("action-network", "map", "union-a", "e-1", "rally-1").exit_code == 0
    assert entry(path, "union-a")["action_network"]["actions"] == {"e-1": "rally-1"}
    assert path.read_text().startswith(HAND_WRITTEN.format(secret="union-a-secret-0123456789").split("\n# Faith")[0])
    assert "# Faith partners below." in path.read_text()


@pytest.mark.parametrize("name, says", [
    ("", "name: is empty"),
    ("   ", "name: is empty"),
    ("x" * 121, "name: is 121 characters long; at most 120"),
    ("Union\nA", "name: holds a control character"),
])
def test_partner_names_are_bounded(here, name, says):
    r = turnout("partners", "add", "union-z", "--name", name, "--kind", "union")
    assert r.exit_code == 2 and says in r.output, r.output  # a value given on the command line: a usage error
    assert not (here / "coalition.toml").exists()


def test_a_name_is_kept_trimmed(here):
    assert turnout("partners", "add", "union-z", "--name", "  Union Z ", "--kind", "union").exit_code == 0
    assert entry(here / "coalition.toml", "union-z")["name"] == "Union Z"
