"""Read a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) into our fused layout.

Our model fuses q/k/v into `qkv_proj` and gate/up into `gate_up_proj`, so an adapter's per-projection
pairs are fused too: A matrices are concatenated along the rank ([in, n*r]) and B becomes block-diagonal
([n*r, out_total], zero where a projection has no adapter), which computes exactly the sum of the
separate LoRA updates. The LoRA scaling (alpha / r, or alpha / sqrt(r) with rsLoRA) is folded into B.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..errors import EngineError

# fused module -> the HF projections it holds, in output order
FUSED = {
    "self_attn.qkv_proj": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
    "self_attn.o_proj": ("self_attn.o_proj",),
    "mlp.gate_up_proj": ("mlp.gate_proj", "mlp.up_proj"),
    "mlp.down_proj": ("mlp.down_proj",),
}
SUPPORTED_TARGETS = {p.split(".")[-1] for parts in FUSED.values() for p in parts}
KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.((?:self_attn|mlp)\.\w+_proj)\.lora_([AB])(?:\.\w+)?\.weight$")


class AdapterError(EngineError, ValueError):
    """An adapter that cannot be loaded onto this base model; the message names what is wrong."""


@dataclass
class LoraAdapter:
    name: str
    path: Path
    rank: int
    alpha: float
    scaling: float
    # (layer index, fused module name) -> (A [in, n*r], B [n*r, out]) in float32 on the CPU
    weights: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = field(repr=False, default_factory=dict)

    @property
    def max_fused_rank(self) -> int:
        return max((a.shape[1] for a, _ in self.weights.values()), default=0)


def _config(path: Path) -> dict:
    config_path = path / "adapter_config.json"
    if not config_path.exists():
        raise AdapterError(f"{path}: no adapter_config.json (expected a PEFT LoRA adapter directory)")
    config = json.loads(config_path.read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise AdapterError(f"{path}: peft_type {config.get('peft_type')!r} is not LORA")
    if config.get("bias", "none") not in (None, "none"):
        raise AdapterError(f"{path}: bias={config['bias']!r} adapters are not supported (bias must be 'none')")
    if config.get("use_dora"):
        raise AdapterError(f"{path}: DoRA adapters are not supported")
    if config.get("modules_to_save"):
        raise AdapterError(f"{path}: modules_to_save={config['modules_to_save']} is not supported")
    targets = config.get("target_modules") or []
    if isinstance(targets, list):  # a string is a regex; the tensors themselves are checked on load
        unknown = sorted(t for t in targets if t.split(".")[-1] not in SUPPORTED_TARGETS)
        if unknown:
            raise AdapterError(f"{path}: target modules {unknown} are not supported; use {sorted(SUPPORTED_TARGETS)}")
    return config


def load_peft_adapter(path: str | Path, name: str, num_layers: int, shapes: dict[str, tuple[int, int]],
                      slices: dict[str, list[tuple[int, int]]]) -> LoraAdapter:
    """Load and fuse an adapter for a model with `num_layers` layers.

    shapes: fused module -> (in_features, out_features); slices: fused module -> [(start, end)] output
    columns of each HF projection inside the fused output.
    """
    path = Path(path)
    config = _config(path)
    weights_path = path / "adapter_model.safetensors"
    if not weights_path.exists():
        raise AdapterError(f"{path}: no adapter_model.safetensors (PyTorch .bin adapters are not loaded)")
    rank = int(config.get("r", 8))
    alpha = float(config.get("lora_alpha", rank))
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    if rank_pattern or alpha_pattern:
        raise AdapterError(f"{path}: per-module rank_pattern/alpha_pattern is not supported")
    scaling = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank

    pairs: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, tensor in load_file(str(weights_path)).items():
        match = KEY.search(key)
        if not match:
            raise AdapterError(f"{path}: tensor {key!r} is not a LoRA matrix of a supported projection")
        layer, proj, which = int(match.group(1)), match.group(2), match.group(3)
        if layer >= num_layers:
            raise AdapterError(f"{path}: tensor {key!r} names layer {layer}; the base model has {num_layers}")
        pairs.setdefault((layer, proj), {})[which] = tensor.float()

    adapter = LoraAdapter(name, path, rank, alpha, scaling)
    for layer in range(num_layers):
        for fused, projs in FUSED.items():
            present = [(j, p) for j, p in enumerate(projs) if (layer, p) in pairs]
            if not present:
                continue
            d_in, d_out = shapes[fused]
            a = torch.zeros(d_in, rank * len(present))
            b = torch.zeros(rank * len(present), d_out)
            for k, (j, proj) in enumerate(present):
                pair = pairs[(layer, proj)]
                if set(pair) != {"A", "B"}:
                    raise AdapterError(f"{path}: layer {layer} {proj} has lora_{next(iter(pair))} without its pair")
                lo, hi = slices[fused][j]
                if pair["A"].shape != (rank, d_in) or pair["B"].shape != (hi - lo, rank):
                    raise AdapterError(
                        f"{path}: layer {layer} {proj}: lora_A {tuple(pair['A'].shape)} / lora_B "
                        f"{tuple(pair['B'].shape)} do not fit r={rank}, in={d_in}, out={hi - lo}")
                a[:, k * rank:(k + 1) * rank] = pair["A"].t()
                b[k * rank:(k + 1) * rank, lo:hi] = pair["B"].t() * scaling
            adapter.weights[(layer, fused)] = (a, b)
    if not adapter.weights:
        raise AdapterError(f"{path}: the adapter holds no LoRA matrices")
    return adapter
