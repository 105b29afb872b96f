"""`turnout up` claims its directory before it starts anything."""

import pytest

from streams.startup import StackError, claim


def test_a_second_stack_in_the_same_directory_is_refused_until_the_first_lets_go(tmp_path):
    # An outside probe started two `turnout up` two seconds apart: both ran, and the second moved
    # the first one's live logs away. The state file the check read is written last, 20 s in.
    first = claim(tmp_path)
    with pytest.raises(StackError, match="already starting or running from"):
        claim(tmp_path)
    assert claim(tmp_path / "elsewhere")  # another directory is another stack
    first.close()  # the first stack's process ended
    claim(tmp_path).close()


def test_a_directory_it_cannot_write_is_said_in_one_line(tmp_path):
    (tmp_path / ".turnout").write_text("a file, not a folder")
    with pytest.raises(StackError, match="cannot write"):
        claim(tmp_path)


def test_each_worker_of_a_stack_gets_its_own_metrics_port_and_a_taken_one_is_refused_first(tmp_path):
    # With TURNOUT_METRICS_PORT and --workers 2, both workers took the one port: the second died
    # three times ("Address already in use") and took the stack down after its banner (an outside probe).
    import socket

    from pydantic import SecretStr

    from streams.broker import free_port
    from streams.settings import Settings
    from streams.startup import metrics_ports, preflight

    base = free_port()
    s = Settings(metrics_port=base, person_key_secret=SecretStr("k"))
    assert metrics_ports(s, 3) == [base, base + 1, base + 2] and metrics_ports(Settings(person_key_secret=SecretStr("k")), 3) == []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 1))
        taken.listen()
        with pytest.raises(StackError, match=rf"port {base + 1} \(TURNOUT_METRICS_PORT \+ 1, worker 1's /metrics\) is taken"):
            preflight(s, free_port(), tmp_path, tmp_path / "coalition.toml", workers=2)
    # A range over the web app's own port (free until the stack takes it): worker 1 died three times (an outside probe).
    with pytest.raises(StackError, match=rf"port {base + 1} \(TURNOUT_METRICS_PORT \+ 1, worker 1's /metrics\) is the web app's"):
        preflight(s, base + 1, tmp_path, tmp_path / "coalition.toml", workers=2)


def test_the_stack_hands_other_commands_its_settings_but_not_its_workers_metrics_port(tmp_path):
    # One more `turnout worker` beside a stack run with TURNOUT_METRICS_PORT took worker 0's port
    # from the stack's state file, and stopped: "Address already in use" (an outside probe).
    from pydantic import SecretStr

    from streams import running
    from streams.settings import Settings

    s = Settings(kafka_bootstrap_servers="127.0.0.1:9092", person_key_secret=SecretStr("k"))
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "TURNOUT_METRICS_PORT": "9472", "TURNOUT_FIND_STACK": "false",
           "TURNOUT_ORGANIZER_TOKEN": "t", "PATH": "/usr/bin"}
    state = running.new_state(s, env, "http://127.0.0.1:8000", tmp_path, demo=False)
    assert state.settings == {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "TURNOUT_ORGANIZER_TOKEN": "t"}


def test_the_stack_starts_the_mobilize_poller_once_a_partner_is_connected_also_while_it_runs(tmp_path, monkeypatch):
    # `turnout mobilize connect` beside a running `turnout up` said "polling", and nothing polled
    # until the stack was restarted (an outside probe).
    from pydantic import SecretStr

    from streams import stack
    from streams.coalition import add_partner, connect_mobilize
    from streams.settings import Settings

    started = []
    monkeypatch.setattr(stack, "spawn", lambda args, env, log: args)

    class Supervisor:
        def add(self, name, proc, log, restart=None):
            started.append(proc)
            assert restart == (["mobilize", "poll"], {})  # restarted if it dies, as a worker is (it stopped the stack)

    path = tmp_path / "coalition.toml"
    add_partner(path, "union-a", "Union A", "union")
    check = stack.mobilize_poller(Settings(coalition=path, person_key_secret=SecretStr("k")), Supervisor(), {}, tmp_path, every=0)
    check()
    assert started == []
    path.write_text(path.read_text() + "[broken")  # mid-edit: the stack runs on
    check()
    path.write_text(path.read_text().removesuffix("[broken"))
    connect_mobilize(path, "union-a", 101, "key-101")
    check()
    check()
    assert started == [["mobilize", "poll"]]  # once
