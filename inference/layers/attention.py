"""Attention over the paged KV cache.

The KV cache of one layer is a pair of tensors [num_blocks, block_size, kv_heads, head_dim]. A step's
tokens arrive flattened: the prefill chunks first (each attends causally to its own cached context),
then the single-token queries (decodes), which are batched into one call over gathered blocks.
`paged_attention` is the one device-dispatch point: CPU and CUDA share the torch path today; fused
CUDA kernels plug in here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class PrefillSpan:
    """One sequence's chunk of query tokens: rows [start, start+q_len) of the step, ctx_len keys."""

    start: int
    q_len: int
    ctx_len: int
    slots: torch.Tensor | None  # [ctx_len] cache slots of the whole context; None when nothing is cached
    mask: torch.Tensor | None  # [q_len, ctx_len] bool (True = attend) when a cached prefix exists


@dataclass
class AttentionMetadata:
    """Shared by all layers of one step; built once by the model runner."""

    slot_mapping: torch.Tensor  # [T] where each new token's K/V is written
    prefills: list[PrefillSpan] = field(default_factory=list)
    num_prefill_tokens: int = 0
    decode_slots: torch.Tensor | None = None  # [B, max_ctx] cache slots, padded
    decode_mask: torch.Tensor | None = None  # [B, 1, 1, max_ctx] bool (True = attend)


def write_kv(k_cache: torch.Tensor, v_cache: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
             slots: torch.Tensor) -> None:
    """Store new keys/values [T, kv_heads, head_dim] at flat cache slots [T]."""
    k_cache.view(-1, *k_cache.shape[2:]).index_copy_(0, slots, k)
    v_cache.view(-1, *v_cache.shape[2:]).index_copy_(0, slots, v)


def paged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor,
                    v_cache: torch.Tensor, meta: AttentionMetadata, scale: float) -> torch.Tensor:
    """Attention output [T, heads, head_dim] for queries q [T, heads, head_dim]; writes k, v to the cache."""
    write_kv(k_cache, v_cache, k, v, meta.slot_mapping)
    k_flat = k_cache.view(-1, *k_cache.shape[2:])
    v_flat = v_cache.view(-1, *v_cache.shape[2:])
    out = torch.empty_like(q)
    for span in meta.prefills:
        rows = slice(span.start, span.start + span.q_len)
        if span.slots is None:
            keys, values = k[rows], v[rows]
        else:
            keys, values = k_flat[span.slots], v_flat[span.slots]
        o = F.scaled_dot_product_attention(
            q[rows].transpose(0, 1).unsqueeze(0),
            keys.transpose(0, 1).unsqueeze(0),
            values.transpose(0, 1).unsqueeze(0),
            attn_mask=span.mask,
            is_causal=span.mask is None,
            scale=scale,
            enable_gqa=True,
        )
        out[rows] = o.squeeze(0).transpose(0, 1)
    if meta.decode_slots is not None:
        rows = slice(meta.num_prefill_tokens, q.shape[0])
        keys = k_flat[meta.decode_slots].transpose(1, 2)  # [B, kv_heads, ctx, head_dim]
        values = v_flat[meta.decode_slots].transpose(1, 2)
        o = F.scaled_dot_product_attention(
            q[rows].unsqueeze(2), keys, values, attn_mask=meta.decode_mask, scale=scale, enable_gqa=True
        )
        out[rows] = o.squeeze(2)
    return out
