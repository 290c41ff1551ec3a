"""Weight-only quantized linear layers: int8 per output channel, int4 group-wise with scale and zero point.

Each layer keeps its weight in the layout of a packed PyTorch kernel and computes `y = x @ W_dq.T (+ bias)`:

- int8: `W_dq[n, k] = q[n, k] * scale[n]`, q in [-127, 127] (symmetric), `aten._weight_int8pack_mm` on CPU
  and CUDA.
- int4: `W_dq[n, k] = (q[n, k] - 8) * scale[n, g] + zero[n, g]` for k in group g, q in [0, 15] (asymmetric),
  `aten._weight_int4pack_mm_for_cpu` on CPU, `aten._weight_int4pack_mm` (sm80+) on CUDA. The CPU kernel
  needs K divisible by the group size and N by 16; the CUDA one K also by 32 (two inner K tiles of 16).

Activations go through the kernels in bf16 and the output is cast back: on the CPU the packed kernels are
only fast with bf16 activations (fp32 ones are slower than a plain fp32 matmul), and the CUDA int4 kernel
accepts nothing else. Scales and zero points are stored in bf16 because the kernels require the activation
dtype; they are rounded to bf16 before the weights are quantized against them, so the stored values are
exactly what `dequantize_*` (the pure-torch reference) reconstructs.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InvalidParameterError

COMPUTE_DTYPE = torch.bfloat16
INT4_GROUP_SIZES = (32, 64, 128)


def quantize_int8(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 weight [N, K] and bf16 scales [N] (symmetric, per output channel) for a float weight [N, K]."""
    w = weight.float()
    scales = (w.abs().amax(dim=1) / 127).clamp(min=1e-12).to(COMPUTE_DTYPE)
    q = torch.round(w / scales.float()[:, None]).clamp(-127, 127).to(torch.int8)
    return q.contiguous(), scales  # the kernels need [N, K] row-major; a transposed input stays strided


def dequantize_int8(q: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The float32 weight [N, K] that int8 q [N, K] and scales [N] stand for."""
    return q.float() * scales.float()[:, None]


def check_int4_shape(out_features: int, in_features: int, group_size: int, name: str = "linear") -> None:
    """Refuse group sizes the int4 kernels cannot run, naming the layer and its weight shape."""
    if group_size not in INT4_GROUP_SIZES:
        raise InvalidParameterError("quantization_group_size", group_size, f"expected one of {INT4_GROUP_SIZES}")
    if out_features % 16:
        raise InvalidParameterError(
            "quantization", "int4", f"the int4 CPU kernel packs output channels in tiles of 16; {name} has weight "
                                    f"[out, in] = [{out_features}, {in_features}]; use int8 for this model")
    if in_features % group_size:
        raise InvalidParameterError(
            "quantization_group_size", group_size,
            f"the int4 kernels need the group size to divide the input size K of every quantized layer; "
            f"{name} has weight [out, in] = [{out_features}, {in_features}] (K % {group_size} = "
            f"{in_features % group_size}); choose one of "
            f"{[g for g in INT4_GROUP_SIZES if in_features % g == 0] or 'none'} or int8")


def quantize_int4(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """int32 weight [N, K] with values 0..15 and bf16 scales-and-zeros [K / group, N, 2] (asymmetric, per group)."""
    n, k = weight.shape
    check_int4_shape(n, k, group_size)
    w = weight.float().reshape(n, k // group_size, group_size)
    lo, hi = w.amin(dim=-1), w.amax(dim=-1)
    scales = ((hi - lo) / 15).clamp(min=1e-6).to(COMPUTE_DTYPE).float()
    # the kernels subtract 8 from q, so the zero point is the value q = 8 stands for (the group's midpoint)
    zeros = (lo + 8 * scales).to(COMPUTE_DTYPE).float()
    q = torch.round((w - zeros[..., None]) / scales[..., None] + 8).clamp(0, 15).to(torch.int32)
    scales_and_zeros = torch.stack([scales, zeros], dim=-1).transpose(0, 1).contiguous().to(COMPUTE_DTYPE)
    return q.reshape(n, k).contiguous(), scales_and_zeros


def dequantize_int4(q: torch.Tensor, scales_and_zeros: torch.Tensor, group_size: int) -> torch.Tensor:
    """The float32 weight [N, K] that q [N, K] (0..15) and scales-and-zeros [K / group, N, 2] stand for."""
    n, k = q.shape
    scales, zeros = scales_and_zeros.float().transpose(0, 1).unbind(-1)  # [N, K / group] each
    w = (q.reshape(n, k // group_size, group_size).float() - 8) * scales[..., None] + zeros[..., None]
    return w.reshape(n, k)


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """The int4 kernel's packed layout of q [N, K] (int32, 0..15), for q's device."""
    if q.device.type == "cpu":
        return torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.contiguous(), 1)  # inner tiles unused on CPU
    # CUDA takes two values per byte (even k in the high nibble) and tiles K in innerKTiles * 16 columns
    k = q.shape[1]
    inner_k_tiles = next(t for t in (8, 4, 2) if k % (16 * t) == 0)
    pairs = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8)
    return torch.ops.aten._convert_weight_to_int4pack(pairs.contiguous(), inner_k_tiles)


def _as_2d(x: torch.Tensor, in_features: int) -> torch.Tensor:
    """x [..., K] as a contiguous bf16 [M, K], which the packed kernels require."""
    return x.reshape(-1, in_features).to(COMPUTE_DTYPE).contiguous()


class Int8Linear(nn.Module):
    """y = x @ (q * scale).T + bias with an int8 weight [out, in]; a drop-in for layers.linear.Linear."""

    def __init__(self, q: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        self.out_features, self.in_features = q.shape
        self.register_buffer("weight", q)  # int8 [out, in]
        self.register_buffer("scales", scales)  # bf16 [out]
        self.register_buffer("bias", bias)  # [out] in the model dtype, or None

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: torch.Tensor | None = None) -> Int8Linear:
        """Quantize a float weight [out, in] (and keep bias [out] as it is)."""
        return cls(*quantize_int8(weight), bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.aten._weight_int8pack_mm(_as_2d(x, self.in_features), self.weight, self.scales)
        y = y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias


class Int4Linear(nn.Module):
    """y = x @ W_dq.T + bias with a packed group-wise int4 weight; a drop-in for layers.linear.Linear."""

    def __init__(self, q: torch.Tensor, scales_and_zeros: torch.Tensor, group_size: int,
                 bias: torch.Tensor | None = None):
        super().__init__()
        self.out_features, self.in_features = q.shape
        check_int4_shape(self.out_features, self.in_features, group_size)
        self.group_size = group_size
        self.register_buffer("weight", pack_int4(q))  # kernel layout, uint8 on CPU / int32 tiles on CUDA
        self.register_buffer("scales_and_zeros", scales_and_zeros)  # bf16 [in / group, out, 2]
        self.register_buffer("bias", bias)

    @classmethod
    def from_weight(cls, weight: torch.Tensor, group_size: int, bias: torch.Tensor | None = None) -> Int4Linear:
        """Quantize a float weight [out, in] in groups of `group_size` input columns."""
        return cls(*quantize_int4(weight, group_size), group_size, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = _as_2d(x, self.in_features)
        if x2.device.type == "cpu":
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(x2, self.weight, self.group_size, self.scales_and_zeros)
        else:
            y = torch.ops.aten._weight_int4pack_mm(x2, self.weight, self.group_size, self.scales_and_zeros)
        y = y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias
