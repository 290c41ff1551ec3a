"""Attention over the paged KV cache.

The KV cache of one layer is a pair of tensors [num_blocks, block_size, kv_heads, head_dim]. A step's
tokens arrive flattened: the prefill chunks first (each attends causally to its own cached context),
then the single-token queries (decodes), which are batched into one call over gathered blocks.
`paged_attention` is the one device-dispatch point. The torch path below serves the CPU (and is the
reference); on CUDA the model runner builds metadata for the Triton kernels of kernels/paged_attention.py
instead (`DecodeChunk.context_lens`, `AttentionMetadata.paged_prefill`), and their presence selects them.

A cache may also be stored smaller than the model dtype (EngineConfig.kv_cache_dtype): "int8" keeps an
`Int8KV` (int8 values plus a float32 absmax scale per token and KV head), "fp8" an e4m3 tensor (CUDA,
compute capability >= 8.9). Keys and values are quantized as they are written and dequantized, whole
blocks at a time, as they are gathered; a fresh prompt's first chunk attends to its own unquantized keys.
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
    context_lens: torch.Tensor | None = None  # [B] cached tokens per sequence: the Triton kernel serves the chunk


@dataclass
class PagedPrefill:
    """Every prefill chunk of a step, for the Triton kernel, which reads all keys (new ones too) from the cache."""

    q_starts: torch.Tensor  # [S] each chunk's first row in the step
    q_lens: torch.Tensor  # [S] its query tokens
    ctx_lens: torch.Tensor  # [S] its sequence's tokens in the cache once this step's keys are written
    block_tables: torch.Tensor  # [S, max_blocks]
    max_q_len: int


# Decodes are attended to in chunks of sequences (sorted by length by the scheduler): the gathered blocks
# stay small enough for the reused heap, and padding stays short.
DECODE_CHUNK = 32


@dataclass
class Int8KV:
    """One layer's int8 keys (or values): x ~= data * scale, with the scale the absmax / 127 of each
    token's head vector."""

    data: torch.Tensor  # [num_blocks, block_size, kv_heads, head_dim] int8
    scale: torch.Tensor  # [num_blocks, block_size, kv_heads] float32


KVCache = torch.Tensor | Int8KV  # a tensor in the model dtype or float8_e4m3fn, or int8 with scales


def quantize_int8_kv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 values [T, kv_heads, head_dim] and float32 scales [T, kv_heads] for keys or values x."""
    x = x.float()
    scale = x.abs().amax(dim=-1) / 127
    q = torch.round(x / scale.clamp(min=1e-30).unsqueeze(-1)).clamp_(-127, 127).to(torch.int8)
    return q, scale


def _write(cache: KVCache, x: torch.Tensor, slots: torch.Tensor) -> None:
    if isinstance(cache, Int8KV):
        q, scale = quantize_int8_kv(x)
        cache.data.view(-1, *cache.data.shape[2:]).index_copy_(0, slots, q)
        cache.scale.view(-1, cache.scale.shape[2]).index_copy_(0, slots, scale)
    elif cache.dtype == torch.float8_e4m3fn:
        # e4m3 has no infinity: clamp so outliers saturate instead of turning into NaN. The copy goes through
        # uint8 views because index ops are not implemented for float8 on every backend.
        fp8 = x.clamp(-448.0, 448.0).to(torch.float8_e4m3fn)
        cache.view(torch.uint8).view(-1, *cache.shape[2:]).index_copy_(0, slots, fp8.view(torch.uint8))
    else:
        # contiguous sources: index_copy_ from a strided view of the fused qkv output is ~30x slower on CPU
        cache.view(-1, *cache.shape[2:]).index_copy_(0, slots, x.contiguous())


def write_kv(k_cache: KVCache, v_cache: KVCache, k: torch.Tensor, v: torch.Tensor, slots: torch.Tensor) -> None:
    """Store new keys/values [T, kv_heads, head_dim] at flat cache slots [T], quantizing for a smaller cache."""
    _write(k_cache, k, slots)
    _write(v_cache, v, slots)


def gather_blocks(cache: KVCache, block_tables: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Keys or values [B, kv_heads, max_blocks * block_size, head_dim] in `dtype` (a strided view) for block
    tables [B, max_blocks]. Whole blocks are copied, which is far cheaper than gathering token by token."""
    b, nb = block_tables.shape
    ids = block_tables.reshape(-1)
    if isinstance(cache, Int8KV):
        data, scale = cache.data.index_select(0, ids), cache.scale.index_select(0, ids)
        blocks = data.to(dtype) * scale.to(dtype).unsqueeze(-1)
    elif cache.dtype == torch.float8_e4m3fn:
        blocks = cache.view(torch.uint8).index_select(0, ids).view(torch.float8_e4m3fn).to(dtype)
    else:
        blocks = cache.index_select(0, ids).to(dtype)  # 5x faster than cache[block_tables] on CPU
    return blocks.view(b, nb * blocks.shape[1], *blocks.shape[2:]).transpose(1, 2)


def paged_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: KVCache, v_cache: KVCache,
                    meta: AttentionMetadata, scale: float) -> torch.Tensor:
    """Attention output [T, heads, head_dim] for queries q [T, heads, head_dim]; writes k, v to the cache."""
    write_kv(k_cache, v_cache, k, v, meta.slot_mapping)
    out = torch.empty_like(q)
    if meta.paged_prefill is not None:
        _kernel_prefill(q, k_cache, v_cache, meta.paged_prefill, scale, out)
    for span in meta.prefills:
        rows = slice(span.start, span.start + span.q_len)
        if span.block_table is None:
            keys, values = k[rows].transpose(0, 1).unsqueeze(0), v[rows].transpose(0, 1).unsqueeze(0)
        else:
            table = span.block_table[None]
            keys = gather_blocks(k_cache, table, q.dtype)[:, :, : span.ctx_len]
            values = gather_blocks(v_cache, table, q.dtype)[:, :, : span.ctx_len]
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
        if chunk.context_lens is not None:
            _kernel_decode(q[rows], k_cache, v_cache, chunk, scale, out[rows])
            continue
        o = F.scaled_dot_product_attention(
            q[rows].unsqueeze(2),
            gather_blocks(k_cache, chunk.block_tables, q.dtype),
            gather_blocks(v_cache, chunk.block_tables, q.dtype),
            attn_mask=chunk.mask, scale=scale, enable_gqa=True,
        )
        out[rows] = o.squeeze(2)
    return out


def _kernel_decode(q: torch.Tensor, k_cache: KVCache, v_cache: KVCache, chunk: DecodeChunk, scale: float,
                   out: torch.Tensor) -> None:
    from ..kernels.paged_attention import paged_decode  # imports triton, so only on this path

    if isinstance(k_cache, Int8KV):
        paged_decode(q, k_cache.data, v_cache.data, chunk.block_tables, chunk.context_lens, scale, out,
                     k_scale=k_cache.scale, v_scale=v_cache.scale)
    else:
        paged_decode(q, k_cache, v_cache, chunk.block_tables, chunk.context_lens, scale, out)


def _kernel_prefill(q: torch.Tensor, k_cache: KVCache, v_cache: KVCache, p: PagedPrefill, scale: float,
                    out: torch.Tensor) -> None:
    from ..kernels.paged_attention import paged_prefill

    paged_prefill(q, k_cache, v_cache, p.block_tables, p.q_starts, p.q_lens, p.ctx_lens, p.max_q_len, scale, out)


@dataclass
class AttentionMetadata:
    """Shared by all layers of one step; built once by the model runner."""

    slot_mapping: torch.Tensor  # [T] where each new token's K/V is written
    prefills: list[PrefillSpan] = field(default_factory=list)
    num_prefill_tokens: int = 0
    decodes: list[DecodeChunk] = field(default_factory=list)
    paged_prefill: PagedPrefill | None = None  # set instead of `prefills` when the Triton kernel serves them
