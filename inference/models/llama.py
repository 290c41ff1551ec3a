"""Llama-family decoder (Llama 2/3, SmolLM2, Mistral without sliding window, Qwen2 with qkv bias).

One plain file in the gpt-fast spirit: q/k/v and gate/up projections are fused into single linears at
load time; attention goes through the paged KV cache (layers/attention.py). Each layer hands its output
and the residual stream to the next norm, which adds them (one fused Triton kernel on CUDA, see kernels/).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import kernels
from ..errors import UnsupportedModelError
from ..layers.attention import AttentionMetadata, paged_attention
from ..layers.linear import Linear
from ..layers.rotary import RotaryEmbedding, rotate

SUPPORTED = ("llama", "mistral", "qwen2")


@dataclass
class ModelConfig:
    model_type: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: dict | None
    max_position_embeddings: int
    tie_word_embeddings: bool
    qkv_bias: bool
    o_bias: bool

    @classmethod
    def from_hf(cls, hf) -> ModelConfig:
        """Our config from a transformers PretrainedConfig; refuses what the engine does not implement."""
        mt = hf.model_type
        if mt not in SUPPORTED:
            raise UnsupportedModelError(f"architecture {mt!r} is not supported; supported: {', '.join(SUPPORTED)}")
        if getattr(hf, "hidden_act", "silu") != "silu":
            raise UnsupportedModelError(f"activation {hf.hidden_act!r} is not supported (silu only)")
        if getattr(hf, "mlp_bias", False):
            raise UnsupportedModelError("MLP biases are not supported")
        window = getattr(hf, "sliding_window", None)
        if mt == "qwen2" and not getattr(hf, "use_sliding_window", False):
            window = None
        if window is not None and window < hf.max_position_embeddings:
            raise UnsupportedModelError(f"sliding-window attention (window {window}) is not supported")
        params = getattr(hf, "rope_parameters", None) or {}
        theta = params.get("rope_theta", getattr(hf, "rope_theta", 10000.0))
        scaling = getattr(hf, "rope_scaling", None) or params
        heads = hf.num_attention_heads
        return cls(
            model_type=mt,
            vocab_size=hf.vocab_size,
            hidden_size=hf.hidden_size,
            intermediate_size=hf.intermediate_size,
            num_layers=hf.num_hidden_layers,
            num_heads=heads,
            num_kv_heads=getattr(hf, "num_key_value_heads", None) or heads,
            head_dim=getattr(hf, "head_dim", None) or hf.hidden_size // heads,
            rms_norm_eps=hf.rms_norm_eps,
            rope_theta=float(theta),
            rope_scaling=scaling if scaling and scaling.get("rope_type", "default") != "default" else None,
            max_position_embeddings=hf.max_position_embeddings,
            tie_word_embeddings=bool(getattr(hf, "tie_word_embeddings", False)),
            qkv_bias=mt == "qwen2" or bool(getattr(hf, "attention_bias", False)),
            o_bias=mt != "qwen2" and bool(getattr(hf, "attention_bias", False)),
        )


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None):
        """norm(x); with a residual, (norm(x + residual), x + residual)."""
        if kernels.active(x):
            from ..kernels.rms_norm import rms_norm

            return rms_norm(x, self.weight, self.eps, residual)
        if residual is not None:
            x = x + residual
            return self._norm(x), x
        return self._norm(x)

    def _norm(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_size = cfg.num_heads * cfg.head_dim
        self.kv_size = cfg.num_kv_heads * cfg.head_dim
        self.qkv_proj = Linear(cfg.hidden_size, self.q_size + 2 * self.kv_size, bias=cfg.qkv_bias)
        self.o_proj = Linear(self.q_size, cfg.hidden_size, bias=cfg.o_bias)
        self.scale = cfg.head_dim**-0.5

    def forward(self, x, rope, kv_cache, meta: AttentionMetadata):
        qkv = self.qkv_proj(x).view(-1, self.num_heads + 2 * self.num_kv_heads, self.head_dim)
        qk = rotate(qkv[:, : self.num_heads + self.num_kv_heads], *rope)  # q and k in one pass
        q, k = qk[:, : self.num_heads], qk[:, self.num_heads:]
        v = qkv[:, self.num_heads + self.num_kv_heads:]
        o = paged_attention(q, k, v, kv_cache[0], kv_cache[1], meta, self.scale)
        return self.o_proj(o.reshape(-1, self.q_size))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.inter = cfg.intermediate_size
        self.gate_up_proj = Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.down_proj = Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        gate, up = self.gate_up_proj(x).split(self.inter, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, residual, rope, kv_cache, meta):
        """(output, residual): the caller's next norm adds them, as the first layer's norm needs no add."""
        if residual is None:
            h, residual = self.input_layernorm(x), x
        else:
            h, residual = self.input_layernorm(x, residual)
        h, residual = self.post_attention_layernorm(self.self_attn(h, rope, kv_cache, meta), residual)
        return self.mlp(h), residual


class LlamaForCausalLM(nn.Module):
    """forward(token ids [T], positions [T]) -> hidden states [T, hidden]; logits(hidden) -> [N, vocab]."""

    def __init__(self, cfg: ModelConfig, max_positions: int):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.rotary = RotaryEmbedding(cfg.head_dim, max_positions, cfg.rope_theta, cfg.rope_scaling)
        # A tied head keeps its own transposed copy: streaming [hidden, vocab] is ~2x faster on CPU.
        self.lm_head = Linear(cfg.hidden_size, cfg.vocab_size, bias=False)

    def forward(self, input_ids, positions, kv_caches, meta: AttentionMetadata) -> torch.Tensor:
        x = self.embed_tokens(input_ids)
        rope = self.rotary.cos_sin(positions, x.dtype)
        residual = None
        for layer, kv in zip(self.layers, kv_caches, strict=True):
            x, residual = layer(x, residual, rope, kv, meta)
        return self.norm(x, residual)[0] if residual is not None else self.norm(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden).float()

    def load_hf_state_dict(self, weights: dict[str, torch.Tensor]) -> None:
        """Copy HF-named weights in, fusing q/k/v and gate/up; raises on any missing or unexpected name."""
        own = dict(self.named_parameters())
        remaining = dict(weights)

        def take(name: str) -> torch.Tensor:
            if name not in remaining:
                raise UnsupportedModelError(f"weight {name!r} is missing from the checkpoint")
            return remaining.pop(name)

        def put(name: str, tensor: torch.Tensor) -> None:
            param = own.pop(name)
            if param.shape != tensor.shape:
                raise UnsupportedModelError(f"weight {name}: shape {tuple(tensor.shape)} != {tuple(param.shape)}")
            with torch.no_grad():
                param.copy_(tensor)

        def put_linear(prefix: str, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
            put(prefix + ".weight_t", weight.t())
            if bias is not None:
                put(prefix + ".bias", bias)

        put("embed_tokens.weight", take("model.embed_tokens.weight"))
        put("norm.weight", take("model.norm.weight"))
        for i in range(self.cfg.num_layers):
            p = f"model.layers.{i}."
            put(f"layers.{i}.input_layernorm.weight", take(p + "input_layernorm.weight"))
            put(f"layers.{i}.post_attention_layernorm.weight", take(p + "post_attention_layernorm.weight"))
            a = p + "self_attn."
            qkv_bias = torch.cat([take(a + f"{n}_proj.bias") for n in "qkv"]) if self.cfg.qkv_bias else None
            put_linear(f"layers.{i}.self_attn.qkv_proj",
                       torch.cat([take(a + f"{n}_proj.weight") for n in "qkv"]), qkv_bias)
            put_linear(f"layers.{i}.self_attn.o_proj", take(a + "o_proj.weight"),
                       take(a + "o_proj.bias") if self.cfg.o_bias else None)
            m = p + "mlp."
            put_linear(f"layers.{i}.mlp.gate_up_proj",
                       torch.cat([take(m + "gate_proj.weight"), take(m + "up_proj.weight")]))
            put_linear(f"layers.{i}.mlp.down_proj", take(m + "down_proj.weight"))
        if self.cfg.tie_word_embeddings:
            remaining.pop("lm_head.weight", None)
            put_linear("lm_head", self.embed_tokens.weight.detach())
        else:
            put_linear("lm_head", take("lm_head.weight"))
        remaining = {k: v for k, v in remaining.items() if "rotary_emb" not in k}
        if remaining or own:
            raise UnsupportedModelError(
                f"checkpoint does not match the architecture: unexpected {sorted(remaining)[:5]}, "
                f"missing {sorted(own)[:5]}"
            )
