"""The Triton kernels of the CUDA paths compute what the torch code they replace computes.

No GPU here: the kernels run on CPU tensors under Triton's interpreter. TRITON_INTERPRET=1 must be set before
triton is first imported, so each check runs in a subprocess of its own and this process (which other tests
share) never turns the interpreter on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from support.models import hf_greedy, random_prompts

from inference import LLM, SamplingParams, kernels

ROOT = Path(__file__).resolve().parents[2]
KERNELS = {"paged_attention.paged_decode", "paged_attention.paged_prefill", "rms_norm.rms_norm", "rotary.rotate"}


def interpreted(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, "TRITON_INTERPRET": "1"},
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_each_kernel_matches_the_torch_path_it_replaces(tmp_path):
    out = tmp_path / "kernels.json"
    interpreted(["-m", "inference.kernels.verify", "--device", "cpu", "--json", str(out)])
    results = json.loads(out.read_text())
    assert {r["kernel"] for r in results} == {"paged_decode", "paged_prefill", "rms_norm", "rotary"}
    assert [r["case"] for r in results if not r["ok"]] == []
    cases = " | ".join(r["case"] for r in results)
    # GQA 4:1 and 1:1, three head sizes, both dtypes, an int8 cache, split contexts, chunks over a cached prefix
    for case in ("h4/1", "h2/2", "d16", "d32", "d64", "float32", "bfloat16", "kv=int8", "splits=4", "(33, 17)",
                 "residual=True", "llama3"):
        assert case in cases


def test_the_engine_on_the_kernels_generates_what_hf_generates(tiny_models, tmp_path):
    llama, qwen = tiny_models["llama-gqa-tied"], tiny_models["qwen2-gqa-bias"]
    # few tokens: under the interpreter each program of a kernel costs milliseconds, and norms run one per token
    shared = random_prompts(1, 33, 33, seed=7)[0]
    prompts = random_prompts(1, 21, 21, seed=1) + random_prompts(2, 2, 6, seed=8, prefix=shared)
    long_prompts = random_prompts(2, 40, 70, seed=3)
    engine = {"kv_cache_memory": "16MiB"}
    spec = {"data_dir": str(tmp_path), "runs": [
        {"name": "llama", "model": str(llama), "prompts": prompts, "max_tokens": 8, "engine": engine},
        # chunks of 32 tokens: later chunks attend to the cached ones through the prefill kernel
        {"name": "qwen2-chunked", "model": str(qwen), "prompts": long_prompts, "max_tokens": 4,
         "engine": {**engine, "max_num_batched_tokens": 32}},
        {"name": "llama-int8-kv", "model": str(llama), "prompts": prompts, "max_tokens": 4,
         "engine": {**engine, "kv_cache_dtype": "int8"}},
    ]}
    done = interpreted(["tests/inference/interpreted_engine.py", json.dumps(spec)])
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(runs["llama"]["calls"]) == KERNELS  # the kernels, not the torch path, served the forward
    assert runs["llama"]["tokens"] == hf_greedy(llama, prompts, 8)
    assert max(runs["llama"]["cached"]) >= 32  # a request read a prefix that another computed
    assert runs["qwen2-chunked"]["calls"]["paged_attention.paged_prefill"] > 2
    assert runs["qwen2-chunked"]["tokens"] == hf_greedy(qwen, long_prompts, 4)
    # an int8 cache: the decode kernel dequantizes with the scales; a fresh prompt keeps the torch path
    assert "paged_attention.paged_prefill" not in runs["llama-int8-kv"]["calls"]
    assert runs["llama-int8-kv"]["calls"]["paged_attention.paged_decode"] > 0
    torch_path = LLM(llama, data_dir=tmp_path, kv_cache_dtype="int8", **engine).generate(
        prompts, SamplingParams(max_tokens=4, temperature=0, ignore_eos=True))
    assert runs["llama-int8-kv"]["tokens"] == [o.token_ids for o in torch_path]
    assert all(r["blocks_leaked"] == 0 for r in runs.values())


def test_the_kernels_serve_cuda_tensors_only_unless_switched_off_or_interpreted():
    x = torch.zeros(2, 3)
    assert not kernels.active(x) and not kernels.active_on("cpu")
    try:
        kernels.run_on_cpu(True)
        assert kernels.active(x) == kernels.triton_importable()
        kernels.set_enabled(False)
        assert not kernels.active(x) and not kernels.active_on("cpu")
    finally:
        kernels.run_on_cpu(False)
        kernels.set_enabled(True)


def test_the_engine_config_switches_the_kernels_for_the_process(tiny_llama, tmp_path):
    try:
        LLM(tiny_llama, data_dir=tmp_path, kv_cache_memory="4MiB", use_triton_kernels=False)
        assert not kernels._enabled
        LLM(tiny_llama, data_dir=tmp_path, kv_cache_memory="4MiB")
        assert kernels._enabled
    finally:
        kernels.set_enabled(True)
