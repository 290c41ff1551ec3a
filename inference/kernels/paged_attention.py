"""Triton attention over the paged KV cache: decode (one query per sequence) and chunked prefill.

Both read keys and values token by token through a block table: token t of a sequence lives in block
`block_table[t // block_size]`, slot `t % block_size`, of a cache [num_blocks, block_size, kv_heads, head_dim].
Scores and the softmax run in float32 with the online (flash) rescaling; the matrix products take the
model dtype (bf16/fp16) and accumulate in float32, or stay in IEEE float32 for float32 models and on the CPU
interpreter (whose bf16 `tl.dot` is wrong).

- `paged_decode`: one program per (sequence, KV head, context split) serves every query head of that KV
  head (GQA) with one `tl.dot`; long contexts are split so a small batch still fills the GPU, and a second
  kernel merges the splits by their log-sum-exp (flash decoding). Only tensors are read for lengths, so a
  decode step can be captured in a CUDA graph. Caches: the model dtype, float8 e4m3, or int8 with a float32
  scale per token and KV head (`Int8KV`), dequantized as loaded.
- `paged_prefill`: all prefill chunks of a step in one launch; query i of a chunk of q_len tokens sits at
  position ctx_len - q_len + i and attends causally to every cached key, including the chunk's own keys,
  which the layer has just written. Float caches only: a quantized cache's fresh prompt must attend to its
  own unquantized keys (layers/attention.py keeps the torch path for it).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl


@triton.jit
def _load_kv_tile(k_ptr, v_ptr, block_tables_ptr, seq, stride_bt, block_size, kv_head,
                  stride_kb, stride_ks, stride_kh, stride_vb, stride_vs, stride_vh, offs_n, n_mask, offs_d, d_mask):
    """Keys and values of tokens `offs_n` of one sequence and KV head, read through its block table; also
    each token's (block, slot), where a quantized cache keeps its scales."""
    block = tl.load(block_tables_ptr + seq * stride_bt + offs_n // block_size, mask=n_mask, other=0).to(tl.int64)
    slot = offs_n % block_size
    kv_mask = n_mask[:, None] & d_mask[None, :]
    k = tl.load(k_ptr + block[:, None] * stride_kb + slot[:, None] * stride_ks + kv_head * stride_kh
                + offs_d[None, :], mask=kv_mask, other=0.0)
    v = tl.load(v_ptr + block[:, None] * stride_vb + slot[:, None] * stride_vs + kv_head * stride_vh
                + offs_d[None, :], mask=kv_mask, other=0.0)
    return k, v, block, slot


@triton.jit
def _online_softmax_step(q, k, v, visible, scale, m, l_sum, acc, DOT_FP32: tl.constexpr):
    """One key tile of flash attention: masked scores, the running max and sum rescaled, values accumulated.
    Returns the new (max, sum, accumulator)."""
    if DOT_FP32:
        s = tl.dot(q, tl.trans(k.to(tl.float32)), input_precision="ieee")
    else:
        s = tl.dot(q, tl.trans(k.to(q.dtype)))
    s = tl.where(visible, s * scale, float("-inf"))
    m_new = tl.maximum(m, tl.max(s, 1))
    alpha = tl.exp(m - m_new)
    p = tl.exp(s - m_new[:, None])
    l_sum = l_sum * alpha + tl.sum(p, 1)
    if DOT_FP32:
        pv = tl.dot(p, v.to(tl.float32), input_precision="ieee")
    else:
        pv = tl.dot(p.to(q.dtype), v.to(q.dtype))
    return m_new, l_sum, acc * alpha[:, None] + pv


@triton.jit
def _decode_kernel(
    q_ptr, k_ptr, v_ptr, k_scale_ptr, v_scale_ptr, block_tables_ptr, context_lens_ptr,
    out_ptr, part_out_ptr, part_lse_ptr,
    scale, heads_per_kv, block_size,
    stride_qt, stride_qh, stride_kb, stride_ks, stride_kh, stride_vb, stride_vs, stride_vh,
    stride_sb, stride_ss, stride_bt, stride_ot, stride_oh,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_N: tl.constexpr,
    NUM_SPLITS: tl.constexpr, KV_INT8: tl.constexpr, DOT_FP32: tl.constexpr,
):
    seq = tl.program_id(0)
    kv_head = tl.program_id(1)
    split = tl.program_id(2)
    ctx = tl.load(context_lens_ptr + seq)
    tiles_per_split = tl.cdiv(tl.cdiv(ctx, BLOCK_N), NUM_SPLITS)
    lo = split * tiles_per_split * BLOCK_N
    hi = tl.minimum(lo + tiles_per_split * BLOCK_N, ctx)

    offs_h = tl.arange(0, BLOCK_H)
    offs_d = tl.arange(0, BLOCK_D)
    heads = kv_head * heads_per_kv + offs_h
    h_mask = offs_h < heads_per_kv
    d_mask = offs_d < HEAD_DIM
    q = tl.load(q_ptr + seq * stride_qt + heads[:, None] * stride_qh + offs_d[None, :],
                mask=h_mask[:, None] & d_mask[None, :], other=0.0)
    if DOT_FP32:
        q = q.to(tl.float32)

    m = tl.full((BLOCK_H,), float("-inf"), tl.float32)
    l_sum = tl.zeros((BLOCK_H,), tl.float32)
    acc = tl.zeros((BLOCK_H, BLOCK_D), tl.float32)
    for start in range(lo, hi, BLOCK_N):
        offs_n = start + tl.arange(0, BLOCK_N)
        n_mask = offs_n < hi
        k, v, block, slot = _load_kv_tile(k_ptr, v_ptr, block_tables_ptr, seq, stride_bt, block_size, kv_head,
                                          stride_kb, stride_ks, stride_kh, stride_vb, stride_vs, stride_vh,
                                          offs_n, n_mask, offs_d, d_mask)
        if KV_INT8:
            scale_offs = block * stride_sb + slot * stride_ss + kv_head
            k = k.to(tl.float32) * tl.load(k_scale_ptr + scale_offs, mask=n_mask, other=0.0)[:, None]
            v = v.to(tl.float32) * tl.load(v_scale_ptr + scale_offs, mask=n_mask, other=0.0)[:, None]
        m, l_sum, acc = _online_softmax_step(q, k, v, n_mask[None, :], scale, m, l_sum, acc, DOT_FP32)

    out_mask = h_mask[:, None] & d_mask[None, :]
    if NUM_SPLITS == 1:
        o = acc / l_sum[:, None]
        tl.store(out_ptr + seq * stride_ot + heads[:, None] * stride_oh + offs_d[None, :],
                 o.to(out_ptr.dtype.element_ty), mask=out_mask)
    else:
        # an empty split (a context shorter than the splits) stores 0 with weight exp(-inf) = 0
        filled = l_sum > 0
        o = acc / tl.where(filled, l_sum, 1.0)[:, None]
        lse = tl.where(filled, m + tl.log(tl.where(filled, l_sum, 1.0)), float("-inf"))
        row = (seq * heads_per_kv * tl.num_programs(1) + heads) * NUM_SPLITS + split
        tl.store(part_out_ptr + row[:, None] * HEAD_DIM + offs_d[None, :], o, mask=out_mask)
        tl.store(part_lse_ptr + row, lse, mask=h_mask)


@triton.jit
def _decode_reduce_kernel(part_out_ptr, part_lse_ptr, out_ptr, num_heads, stride_ot, stride_oh,
                          HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, NUM_SPLITS: tl.constexpr):
    seq = tl.program_id(0)
    head = tl.program_id(1)
    offs_s = tl.arange(0, NUM_SPLITS)
    offs_d = tl.arange(0, BLOCK_D)
    d_mask = offs_d < HEAD_DIM
    row = (seq * num_heads + head) * NUM_SPLITS + offs_s
    lse = tl.load(part_lse_ptr + row)
    w = tl.exp(lse - tl.max(lse, 0))  # split 0 is never empty, so the max is finite
    w = w / tl.sum(w, 0)
    o = tl.load(part_out_ptr + row[:, None] * HEAD_DIM + offs_d[None, :], mask=d_mask[None, :], other=0.0)
    o = tl.sum(o * w[:, None], 0)
    tl.store(out_ptr + seq * stride_ot + head * stride_oh + offs_d, o.to(out_ptr.dtype.element_ty), mask=d_mask)


@triton.jit
def _prefill_kernel(
    q_ptr, k_ptr, v_ptr, out_ptr, block_tables_ptr, q_starts_ptr, q_lens_ptr, ctx_lens_ptr,
    scale, heads_per_kv, block_size,
    stride_qt, stride_qh, stride_kb, stride_ks, stride_kh, stride_vb, stride_vs, stride_vh,
    stride_bt, stride_ot, stride_oh,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    DOT_FP32: tl.constexpr,
):
    seq = tl.program_id(0)
    tile = tl.program_id(1)
    head = tl.program_id(2)
    q_len = tl.load(q_lens_ptr + seq)
    if tile * BLOCK_M >= q_len:
        return
    q_start = tl.load(q_starts_ptr + seq)
    ctx = tl.load(ctx_lens_ptr + seq)
    kv_head = head // heads_per_kv

    offs_m = tile * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_mask = offs_m < q_len
    d_mask = offs_d < HEAD_DIM
    q_pos = ctx - q_len + offs_m  # each query's position in its sequence
    q = tl.load(q_ptr + (q_start + offs_m)[:, None] * stride_qt + head * stride_qh + offs_d[None, :],
                mask=m_mask[:, None] & d_mask[None, :], other=0.0)
    if DOT_FP32:
        q = q.to(tl.float32)

    m = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    l_sum = tl.zeros((BLOCK_M,), tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), tl.float32)
    kv_end = tl.minimum(ctx, ctx - q_len + (tile + 1) * BLOCK_M)  # past the tile's last query nothing is seen
    for start in range(0, kv_end, BLOCK_N):
        offs_n = start + tl.arange(0, BLOCK_N)
        n_mask = offs_n < kv_end
        k, v, block, slot = _load_kv_tile(k_ptr, v_ptr, block_tables_ptr, seq, stride_bt, block_size, kv_head,
                                          stride_kb, stride_ks, stride_kh, stride_vb, stride_vs, stride_vh,
                                          offs_n, n_mask, offs_d, d_mask)
        # key 0 is visible to every query, so no row of the first tile is all -inf
        visible = n_mask[None, :] & (offs_n[None, :] <= q_pos[:, None])
        m, l_sum, acc = _online_softmax_step(q, k, v, visible, scale, m, l_sum, acc, DOT_FP32)
    o = acc / l_sum[:, None]
    tl.store(out_ptr + (q_start + offs_m)[:, None] * stride_ot + head * stride_oh + offs_d[None, :],
             o.to(out_ptr.dtype.element_ty), mask=m_mask[:, None] & d_mask[None, :])


@functools.cache
def _num_sms(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def decode_splits(num_programs: int, max_context: int, device: torch.device) -> int:
    """Context splits per sequence for a decode over num_programs (sequence, KV head) pairs: a power of two
    up to 16 that gives the GPU about two programs per SM, with at least 256 tokens of max_context each."""
    if device.type != "cuda":
        return 1
    want = min(triton.cdiv(2 * _num_sms(device.index or 0), num_programs), triton.cdiv(max_context, 256), 16)
    return 1 << (max(want, 1).bit_length() - 1)


def _check(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor) -> None:
    if q.stride(-1) != 1 or k_cache.stride(-1) != 1 or v_cache.stride(-1) != 1:
        raise ValueError("paged attention needs the head dimension contiguous in q and the caches")
    if q.shape[1] % k_cache.shape[2]:
        raise ValueError(f"{q.shape[1]} query heads are not a multiple of {k_cache.shape[2]} KV heads")


def paged_decode(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_tables: torch.Tensor,
                 context_lens: torch.Tensor, scale: float, out: torch.Tensor | None = None,
                 k_scale: torch.Tensor | None = None, v_scale: torch.Tensor | None = None,
                 num_splits: int | None = None) -> torch.Tensor:
    """Attention output [B, heads, head_dim] for one query per sequence, q [B, heads, head_dim], over the first
    context_lens[b] cached tokens (int [B]) found through block_tables [B, max_blocks] (int).

    Caches are [num_blocks, block_size, kv_heads, head_dim] in the model dtype, float8_e4m3fn, or int8 with
    float32 scales k_scale / v_scale [num_blocks, block_size, kv_heads]. Writes into `out` when given.
    """
    _check(q, k_cache, v_cache)
    batch, heads, head_dim = q.shape
    _, block_size, kv_heads, _ = k_cache.shape
    group = heads // kv_heads
    if out is None:
        out = torch.empty_like(q, memory_format=torch.contiguous_format)
    if batch == 0:
        return out
    splits = num_splits or decode_splits(batch * kv_heads, block_tables.shape[1] * block_size, q.device)
    int8 = k_scale is not None
    if int8 and (k_scale.stride(-1) != 1 or k_scale.stride() != v_scale.stride()):
        raise ValueError("int8 KV scales must be [num_blocks, block_size, kv_heads] with matching strides")
    block_d = triton.next_power_of_2(head_dim)
    if splits == 1:
        part_out = part_lse = out  # unused
    else:
        part_out = torch.empty(batch, heads, splits, head_dim, dtype=torch.float32, device=q.device)
        part_lse = torch.empty(batch, heads, splits, dtype=torch.float32, device=q.device)
    scales = (k_scale, v_scale) if int8 else (k_cache, v_cache)  # unused pointers without int8
    _decode_kernel[(batch, kv_heads, splits)](
        q, k_cache, v_cache, scales[0], scales[1], block_tables, context_lens, out, part_out, part_lse,
        scale, group, block_size,
        q.stride(0), q.stride(1), *k_cache.stride()[:3], *v_cache.stride()[:3],
        *(scales[0].stride()[:2] if int8 else (0, 0)), block_tables.stride(0), out.stride(0), out.stride(1),
        HEAD_DIM=head_dim, BLOCK_D=block_d, BLOCK_H=max(16, triton.next_power_of_2(group)),
        BLOCK_N=64 if block_d <= 128 else 32, NUM_SPLITS=splits, KV_INT8=int8,
        DOT_FP32=q.dtype == torch.float32 or not q.is_cuda, num_warps=4,
    )
    if splits > 1:
        _decode_reduce_kernel[(batch, heads)](part_out, part_lse, out, heads, out.stride(0), out.stride(1),
                                              HEAD_DIM=head_dim, BLOCK_D=block_d, NUM_SPLITS=splits, num_warps=4)
    return out


def paged_prefill(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, block_tables: torch.Tensor,
                  q_starts: torch.Tensor, q_lens: torch.Tensor, ctx_lens: torch.Tensor, max_q_len: int,
                  scale: float, out: torch.Tensor) -> torch.Tensor:
    """Causal attention for S chunks of queries in one launch: chunk s is rows [q_starts[s], q_starts[s] +
    q_lens[s]) of q [T, heads, head_dim] and attends to the first ctx_lens[s] tokens cached through
    block_tables [S, max_blocks] (its own keys included). Writes those rows of `out` [T, heads, head_dim]."""
    _check(q, k_cache, v_cache)
    num_seqs = q_lens.shape[0]
    if num_seqs == 0:
        return out
    heads, head_dim = q.shape[1], q.shape[2]
    _, block_size, kv_heads, _ = k_cache.shape
    block_d = triton.next_power_of_2(head_dim)
    block = 64 if block_d <= 128 else 32
    _prefill_kernel[(num_seqs, triton.cdiv(max_q_len, block), heads)](
        q, k_cache, v_cache, out, block_tables, q_starts, q_lens, ctx_lens,
        scale, heads // kv_heads, block_size,
        q.stride(0), q.stride(1), *k_cache.stride()[:3], *v_cache.stride()[:3],
        block_tables.stride(0), out.stride(0), out.stride(1),
        HEAD_DIM=head_dim, BLOCK_D=block_d, BLOCK_M=block, BLOCK_N=block,
        DOT_FP32=q.dtype == torch.float32 or not q.is_cuda, num_warps=4,
    )
    return out
