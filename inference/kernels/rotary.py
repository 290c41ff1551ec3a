"""Triton rotary embedding (CUDA), the rotate-half layout of layers/rotary.py (Llama, Qwen2 and HF).

For each token t and head, with h = head_dim / 2, cos [T, head_dim] and the signed sin [T, head_dim]
(`[-sin, sin]`) that RotaryEmbedding.cos_sin gathers once per forward:
    out[:h] = x[:h] * cos[:h] + x[h:] * sin[:h]        out[h:] = x[h:] * cos[h:] + x[:h] * sin[h:]
Each product and the sum are rounded to the model dtype, as torch computes `rotate` in bf16/fp16.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _rotary_kernel(x_ptr, cos_ptr, sin_ptr, out_ptr, num_heads, stride_xt, stride_xh, stride_ct, stride_st,
                   stride_ot, stride_oh, HALF: tl.constexpr, BLOCK_HALF: tl.constexpr, BLOCK_H: tl.constexpr):
    t = tl.program_id(0).to(tl.int64)
    heads = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    offs = tl.arange(0, BLOCK_HALF)
    d_mask = offs < HALF
    mask = (heads < num_heads)[:, None] & d_mask[None, :]
    x = x_ptr + t * stride_xt + heads[:, None] * stride_xh + offs[None, :]
    x1 = tl.load(x, mask=mask, other=0.0)
    x2 = tl.load(x + HALF, mask=mask, other=0.0)
    dtype = x1.dtype
    cos1 = tl.load(cos_ptr + t * stride_ct + offs, mask=d_mask, other=0.0).to(tl.float32)[None, :]
    cos2 = tl.load(cos_ptr + t * stride_ct + HALF + offs, mask=d_mask, other=0.0).to(tl.float32)[None, :]
    sin1 = tl.load(sin_ptr + t * stride_st + offs, mask=d_mask, other=0.0).to(tl.float32)[None, :]
    sin2 = tl.load(sin_ptr + t * stride_st + HALF + offs, mask=d_mask, other=0.0).to(tl.float32)[None, :]
    a1 = (x1.to(tl.float32) * cos1).to(dtype).to(tl.float32)
    b1 = (x2.to(tl.float32) * sin1).to(dtype).to(tl.float32)
    a2 = (x2.to(tl.float32) * cos2).to(dtype).to(tl.float32)
    b2 = (x1.to(tl.float32) * sin2).to(dtype).to(tl.float32)
    o = out_ptr + t * stride_ot + heads[:, None] * stride_oh + offs[None, :]
    tl.store(o, (a1 + b1).to(dtype), mask=mask)
    tl.store(o + HALF, (a2 + b2).to(dtype), mask=mask)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [T, heads, head_dim] (any row and head strides) rotated by cos / signed sin [T, 1, head_dim] (or
    [T, head_dim]), which must be in x's dtype; returns a new contiguous tensor."""
    tokens, heads, head_dim = x.shape
    if x.stride(-1) != 1 or head_dim % 2:
        raise ValueError("rotary needs an even head_dim, contiguous in x")
    cos, sin = cos.reshape(tokens, head_dim), sin.reshape(tokens, head_dim)
    if cos.stride(-1) != 1 or sin.stride(-1) != 1:
        raise ValueError("rotary needs cos and sin contiguous along head_dim")
    out = torch.empty((tokens, heads, head_dim), dtype=x.dtype, device=x.device)
    if tokens:
        half = head_dim // 2
        block_h = min(triton.next_power_of_2(heads), 16)
        _rotary_kernel[(tokens, triton.cdiv(heads, block_h))](
            x, cos, sin, out, heads, x.stride(0), x.stride(1), cos.stride(0), sin.stride(0),
            out.stride(0), out.stride(1), HALF=half, BLOCK_HALF=triton.next_power_of_2(half), BLOCK_H=block_h,
            num_warps=4,
        )
    return out
