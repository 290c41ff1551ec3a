"""Triton RMSNorm with an optional fused residual add (CUDA).

`rms_norm(x, weight, eps, residual)` returns the normed rows, and with a residual also the new residual
`x + residual`, in one pass over memory. The rounding follows models/llama.py's RMSNorm (and HF's): the
sum is rounded to the model dtype first, the norm is computed in float32 and, for bf16/fp16, rounded to
the model dtype before the weight multiplies it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _rms_norm_kernel(x_ptr, residual_ptr, weight_ptr, out_ptr, residual_out_ptr, n_cols, eps,
                     stride_x, stride_r, stride_o, stride_ro,
                     HAS_RESIDUAL: tl.constexpr, ROUND_BEFORE_WEIGHT: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    mask = offs < n_cols
    x = tl.load(x_ptr + row * stride_x + offs, mask=mask, other=0.0)
    if HAS_RESIDUAL:
        r = tl.load(residual_ptr + row * stride_r + offs, mask=mask, other=0.0)
        x = (x.to(tl.float32) + r.to(tl.float32)).to(x.dtype)
        tl.store(residual_out_ptr + row * stride_ro + offs, x, mask=mask)
    xf = x.to(tl.float32)
    normed = xf * tl.rsqrt(tl.sum(xf * xf, 0) / n_cols + eps)
    if ROUND_BEFORE_WEIGHT:
        normed = normed.to(x.dtype).to(tl.float32)
    w = tl.load(weight_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + row * stride_o + offs, (normed * w).to(out_ptr.dtype.element_ty), mask=mask)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float,
             residual: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """weight * x / rms(x) over the last dim of x [T, hidden]; with residual [T, hidden], (norm(x + residual),
    x + residual)."""
    if x.stride(-1) != 1 or (residual is not None and residual.stride(-1) != 1):
        raise ValueError("rms_norm needs rows with a contiguous last dimension")
    rows, n = x.reshape(-1, x.shape[-1]).shape
    x2 = x.reshape(rows, n)
    out = torch.empty((rows, n), dtype=x.dtype, device=x.device)
    if residual is not None:
        r2 = residual.reshape(rows, n)
        new_residual = torch.empty_like(out)
    else:
        r2 = new_residual = out  # unused
    if rows:
        _rms_norm_kernel[(rows,)](
            x2, r2, weight, out, new_residual, n, eps, x2.stride(0), r2.stride(0), out.stride(0),
            new_residual.stride(0), HAS_RESIDUAL=residual is not None, ROUND_BEFORE_WEIGHT=x.dtype != torch.float32,
            BLOCK=triton.next_power_of_2(n), num_warps=min(max(triton.next_power_of_2(n) // 256, 1), 16),
        )
    out = out.view(x.shape)
    return out if residual is None else (out, new_residual.view(x.shape))
