"""Sliding-window perplexity through our engine: equal to HF's, and what quantization costs on SmolLM2."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from support.models import random_prompts

from inference.eval_ppl import build_engine, corpus_files, score_tokens, windows


def scored_positions(n: int, context: int, stride: int) -> list[int]:
    scored = []
    for begin, end, first in windows(n, context, stride):
        assert end - begin <= context and begin < first <= end
        assert first - begin >= min(context - stride, first)  # enough context, except at the very start
        scored.extend(range(first, end))
    return scored


@pytest.mark.parametrize("n,context,stride", [(300, 64, 32), (300, 64, 48), (64, 64, 16), (65, 64, 16), (10, 64, 32),
                                              (1000, 512, 256)])
def test_overlapping_windows_score_every_token_after_the_first_exactly_once(n, context, stride):
    assert scored_positions(n, context, stride) == list(range(1, n))


def test_non_overlapping_windows_leave_only_each_windows_first_token_unscored():
    assert scored_positions(300, 64, 64) == [p for p in range(1, 300) if p % 64]


def hf_sliding_window_ppl(path, ids: list[int], context: int, stride: int) -> float:
    """The reference: HF transformers' forward over the same windows, scoring the same tokens."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    nll, count = 0.0, 0
    with torch.inference_mode():
        for begin, end, first in windows(len(ids), context, stride):
            logprobs = model(torch.tensor([ids[begin:end]])).logits[0].log_softmax(-1)
            targets = torch.tensor(ids[first:end])
            nll -= logprobs[first - 1 - begin:end - 1 - begin].gather(1, targets[:, None]).sum().item()
            count += end - first
    return math.exp(nll / count)


@pytest.mark.parametrize("variant", ["llama-gqa-tied", "qwen2-gqa-bias"])
def test_engine_perplexity_matches_hf_on_a_tiny_model(tiny_models, variant, tmp_path):
    path = tiny_models[variant]
    ids = random_prompts(1, 300, 300, seed=31)[0]
    engine = build_engine(str(path), None, "auto", 64, data_dir=tmp_path, kv_cache_memory="4MiB")
    ref = hf_sliding_window_ppl(path, ids, 64, 32)
    for chunk in (64, 16, 5):  # with a float KV cache, chunking must not change the result
        score = score_tokens(engine, ids, context=64, stride=32, chunk=chunk)
        assert score.tokens == 299
        assert abs(score.ppl / ref - 1) < 0.01
        assert abs(score.ppl / ref - 1) < 1e-4  # in fact equal up to float rounding
    assert engine.block_manager.num_free_blocks == engine.block_manager.num_blocks - 1


def test_scoring_refuses_windows_the_prefix_cache_would_skip(tiny_llama, tmp_path):
    from inference import EngineConfig, SamplingParams
    from inference.engine.llm_engine import LLMEngine

    engine = LLMEngine(EngineConfig(model=tiny_llama, data_dir=tmp_path, kv_cache_memory="4MiB"))
    ids = random_prompts(1, 100, 100, seed=32)[0]
    engine.add_request("served", ids[:64], SamplingParams(max_tokens=1))  # a served request caches its blocks
    while engine.has_unfinished_requests():
        engine.step()
    with pytest.raises(RuntimeError, match="enable_prefix_caching=False"):
        score_tokens(engine, ids, 64, 32)
    assert engine.block_manager.num_free_blocks == engine.block_manager.num_blocks - 1


def test_the_bundled_corpus_is_the_guidelines_without_sources():
    files = corpus_files([])
    assert len(files) >= 10 and all(f.suffix == ".md" for f in files)
    assert "SOURCES.md" not in {f.name for f in files}


def smollm2_ppl(path, text: str, quantization: str | None, kv_cache_dtype: str, tmp_path, max_tokens: int,
                context: int, stride: int, chunk: int) -> float:
    engine = build_engine(str(path), quantization, kv_cache_dtype, context, data_dir=tmp_path,
                          kv_cache_memory="64MiB")
    ids = engine.tokenizer(text, verbose=False)["input_ids"][:max_tokens]
    return score_tokens(engine, ids, context, stride, chunk).ppl


def test_smollm2_int8_perplexity_on_a_guideline_stays_within_a_few_percent_of_fp32(smollm2_path, repo_root,
                                                                                    tmp_path):
    text = (repo_root / "data" / "guidelines" / "depression-adult.md").read_text()  # ~1,950 tokens
    # non-overlapping windows keep the test short: every token runs through each model once
    ppl = {q: smollm2_ppl(smollm2_path, text, q, "auto", tmp_path, 4096, 512, 512, 512) for q in (None, "int8")}
    # measured (context 512, stride 256): fp32 16.36, int8 16.36 (+0.01%); int8 with the LM head too +0.19%
    assert 5 < ppl[None] < 40
    assert abs(ppl["int8"] / ppl[None] - 1) < 0.02


def test_smollm2_int4_perplexity_stays_within_a_few_percent_of_fp32(smollm2_path, repo_root, tmp_path):
    text = (repo_root / "data" / "guidelines" / "bipolar-disorder.md").read_text()
    ppl = {q: smollm2_ppl(smollm2_path, text, q, "auto", tmp_path, 512, 256, 128, 256) for q in (None, "int4")}
    # measured on a whole file: +0.17% (the checkpoint is a Q4_1 GGUF, so group-32 int4 nearly reproduces it);
    # with the LM head quantized too, +7.9%
    assert abs(ppl["int4"] / ppl[None] - 1) < 0.04


def test_smollm2_int8_kv_cache_perplexity_stays_within_a_few_percent(smollm2_path, repo_root, tmp_path):
    text = (repo_root / "data" / "guidelines" / "anxiety-gad.md").read_text()
    # chunks of 64: all but each window's first chunk attend to keys and values read back from the cache
    ppl = {kv: smollm2_ppl(smollm2_path, text, None, kv, tmp_path, 384, 256, 128, 64) for kv in ("auto", "int8")}
    assert abs(ppl["int8"] / ppl["auto"] - 1) < 0.03


def test_cli_compares_quantizations_in_a_table_and_json(tiny_llama, repo_root, tmp_path):
    sample = tmp_path / "digits.txt"
    # spaced digits: SmolLM2's tokenizer (the tiny models share it) gives ids below the tiny vocabulary of 512
    g = torch.Generator().manual_seed(33)
    sample.write_text(" ".join(str(d) for d in torch.randint(0, 10, (150,), generator=g).tolist()))
    out = tmp_path / "ppl.json"
    done = subprocess.run([sys.executable, "-m", "inference.eval_ppl", "--model", str(tiny_llama), "--compare",
                           "--context", "128", "--stride", "64", "--json", str(out), "--data-dir", str(tmp_path),
                           str(sample)], capture_output=True, text=True, cwd=repo_root, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[-3:]] == ["none", "int8", "int4"]
    assert lines[-3].split()[2] == "-" and lines[-2].split()[2].endswith("%")
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"none", "int8", "int4"}
    assert results["none"]["tokens"] == results["int4"]["tokens"] > 250
    assert results["int4"]["weight_mib"] < results["int8"]["weight_mib"] < results["none"]["weight_mib"]
