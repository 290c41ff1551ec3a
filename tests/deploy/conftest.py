"""Fixtures for the deployment tests: rendered manifests, and what the server really serves."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from deploy.artifacts import KUSTOMIZATIONS, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """The base and the CUDA overlay, rendered by kustomize."""
    return {name: render(path) for name, path in KUSTOMIZATIONS.items()}


@dataclass(frozen=True)
class Served:
    routes: frozenset[str]  # every path the FastAPI app routes
    open_paths: tuple[str, ...]  # prefixes that need no API key
    metrics: dict[str, str]  # metric family name -> type (gauge, counter, histogram)
    port: int  # Settings' defaults
    app_port: int


@pytest.fixture(scope="session")
def served() -> Served:
    """Introspected, not started: the app's routes, its open paths, the metric registry, the default ports."""
    from curbside.settings import Settings
    from inference import EngineConfig
    from inference.server.app import OPEN_PATHS, build_app
    from inference.server.metrics import EngineMetrics
    from inference.server.state import ServerConfig, ServerState

    state = ServerState(ServerConfig(engine=EngineConfig(), served_model_name="introspection"))
    app = build_app(state, load_in_background=False)
    families = {f.name: f.type for f in EngineMetrics("introspection").registry.collect()}
    fields = Settings.model_fields
    return Served(routes=frozenset(r.path for r in app.routes), open_paths=tuple(OPEN_PATHS), metrics=families,
                  port=fields["port"].default, app_port=fields["app_port"].default)
