"""Nothing connects beyond loopback: the server, the app, ingestion and consults, each guarded (support.net_guard).

The product's own processes (`curbside run`, `docs seed`, `curbside serve`, `streamlit run`) load the guard at
start-up through a sitecustomize on PYTHONPATH, for the whole browser session of the `product` fixture; the
pipeline and the store also run here, in this process, under the same guard.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import net_guard
from support.guidelines import LITHIUM, NALOXONE

from app.consult import ConsultConfig, ConsultPipeline
from curbside.cli_run import streamlit_command
from retrieval.store import GuidelineStore, StoreConfig


@pytest.fixture
def guard(tmp_path):
    log = tmp_path / "in-process-guard.log"
    net_guard.install(log)
    yield log
    net_guard.uninstall()


def test_every_process_of_the_product_ran_guarded_and_reached_nothing_beyond_loopback(product):
    installed = net_guard.installed_in(product.guard_log)
    commands = " ".join(installed)
    for part in ("'run'", "'seed'", "'serve'", "app/ui/main.py"):  # curbside run, docs seed, serve; streamlit
        assert part in commands, f"no guarded process for {part!r}: {installed}"
    assert net_guard.violations(product.guard_log) == []


def test_a_consult_and_an_ingest_in_this_process_reach_nothing_beyond_loopback(product, guard, tmp_path, embedder,
                                                                              models_dir):
    store = GuidelineStore(StoreConfig(root=tmp_path / "store", models_dir=models_dir), embedder)
    report = store.ingest_files([("lithium.md", LITHIUM), ("naloxone.md", NALOXONE)])
    assert not report.failed
    config = ConsultConfig(base_url=product.server_url + "/v1", api_key=product.api_key, max_tokens=16)
    result = ConsultPipeline(store, config).run({
        "presentation": "On lithium for bipolar disorder, stable mood.", "question": "How often are levels checked?"})
    assert result["generation_error"] is None and result["citations"]
    assert net_guard.installed_in(guard) and net_guard.violations(guard) == []


STARTUP = """
from streamlit import config
from streamlit.web import bootstrap
flags = {flags}
for key, value in flags.items():
    config.set_option(key, value, "command-line")
bootstrap._print_url(False)
"""


def test_the_app_bound_to_all_interfaces_looks_up_nothing_on_start(tmp_path, repo_root):
    cmd = streamlit_command("0.0.0.0", 8501)
    args = cmd[cmd.index("run") + 2:]
    flags = {k.removeprefix("--"): v for k, v in zip(args[::2], args[1::2], strict=True)}
    flags = {k: {"true": True, "false": False}.get(v, v) for k, v in flags.items()}
    for key in ("server.port",):
        flags[key] = int(flags[key])
    log = tmp_path / "guard.log"
    env = {**os.environ, **net_guard.sitecustomize_dir(tmp_path, log)}
    out = subprocess.run([sys.executable, "-c", STARTUP.replace("{flags}", repr(flags))], env=env, cwd=repo_root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert net_guard.installed_in(log)
    assert net_guard.violations(log) == []
