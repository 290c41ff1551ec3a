"""Multi-LoRA: PEFT adapters served unmerged, mixed with the base model in one batch, token-for-token."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.lora import make_adapter, peft_greedy
from support.models import random_prompts

from inference import LLM, InvalidParameterError, SamplingParams
from inference.lora.adapter import AdapterError

GREEDY = SamplingParams(max_tokens=16, temperature=0, ignore_eos=True)
@pytest.fixture(scope="module")
def adapters(tiny_models, tmp_path_factory) -> dict[str, Path]:
    base = tiny_models["llama-gqa-tied"]
    root = tmp_path_factory.mktemp("adapters")
    return {"alpha": make_adapter(base, root / "alpha", seed=1),
            "beta": make_adapter(base, root / "beta", seed=2, rank=8, targets=["q_proj", "v_proj", "down_proj"])}


def test_a_mixed_batch_of_two_adapters_and_the_base_model_matches_peft(tiny_models, adapters, tmp_path):
    base = tiny_models["llama-gqa-tied"]
    prompts = random_prompts(6, 5, 40, seed=7)
    names = ["alpha", None, "beta", "alpha", "beta", None]
    llm = LLM(base, data_dir=tmp_path, kv_cache_memory="16MiB", enable_lora=True, max_loras=2, max_lora_rank=8)
    llm.add_lora("alpha", adapters["alpha"])
    llm.add_lora("beta", adapters["beta"])
    outs = llm.generate(prompts, GREEDY, lora_name=names)
    expected = {n: peft_greedy(base, adapters[n] if n else None, prompts, GREEDY.max_tokens)
                for n in ("alpha", "beta", None)}
    assert [o.token_ids for o in outs] == [expected[n][i] for i, n in enumerate(names)]
    assert expected["alpha"] != expected[None]  # the adapters really change the output


def test_more_adapters_than_slots_are_served_in_turn_with_lru_eviction(tiny_models, adapters, tmp_path):
    base = tiny_models["llama-gqa-tied"]
    prompts = random_prompts(4, 5, 20, seed=8)
    names = ["alpha", "beta", "alpha", "beta"]
    llm = LLM(base, data_dir=tmp_path, kv_cache_memory="16MiB", enable_lora=True, max_loras=1, max_lora_rank=8)
    llm.add_lora("alpha", adapters["alpha"])
    llm.add_lora("beta", adapters["beta"])
    outs = llm.generate(prompts, GREEDY, lora_name=names)
    for i, n in enumerate(names):
        assert outs[i].token_ids == peft_greedy(base, adapters[n], [prompts[i]], GREEDY.max_tokens)[0]


def test_prefix_cache_is_not_shared_between_an_adapter_and_the_base_model(tiny_models, adapters, tmp_path):
    base = tiny_models["llama-gqa-tied"]
    prompt = random_prompts(1, 64, 64, seed=9)
    llm = LLM(base, data_dir=tmp_path, kv_cache_memory="16MiB", enable_lora=True, max_loras=2, max_lora_rank=8)
    llm.add_lora("alpha", adapters["alpha"])
    base_out = llm.generate(prompt, GREEDY)[0].token_ids
    lora_out = llm.generate(prompt, GREEDY, lora_name="alpha")[0].token_ids
    assert lora_out == peft_greedy(base, adapters["alpha"], prompt, GREEDY.max_tokens)[0]
    assert base_out == peft_greedy(base, None, prompt, GREEDY.max_tokens)[0]


def test_hot_unload_and_reload(tiny_models, adapters, tmp_path):
    llm = LLM(tiny_models["llama-gqa-tied"], data_dir=tmp_path, kv_cache_memory="16MiB", enable_lora=True,
              max_loras=2, max_lora_rank=8)
    llm.add_lora("alpha", adapters["alpha"])
    first = llm.generate([[5, 6, 7]], GREEDY, lora_name="alpha")[0].token_ids
    llm.remove_lora("alpha")
    assert llm.list_loras() == []
    with pytest.raises(InvalidParameterError, match="alpha"):
        llm.generate([[5, 6, 7]], GREEDY, lora_name="alpha")
    llm.add_lora("alpha", adapters["alpha"])
    assert llm.generate([[5, 6, 7]], GREEDY, lora_name="alpha")[0].token_ids == first


def test_bad_adapters_are_refused_with_the_reason(tiny_models, adapters, tmp_path):
    base = tiny_models["llama-gqa-tied"]
    llm = LLM(base, data_dir=tmp_path, kv_cache_memory="16MiB", enable_lora=True, max_loras=1, max_lora_rank=4)
    with pytest.raises(AdapterError, match="max_lora_rank"):
        llm.add_lora("beta", adapters["beta"])  # rank 8 > 4
    with pytest.raises(AdapterError, match="adapter_config.json"):
        llm.add_lora("empty", tmp_path)
    dora = make_adapter(base, tmp_path / "dora", seed=3, use_dora=True)
    with pytest.raises(AdapterError, match="DoRA"):
        llm.add_lora("dora", dora)
    with pytest.raises(InvalidParameterError, match="lora_name"):
        llm.add_lora("../etc", adapters["alpha"])


def test_lora_requests_need_lora_enabled(tiny_models, adapters, tmp_path):
    llm = LLM(tiny_models["llama-gqa-tied"], data_dir=tmp_path, kv_cache_memory="16MiB")
    with pytest.raises(InvalidParameterError, match="enable_lora"):
        llm.add_lora("alpha", adapters["alpha"])


def test_adapters_apply_on_a_quantized_base_model(tiny_models, adapters, tmp_path):
    base = tiny_models["llama-gqa-tied"]
    prompts = random_prompts(2, 5, 20, seed=10)
    plain = LLM(base, data_dir=tmp_path, kv_cache_memory="16MiB", quantization="int8")
    expected_base = [o.token_ids for o in plain.generate(prompts, GREEDY)]
    llm = LLM(base, data_dir=tmp_path, kv_cache_memory="16MiB", quantization="int8", enable_lora=True,
              max_loras=1, max_lora_rank=8)
    llm.add_lora("alpha", adapters["alpha"])
    outs = llm.generate(prompts, GREEDY, lora_name=["alpha", None])
    assert outs[1].token_ids == expected_base[1]  # base rows are untouched by the wrapper
    assert outs[0].token_ids != expected_base[0]
