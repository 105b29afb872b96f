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
