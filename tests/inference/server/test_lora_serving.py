"""Adapters over HTTP: hot load and unload with vLLM's endpoint names, addressed as the request's model."""

from __future__ import annotations

import httpx
import pytest
from support.lora import make_adapter, peft_greedy
from support.server import start_server


@pytest.fixture(scope="module")
def lora_server(tiny_models, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lora-server")
    base = tiny_models["llama-gqa-tied"]
    adapter = make_adapter(base, tmp / "alpha", seed=1)
    server = start_server(tmp, "--model", str(base), "--no-embeddings", "--max-lora-rank", "8",
                          "--lora-modules", f"preloaded={adapter}")
    yield server, base, adapter
    server.stop()


def complete(server, model: str, prompt: list[int]) -> httpx.Response:
    return httpx.post(server.url + "/v1/completions", json={"model": model, "prompt": prompt, "max_tokens": 8,
                                                           "temperature": 0, "ignore_eos": True}, timeout=60)


def test_adapters_are_hot_loaded_listed_used_and_unloaded(lora_server):
    server, base, adapter = lora_server
    prompt = [11, 12, 13, 14, 15]
    r = httpx.post(server.url + "/v1/load_lora_adapter", json={"lora_name": "alpha", "lora_path": str(adapter)})
    assert r.status_code == 200, r.text
    models = {m["id"]: m for m in httpx.get(server.url + "/v1/models").json()["data"]}
    assert models["alpha"]["parent"] == str(base) and "preloaded" in models

    from transformers import AutoTokenizer

    decode = AutoTokenizer.from_pretrained(base).decode
    with_adapter = decode(peft_greedy(base, adapter, [prompt], 8)[0])
    without = decode(peft_greedy(base, None, [prompt], 8)[0])
    assert with_adapter != without
    for name in ("alpha", "preloaded"):
        assert complete(server, name, prompt).json()["choices"][0]["text"] == with_adapter
    assert complete(server, str(base), prompt).json()["choices"][0]["text"] == without

    r = httpx.post(server.url + "/v1/unload_lora_adapter", json={"lora_name": "alpha"})
    assert r.status_code == 200
    r = complete(server, "alpha", prompt)
    assert r.status_code == 404 and "alpha" in r.json()["error"]["message"]


def test_bad_adapter_requests_are_clear_errors(lora_server, tmp_path):
    server, _, _ = lora_server
    r = httpx.post(server.url + "/v1/load_lora_adapter", json={"lora_name": "nothing", "lora_path": str(tmp_path)})
    assert r.status_code == 400 and "adapter_config.json" in r.json()["error"]["message"]
    r = httpx.post(server.url + "/v1/unload_lora_adapter", json={"lora_name": "never-loaded"})
    assert r.status_code == 404
