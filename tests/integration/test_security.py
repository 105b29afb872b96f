"""Security checks against the real web app (uvicorn) and worker."""

from __future__ import annotations

import pytest

from tests.factories import checkin, phone, pledge, signup
from tests.polling import eventually

from .conftest import TOKEN

pytestmark = pytest.mark.integration


def test_secrets_never_reach_the_logs(make_stack):
    stack = make_stack()
    stack.start_worker()
    stack.start_web()
    stack.announce('rally-1')
    stack.post_all("union-a", [signup("s1", phone=phone(1), email="s1@example.org"), pledge("p1", "rally-1", 3), checkin("c1", "rally-1", phone=phone(1))])
    assert stack.post("union-a", [pledge("p2", "rally-1", 3)], secret=stack.secrets["faith-b"]).status_code == 401
    assert stack.http.get(f"{stack.url}/v1/tallies", headers={"Authorization": "Bearer wrong-" + TOKEN}).status_code == 401
    eventually(lambda: stack.action_rows("rally-1")["union-a"]["attended"] == 1)
    logs = "".join(log.read_text(errors="replace") for log in stack.logs)
    secrets = [*stack.secrets.values(), TOKEN, stack.settings.person_key_secret.get_secret_value(), stack.settings.master_key.get_secret_value()]
    assert logs and not [s for s in secrets if s in logs]
