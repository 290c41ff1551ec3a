"""Build our model from a Hugging Face-format directory: config via transformers, weights via safetensors."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from ..errors import ModelNotFoundError, UnsupportedModelError
from ..layers.rotary import RotaryEmbedding
from ..quantization import quantize_model
from .llama import LlamaForCausalLM, ModelConfig


def read_hf_config(path: Path):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise UnsupportedModelError(f"cannot read the model config in {path}: {e}") from e


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ModelNotFoundError(f"no .safetensors weights in {path} (PyTorch .bin checkpoints are not loaded)")
    weights: dict[str, torch.Tensor] = {}
    for f in files:
        weights.update(load_file(f))
    return weights


def load_model(path: Path, dtype: torch.dtype, device: str, max_positions: int, quantization: str | None = None,
               group_size: int = 32):
    """Our model in `dtype` on `device` with the checkpoint's weights, its linear layers quantized when asked;
    returns (model, config, hf_config)."""
    hf = read_hf_config(path)
    model, cfg = build_model(hf, load_weights(path), dtype, device, max_positions, quantization, group_size)
    return model, cfg, hf


def random_hf_weights(cfg: ModelConfig, dtype: torch.dtype, device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """HF-named random weights for a config, made on `device` (seconds for an 8B model on a GPU, no files):
    normal(0, 0.02) matrices, qkv biases and norms of one, as a freshly initialised HF model has."""
    g = torch.Generator(device=device).manual_seed(seed)
    h, d, inter = cfg.hidden_size, cfg.head_dim, cfg.intermediate_size

    def normal(*shape: int) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype, device=device).normal_(0, 0.02, generator=g)

    w = {"model.embed_tokens.weight": normal(cfg.vocab_size, h),
         "model.norm.weight": torch.ones(h, dtype=dtype, device=device)}
    if not cfg.tie_word_embeddings:
        w["lm_head.weight"] = normal(cfg.vocab_size, h)
    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = torch.ones(h, dtype=dtype, device=device)
        w[p + "post_attention_layernorm.weight"] = torch.ones(h, dtype=dtype, device=device)
        for name, rows in (("q", cfg.num_heads * d), ("k", cfg.num_kv_heads * d), ("v", cfg.num_kv_heads * d)):
            w[p + f"self_attn.{name}_proj.weight"] = normal(rows, h)
            if cfg.qkv_bias:
                w[p + f"self_attn.{name}_proj.bias"] = normal(rows)
        w[p + "self_attn.o_proj.weight"] = normal(h, cfg.num_heads * d)
        if cfg.o_bias:
            w[p + "self_attn.o_proj.bias"] = normal(h)
        w[p + "mlp.gate_proj.weight"] = normal(inter, h)
        w[p + "mlp.up_proj.weight"] = normal(inter, h)
        w[p + "mlp.down_proj.weight"] = normal(h, inter)
    return w


def build_model(hf, weights: dict[str, torch.Tensor] | None, dtype: torch.dtype, device: str, max_positions: int,
                quantization: str | None = None, group_size: int = 32, seed: int = 0):
    """Our model for a transformers config with HF-named `weights` (random ones when None), in `dtype` on
    `device`, its linear layers quantized when asked; returns (model, config). Empties the `weights` dict, so
    no float copy outlives the loading."""
    cfg = ModelConfig.from_hf(hf)
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg, max_positions)
    model = model.to_empty(device=device).to(dtype)
    model.rotary = RotaryEmbedding(cfg.head_dim, max_positions, cfg.rope_theta, cfg.rope_scaling).to(device)
    if weights is None:
        weights = random_hf_weights(cfg, dtype, device, seed)
    for name in list(weights):  # converted in place, so each source tensor is freed as soon as it is replaced
        weights[name] = weights[name].to(dtype)
    model.load_hf_state_dict(weights)
    weights.clear()
    if quantization is not None:
        quantize_model(model, quantization, group_size)
    if device.startswith("cuda"):
        # freed float weights (random ones, or those quantization replaced) sit in the caching allocator:
        # hand them back before the engine sizes the KV cache from the device's free memory
        torch.cuda.empty_cache()
    model.eval().requires_grad_(False)
    return model, cfg
