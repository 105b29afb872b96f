"""free_port: a port handed to a server about to start is not handed to anyone else meanwhile.

Two stacks starting at once (make test runs two test processes) each ask the kernel for a free
port; a port it gave one of them, and which is free again until that one's server binds it,
could be given to the other too, whose server then answered the first one's requests (seen:
a test's events posted to another test's sandbox, 404).
"""

from __future__ import annotations

import socket

from streams.broker import free_port


def kernel_pick() -> int:
    """What a plain ``bind`` to port 0 gets: how another process finds "a free port"."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_port_handed_out_is_not_handed_out_again_before_its_server_listens():
    # The kernel hands out about 14,000 loopback ports to bind(0) here: 40,000 picks would meet
    # an unreserved port about three times.
    ports = {free_port() for _ in range(2)}
    assert len(ports) == 2
    assert not ports & {kernel_pick() for _ in range(40_000)}


def test_a_server_that_reuses_addresses_listens_on_it():
    port = free_port()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn, the broker and asyncio do
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
