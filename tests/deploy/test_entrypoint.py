"""The image's entrypoint and health check, run here against temporary directories and a local server."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from deploy.artifacts import DEPLOY

ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"
HEALTHCHECK = DEPLOY / "healthcheck.py"


@pytest.fixture
def seed(tmp_path):
    """What the build bakes: models and a seeded guideline store."""
    root = tmp_path / "seed"
    (root / "models" / "all-minilm-l6-v2").mkdir(parents=True)
    (root / "models" / "all-minilm-l6-v2" / "manifest.json").write_text("{}")
    (root / "guidelines" / "indexes" / "g1").mkdir(parents=True)
    (root / "guidelines" / "store.sqlite").write_bytes(b"sqlite")
    (root / "guidelines" / "manifest.json").write_text('{"index": "g1"}')
    return root


def _start(seed, data, *command):
    env = dict(os.environ, CURBSIDE_SEED_DIR=str(seed), CURBSIDE_DATA_DIR=str(data))
    return subprocess.run(["sh", str(ENTRYPOINT), *command], env=env, capture_output=True, text=True, timeout=30)


def test_the_entrypoint_is_executable_and_posix_sh():
    assert os.access(ENTRYPOINT, os.X_OK)
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    assert subprocess.run(["sh", "-n", str(ENTRYPOINT)]).returncode == 0


def test_a_new_data_directory_gets_the_baked_models_and_a_copy_of_the_seeded_store(seed, tmp_path):
    data = tmp_path / "data"
    done = _start(seed, data, "sh", "-c", 'echo "ran $0 $1"', "curbside", "serve")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran curbside serve"  # the command runs, with its arguments
    assert (data / "models").is_symlink() and (data / "models").resolve() == (seed / "models").resolve()
    assert (data / "models" / "all-minilm-l6-v2" / "manifest.json").exists()
    assert not (data / "guidelines").is_symlink()  # a copy: the store is written to at run time
    assert (data / "guidelines" / "store.sqlite").read_bytes() == b"sqlite"
    assert (data / "guidelines" / "indexes" / "g1").is_dir()
    assert not list(data.glob(".guidelines-seed.*"))


def test_an_existing_data_directory_is_left_as_it_is(seed, tmp_path):
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "guidelines").mkdir()
    (data / "guidelines" / "store.sqlite").write_bytes(b"the site's own documents")
    done = _start(seed, data, "true")
    assert done.returncode == 0, done.stderr
    assert not (data / "models").is_symlink()
    assert (data / "guidelines" / "store.sqlite").read_bytes() == b"the site's own documents"
    assert not (data / "guidelines" / "indexes").exists()


def test_engine_and_app_starting_together_on_one_volume_both_succeed(seed, tmp_path):
    data = tmp_path / "data"
    for _ in range(3):
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: _start(seed, data, "true"), range(4)))
        assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
        assert (data / "guidelines" / "store.sqlite").read_bytes() == b"sqlite"
        assert not list(data.glob(".guidelines-seed.*"))
        assert not (data / "guidelines" / "guidelines").exists()


def test_a_failing_command_keeps_its_exit_status(seed, tmp_path):
    assert _start(seed, tmp_path / "data", "sh", "-c", "exit 7").returncode == 7


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.send_response(200 if self.path == "/health/ready" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_healthcheck_exits_0_only_on_a_200(health_server):
    def check(url):
        return subprocess.run([sys.executable, str(HEALTHCHECK), url], capture_output=True, text=True, timeout=30)

    assert check(f"{health_server}/health/ready").returncode == 0
    failed = check(f"{health_server}/health/other")
    assert failed.returncode == 1 and "unhealthy" in failed.stderr
    assert check("http://127.0.0.1:9/health/ready").returncode == 1  # nothing listens


def test_the_healthcheck_follows_the_role_running_in_the_container(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("curbside_healthcheck", HEALTHCHECK)
    hc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hc)
    proc = tmp_path / "proc"
    (proc / "1").mkdir(parents=True)
    (proc / "1" / "cmdline").write_bytes(b"/usr/local/bin/python\0/usr/local/bin/curbside\0serve\0")
    assert hc.target_url(["hc"], {}, proc) == "http://127.0.0.1:8000/health/ready"
    assert hc.target_url(["hc"], {"CURBSIDE_PORT": "9000"}, proc) == "http://127.0.0.1:9000/health/ready"
    (proc / "42").mkdir()
    (proc / "42" / "cmdline").write_bytes(b"/usr/local/bin/python\0-m\0streamlit\0run\0/x/app/ui/main.py\0")
    assert hc.target_url(["hc"], {}, proc) == "http://127.0.0.1:8501/_stcore/health"
    assert hc.target_url(["hc"], {"CURBSIDE_HEALTHCHECK_URL": "http://h/x"}, proc) == "http://h/x"
    assert hc.target_url(["hc", "http://a/b"], {"CURBSIDE_HEALTHCHECK_URL": "http://h/x"}, proc) == "http://a/b"
