"""An engine built from a transformers config and weights in memory: no checkpoint, no tokenizer."""

from __future__ import annotations

import pytest
import torch
from support.models import random_prompts

from inference import LLM, InvalidParameterError, SamplingParams
from inference.models.llama import ModelConfig
from inference.models.loader import random_hf_weights


def tiny_config(kind: str = "llama"):
    from transformers import LlamaConfig, Qwen2Config

    common = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, initializer_range=0.3)
    return Qwen2Config(**common, tie_word_embeddings=False) if kind == "qwen2" else \
        LlamaConfig(**common, tie_word_embeddings=True)


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_hf_weights_in_memory_generate_what_hf_generates(kind, tmp_path):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    cfg = tiny_config(kind)
    hf = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    hf.generation_config.eos_token_id = None
    prompts = random_prompts(3, 3, 30, vocab=256, seed=1)
    llm = LLM.from_hf_config(cfg, dict(hf.state_dict()), data_dir=tmp_path, kv_cache_memory="4MiB")
    outs = llm.generate(prompts, SamplingParams(max_tokens=12, temperature=0, ignore_eos=True))
    with torch.inference_mode():
        expected = [hf.generate(input_ids=torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                max_new_tokens=12, do_sample=False, pad_token_id=0)[0, len(p):].tolist()
                    for p in prompts]
    assert [o.token_ids for o in outs] == expected
    assert all(o.text == "" for o in outs)  # no tokenizer, no text


def test_random_weights_need_no_files_and_prompts_must_be_token_ids(tmp_path):
    llm = LLM.from_hf_config(tiny_config(), None, data_dir=tmp_path, kv_cache_memory="4MiB")
    out = llm.generate([[5, 6, 7]], SamplingParams(max_tokens=4, temperature=0, ignore_eos=True))[0]
    assert len(out.token_ids) == 4 and out.finish_reason == "length"
    with pytest.raises(InvalidParameterError, match="no tokenizer"):
        llm.generate("The PHQ-9 is")


def test_random_weights_look_like_a_fresh_hf_initialisation():
    from transformers import Qwen2Config

    cfg = ModelConfig.from_hf(Qwen2Config(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=1,
                                          num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False))
    w = random_hf_weights(cfg, torch.float32, "cpu", seed=3)
    assert w["model.layers.0.self_attn.q_proj.bias"].shape == (64,)  # Qwen2's qkv biases
    assert w["lm_head.weight"].shape == (300, 64)
    assert 0.018 < w["model.layers.0.mlp.gate_proj.weight"].std() < 0.022
    assert torch.equal(w["model.norm.weight"], torch.ones(64))
    assert torch.equal(w["model.embed_tokens.weight"], random_hf_weights(cfg, torch.float32, "cpu", seed=3)[
        "model.embed_tokens.weight"])
