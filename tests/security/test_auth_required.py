"""With an API key set, every server route refuses a request without it (401, OpenAI's error shape), except the
open ones: health (for load balancers and orchestrators) and the API's own description."""

from __future__ import annotations

import httpx
import pytest
from support.fuzz import error_shape_problem

from inference import EngineConfig
from inference.server.app import OPEN_PATHS, build_app
from inference.server.state import ServerConfig, ServerState

OPEN = {"/health/live", "/health/ready", "/openapi.json"}


def routes() -> list[tuple[str, str]]:
    """(method, path) of every route the FastAPI app serves, read from the app itself."""
    app = build_app(ServerState(ServerConfig(EngineConfig(), "introspection")), load_in_background=False)
    found = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method != "HEAD":
                found.append((method, route.path))
    return sorted(found)


ROUTES = routes()


def test_the_open_paths_are_exactly_health_and_the_api_description():
    assert {path for _, path in ROUTES if path.startswith(OPEN_PATHS)} == OPEN
    # no Swagger or ReDoc page: both make the browser fetch their scripts from a CDN
    assert not {path for _, path in ROUTES if path.startswith(("/docs", "/redoc"))}
    assert ("GET", "/metrics") in ROUTES and not "/metrics".startswith(OPEN_PATHS)


@pytest.mark.parametrize("method, path", [r for r in ROUTES if r[1] not in OPEN], ids=lambda v: str(v))
def test_a_route_without_the_key_or_with_a_wrong_one_is_401(product, method, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": product.api_key}):
        r = httpx.request(method, product.server_url + path, headers=headers, timeout=30,
                          json={} if method == "POST" else None)
        assert r.status_code == 401, (method, path, headers, r.status_code)
        assert error_shape_problem(401, r.content) is None, r.text
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", sorted(OPEN))
def test_the_open_routes_answer_without_a_key(product, path):
    assert httpx.get(product.server_url + path, timeout=30).status_code == 200
