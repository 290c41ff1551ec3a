"""Greedy decoding is token-for-token identical to HF transformers, whatever the batching does."""

from __future__ import annotations

import pytest
import torch
from support.models import TINY_VARIANTS, hf_greedy, random_prompts

from inference import LLM, SamplingParams

GREEDY = SamplingParams(max_tokens=24, temperature=0, ignore_eos=True)


@pytest.mark.parametrize("variant", list(TINY_VARIANTS))
def test_concurrent_greedy_matches_hf_on_random_models(tiny_models, variant, tmp_path):
    path = tiny_models[variant]
    prompts = random_prompts(6, 3, 70, seed=1)
    llm = LLM(path, data_dir=tmp_path, kv_cache_memory="16MiB")
    outs = llm.generate(prompts, GREEDY)
    assert [o.token_ids for o in outs] == hf_greedy(path, prompts, GREEDY.max_tokens)
    assert all(o.finish_reason == "length" for o in outs)
    assert llm.engine.block_manager.num_free_blocks == llm.engine.block_manager.num_blocks - 1


def test_preemption_under_a_small_kv_pool_recomputes_without_corruption(tiny_llama, tmp_path):
    prompts = random_prompts(8, 20, 60, seed=2)
    # 20 blocks of 16 tokens: far less than 8 sequences of up to 60 + 40 tokens need at once.
    kv = 20 * 2 * 2 * 16 * 2 * 16 * 4  # blocks * (k,v) * layers * block_size * kv_heads * head_dim * bytes
    llm = LLM(tiny_llama, data_dir=tmp_path, kv_cache_memory=kv, block_size=16)
    params = SamplingParams(max_tokens=40, temperature=0, ignore_eos=True)
    outs = llm.generate(prompts, params)
    assert llm.engine.scheduler.num_preemptions > 0
    assert [o.token_ids for o in outs] == hf_greedy(tiny_llama, prompts, 40)
    assert llm.engine.block_manager.num_free_blocks == llm.engine.block_manager.num_blocks - 1


def test_chunked_prefill_of_long_prompts_matches_hf(tiny_llama, tmp_path):
    prompts = random_prompts(4, 90, 200, seed=3)
    llm = LLM(tiny_llama, data_dir=tmp_path, max_num_batched_tokens=32, kv_cache_memory="16MiB")
    steps_before = llm.engine.stats["steps"]
    outs = llm.generate(prompts, GREEDY)
    assert llm.engine.stats["steps"] - steps_before > sum(len(p) for p in prompts) // 32
    assert [o.token_ids for o in outs] == hf_greedy(tiny_llama, prompts, GREEDY.max_tokens)


@pytest.mark.parametrize("prefix_caching", [True, False])
def test_shared_prefix_matches_hf_with_prefix_caching_on_and_off(tiny_models, tmp_path, prefix_caching):
    path = tiny_models["qwen2-gqa-bias"]
    shared = random_prompts(1, 50, 50, seed=4)[0]
    prompts = random_prompts(5, 4, 20, seed=5, prefix=shared)
    llm = LLM(path, data_dir=tmp_path, enable_prefix_caching=prefix_caching, kv_cache_memory="16MiB")
    # All at once: later requests share blocks the first one computes in the same step.
    together = llm.generate(prompts, GREEDY)
    assert [o.metrics.num_cached_tokens for o in together] == [0] + [48 if prefix_caching else 0] * 4
    # Later: every request finds the shared blocks (and its own earlier full blocks) still cached.
    again = llm.generate(prompts, GREEDY)
    hits = [o.metrics.num_cached_tokens for o in again]
    assert all(h >= 48 for h in hits) if prefix_caching else all(h == 0 for h in hits)
    expected = hf_greedy(path, prompts, GREEDY.max_tokens)
    assert [o.token_ids for o in together] == expected
    assert [o.token_ids for o in again] == expected


def test_logprobs_match_hf_within_tolerance(tiny_models, tmp_path):
    from transformers import AutoModelForCausalLM

    path = tiny_models["llama-mqa-untied"]
    prompt = random_prompts(1, 30, 30, seed=6)[0]
    llm = LLM(path, data_dir=tmp_path, kv_cache_memory="16MiB")
    out = llm.generate([prompt], SamplingParams(max_tokens=8, temperature=0, ignore_eos=True, logprobs=5))[0]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    with torch.inference_mode():
        full = torch.tensor([prompt + out.token_ids])
        ref = model(full).logits[0, len(prompt) - 1:-1].log_softmax(-1)
    for step, lp in enumerate(out.outputs[0].logprobs):
        assert abs(lp.logprob - ref[step, lp.token_id].item()) < 1e-4
        top_ids = [t for t, _ in lp.top]
        assert top_ids == ref[step].topk(5).indices.tolist()
        for t, v in lp.top:
            assert abs(v - ref[step, t].item()) < 1e-4


def test_real_smollm2_greedy_matches_hf_concurrently(smollm2_path, tmp_path):
    llm = LLM(smollm2_path, data_dir=tmp_path, kv_cache_memory="256MiB")
    tok = llm.tokenizer
    questions = ["What is the PHQ-9?", "How is generalized anxiety disorder treated?",
                 "List three symptoms of depression.", "Explain what a safety plan is."]
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=True,
                                       add_generation_prompt=True, return_dict=True)["input_ids"] for q in questions]
    prompts.append(tok("The primary care physician reviewed the screening results and")["input_ids"])
    params = SamplingParams(max_tokens=32, temperature=0, ignore_eos=True)
    outs = llm.generate(prompts, params)
    assert [o.token_ids for o in outs] == hf_greedy(smollm2_path, prompts, 32)
    assert all(o.text for o in outs)
