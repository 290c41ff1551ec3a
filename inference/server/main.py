"""`curbside serve`: run the server with uvicorn; SIGTERM drains before exiting."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time

import uvicorn

from .app import build_app
from .state import ServerConfig, ServerState

log = logging.getLogger("curbside.server")


class InsecureBindError(ValueError):
    """Refusal to listen beyond loopback without an API key."""


def check_bind(host: str, api_key: str | None) -> None:
    loopback = host in ("localhost",)
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if not loopback and not api_key:
        raise InsecureBindError(f"refusing to listen on {host} without an API key: set CURBSIDE_API_KEY "
                                "(or --api-key), or bind 127.0.0.1")


class DrainingServer(uvicorn.Server):
    """First SIGTERM/SIGINT: readiness goes 503 and new work is refused while in-flight requests finish
    (up to the drain timeout); then uvicorn shuts down. A second signal exits at once."""

    def __init__(self, config: uvicorn.Config, state: ServerState):
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig, frame) -> None:
        if self.state.draining:
            return super().handle_exit(sig, frame)
        self.state.draining = True
        log.info("draining: %d requests in flight", self.state.in_flight)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        deadline = time.monotonic() + self.state.config.drain_timeout_s
        while self.state.in_flight > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.state.in_flight:
            log.warning("drain timeout: %d requests still in flight", self.state.in_flight)
        self.should_exit = True


def serve(config: ServerConfig, host: str, port: int, log_level: str = "info") -> None:
    check_bind(host, config.api_key)
    state = ServerState(config)
    app = build_app(state)
    uv = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                        timeout_graceful_shutdown=max(1, int(config.drain_timeout_s)))
    DrainingServer(uv, state).run()
