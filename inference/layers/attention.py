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
    block_table: torch.Tensor | None  # [num_blocks] of the whole context; None when nothing is cached
    mask: torch.Tensor | None  # [q_len, ctx_len] bool (True = attend) when a cached prefix exists


@dataclass
class DecodeChunk:
    """Single-token queries in rows [start, start + B) of the step, attended to in one call."""

    start: int
    block_tables: torch.Tensor  # [B, max_blocks], padded with the zeroed block 0
    mask: torch.Tensor | None  # [B, 1, 1, max_blocks * block_size] bool (True = attend); None if unpadded


# Decodes are attended to in chunks of sequences (sorted by length by the scheduler): the gathered blocks
# stay small enough for the reused heap, and padding stays short.
DECODE_CHUNK = 32


def write_kv(k_cache: torch.Tensor, v_cache: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
             slots: torch.Tensor) -> None:
    """Store new keys/values [T, kv_heads, head_dim] at flat cache slots [T]."""
    # contiguous sources: index_copy_ from a strided view of the fused qkv output is ~30x slower on CPU
    k_cache.view(-1, *k_cache.shape[2:]).index_copy_(0, slots, k.contiguous())
    v_cache.view(-1, *v_cache.shape[2:]).index_copy_(0, slots, v.contiguous())


def gather_blocks(cache: torch.Tensor, block_tables: torch.Tensor) -> torch.Tensor:
    """Keys or values [B, kv_heads, max_blocks * block_size, head_dim] (a strided view) for block tables
    [B, max_blocks]. Whole blocks are copied, which is far cheaper than gathering token by token."""
    b, nb = block_tables.shape
    blocks = cache.index_select(0, block_tables.reshape(-1))  # 5x faster than cache[block_tables] on CPU
    return blocks.view(b, nb * cache.shape[1], *cache.shape[2:]).transpose(1, 2)


def paged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor,
                    v_cache: torch.Tensor, meta: AttentionMetadata, scale: float) -> torch.Tensor:
    """Attention output [T, heads, head_dim] for queries q [T, heads, head_dim]; writes k, v to the cache."""
    write_kv(k_cache, v_cache, k, v, meta.slot_mapping)
    out = torch.empty_like(q)
    for span in meta.prefills:
        rows = slice(span.start, span.start + span.q_len)
        if span.block_table is None:
            keys, values = k[rows].transpose(0, 1).unsqueeze(0), v[rows].transpose(0, 1).unsqueeze(0)
        else:
            table = span.block_table[None]
            keys = gather_blocks(k_cache, table)[:, :, : span.ctx_len]
            values = gather_blocks(v_cache, table)[:, :, : span.ctx_len]
        o = F.scaled_dot_product_attention(
            q[rows].transpose(0, 1).unsqueeze(0),
            keys,
            values,
            attn_mask=span.mask,
            is_causal=span.mask is None,
            scale=scale,
            enable_gqa=True,
        )
        out[rows] = o.squeeze(0).transpose(0, 1)
    for chunk in meta.decodes:
        rows = slice(chunk.start, chunk.start + chunk.block_tables.shape[0])
        o = F.scaled_dot_product_attention(
            q[rows].unsqueeze(2),
            gather_blocks(k_cache, chunk.block_tables),
            gather_blocks(v_cache, chunk.block_tables),
            attn_mask=chunk.mask, scale=scale, enable_gqa=True,
        )
        out[rows] = o.squeeze(2)
    return out


@dataclass
class AttentionMetadata:
    """Shared by all layers of one step; built once by the model runner."""

    slot_mapping: torch.Tensor  # [T] where each new token's K/V is written
    prefills: list[PrefillSpan] = field(default_factory=list)
    num_prefill_tokens: int = 0
    decodes: list[DecodeChunk] = field(default_factory=list)
