"""The demo's simulated partners (``make run``) sign with the coalition file's secrets as they are now."""

import httpx
from pydantic import SecretStr

from connectors.demo import Simulator
from connectors.signing import verify
from streams.coalition import add_partner, load, rotate_secret, set_enabled
from streams.settings import Settings


def test_the_demo_signs_with_a_rotated_secret_and_posts_nothing_for_a_disabled_partner(tmp_path):
    """An outside probe: after `turnout partners rotate-secret` on the demo stack, the demo kept
    signing with the old secret, and `make run` printed a 401 every few seconds."""
    path = tmp_path / "coalition.toml"
    add_partner(path, "union-a", "Union A", "union")
    sim = Simulator(Settings(coalition=path, person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092"), "http://web.test")
    posted = []

    def web(request: httpx.Request) -> httpx.Response:
        h = request.headers
        secret = load(path).get(h["x-turnout-partner"]).secret.get_secret_value()
        verify(secret, h["x-turnout-timestamp"], h["x-turnout-signature"], request.content, float(h["x-turnout-timestamp"]), 300)  # raises if not
        posted.append(h["x-turnout-partner"])
        return httpx.Response(202, json={"accepted": 0, "duplicates": 0, "rejected": []})

    sim.client = httpx.Client(transport=httpx.MockTransport(web))
    sim.post("union-a", [])
    rotate_secret(path, "union-a")
    sim.post("union-a", [])
    set_enabled(path, "union-a", False)
    sim.post("union-a", [])
    assert posted == ["union-a", "union-a"]


def test_a_web_app_slow_to_answer_does_not_stop_the_demo(tmp_path, capsys):
    """An outside probe: one request held the web app for more than the demo's 10 s, and `make
    run` stopped the whole stack (broker, worker, web app: everything in memory lost) though no
    process had exited. The demo says so and goes on; a process that exits still stops the stack."""
    path = tmp_path / "coalition.toml"
    add_partner(path, "union-a", "Union A", "union")
    sim = Simulator(Settings(coalition=path, person_key_secret=SecretStr("k"), kafka_bootstrap_servers="unused:9092"), "http://web.test")
    slow = True

    def web(request: httpx.Request) -> httpx.Response:
        if slow:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(202, json={}) if request.method == "POST" else httpx.Response(200, json={"action_id": "a", "partners": []})

    sim.client = httpx.Client(transport=httpx.MockTransport(web))
    assert sim.post("union-a", []) is False  # run_demo posts the demo's action again until it is answered
    assert sim.tallies("token", ["a"]) is None
    assert "no answer from the web app (ReadTimeout)" in capsys.readouterr().out
    slow = False
    assert sim.post("union-a", []) is True and sim.tallies("token", ["a"]) == [{"action_id": "a", "partners": []}]


def test_the_banners_commands_name_the_turnout_that_runs(tmp_path, monkeypatch):
    """`make run` runs .venv/bin/turnout, which another shell may not have on its PATH: the
    commands the banner prints name it by its path (an outside probe: the invite line did not,
    the sign line did); run as `python -m streams.cli`, they say `turnout`."""
    from streams.stack import turnout_command

    installed = tmp_path / "bin" / "turnout"
    monkeypatch.setattr("sys.argv", [str(installed), "up"])
    assert turnout_command() == str(installed.resolve())
    monkeypatch.setattr("sys.argv", [str(tmp_path / "streams" / "cli.py"), "up"])
    assert turnout_command() == "turnout"
