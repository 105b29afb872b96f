"""A FastAPI app served on a loopback port in a thread, and a webhook receiver that records what
reaches it: for tests that run the sandbox providers in-process, with no broker."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI, Request, Response

from streams.broker import free_port


class Served:
    """A FastAPI app on a free loopback port in a background thread, until ``stop()``."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Receiver:
    """Our side of the webhooks: records every request; ``/flaky`` answers 503 twice first."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.flaky_failures = 0
        app = FastAPI()

        @app.post("/{path:path}")
        async def receive(path: str, request: Request):
            body = await request.body()
            if path == "flaky" and self.flaky_failures < 2:
                self.flaky_failures += 1
                return Response(status_code=503)
            self.requests.append({"path": path, "query": request.url.query, "headers": dict(request.headers), "body": body})
            return Response(status_code=200)

        self.served = Served(app)
        self.url = self.served.url

    def at(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    @staticmethod
    def form(request: dict) -> dict[str, str]:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(request["body"].decode(), keep_blank_values=True))
