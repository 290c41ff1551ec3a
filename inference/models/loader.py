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
    cfg = ModelConfig.from_hf(hf)
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg, max_positions)
    model = model.to_empty(device=device).to(dtype)
    model.rotary = RotaryEmbedding(cfg.head_dim, max_positions, cfg.rope_theta, cfg.rope_scaling).to(device)
    weights = {k: v.to(dtype) for k, v in load_weights(path).items()}
    model.load_hf_state_dict(weights)
    del weights
    if quantization is not None:
        quantize_model(model, quantization, group_size)
        if device.startswith("cuda"):
            # the replaced float weights sit in the caching allocator: hand them back before the engine
            # sizes the KV cache from the device's free memory
            torch.cuda.empty_cache()
    model.eval().requires_grad_(False)
    return model, cfg, hf
