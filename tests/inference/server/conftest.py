import pytest
from support.server import API_KEY, start_server


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """The main server: default model and embedder, an API key."""
    s = start_server(tmp_path_factory.mktemp("server"), api_key=API_KEY)
    yield s
    s.stop()


@pytest.fixture
def auth(server):
    return server.headers()
