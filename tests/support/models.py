"""Test helpers: random tiny HF checkpoints, the HF greedy oracle, seeded random prompts."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch


def build_tiny_model(out: Path, kind: str, tokenizer_src: Path, *, heads: int = 4, kv_heads: int = 2,
                     tied: bool = True, rope_scaling: dict | None = None, seed: int = 0) -> Path:
    """Save a randomly initialised tiny model (with the SmolLM2 tokenizer files) in HF format."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    common = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=1024,
                  initializer_range=0.3, tie_word_embeddings=tied, eos_token_id=2, bos_token_id=1,
                  pad_token_id=0, rms_norm_eps=1e-5)
    if kind == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common, rope_theta=1e6))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("_proj.bias"):
                    p.normal_(0, 0.5)
    else:
        cfg = LlamaConfig(**common, rope_theta=10000.0)
        if rope_scaling:
            cfg.rope_parameters = {"rope_type": "llama3", "rope_theta": 500000.0, **rope_scaling}
        model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # norms away from 1 so every weight matters
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    model.save_pretrained(out, safe_serialization=True)
    for f in tokenizer_src.iterdir():
        if f.name.startswith("tokenizer") or f.name.endswith(".jinja") or f.name == "special_tokens_map.json":
            shutil.copy(f, out / f.name)
    return out


TINY_VARIANTS = {
    "llama-gqa-tied": dict(kind="llama", heads=4, kv_heads=2, tied=True),
    "llama-mqa-untied": dict(kind="llama", heads=4, kv_heads=1, tied=False),
    "llama-mha": dict(kind="llama", heads=4, kv_heads=4, tied=True),
    "llama3-rope-scaling": dict(kind="llama", heads=8, kv_heads=2, tied=False,
                                rope_scaling={"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                              "original_max_position_embeddings": 64}),
    "qwen2-gqa-bias": dict(kind="qwen2", heads=4, kv_heads=2, tied=False),
    "qwen2-mqa-tied": dict(kind="qwen2", heads=4, kv_heads=1, tied=True),
}



def hf_greedy(model_path: Path, prompts: list[list[int]], max_new_tokens: int) -> list[list[int]]:
    """HF transformers greedy continuation of each prompt on its own (the oracle)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None
    outs = []
    with torch.inference_mode():
        for p in prompts:
            ids = torch.tensor([p])
            o = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                               do_sample=False, pad_token_id=0)
            outs.append(o[0, len(p):].tolist())
    return outs


def random_prompts(n: int, lo: int, hi: int, vocab: int = 512, seed: int = 0, prefix: list[int] | None = None):
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(lo, hi + 1, (n,), generator=g).tolist()
    return [(prefix or []) + torch.randint(3, vocab, (k,), generator=g).tolist() for k in lens]
