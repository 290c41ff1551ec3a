"""LoRA on top of any linear layer, computed per request for a whole mixed batch.

Each wrapped layer holds the resident adapters stacked in slots: A [max_loras, in, R] and B [max_loras, R,
out], zero-padded to the largest fused rank R. A step's rows are grouped by slot once (LoraBatch), and
every layer adds, for each adapter present in the batch, `x[rows] @ A[slot] @ B[slot]` to its base output
(a segmented gather-matmul-scatter, as Punica's SGMV does in one kernel). The base weights are never
touched, so rows without an adapter get exactly the base model, and quantized base layers work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class LoraBatch:
    """For one step: (slot, row indices [n]) per adapter present; rows of the base model are absent."""

    groups: list[tuple[int, torch.Tensor]] = field(default_factory=list)


class LoraContext:
    """Shared by every LoraLinear of a model; the model runner sets `batch` before each forward."""

    def __init__(self) -> None:
        self.batch: LoraBatch | None = None


class LoraLinear(nn.Module):
    def __init__(self, base: nn.Module, max_loras: int, max_rank: int, ctx: LoraContext,
                 dtype: torch.dtype, device: torch.device | str):
        super().__init__()
        self.base = base
        self.in_features, self.out_features = base.in_features, base.out_features
        self.ctx = ctx
        self.register_buffer("lora_a", torch.zeros(max_loras, self.in_features, max_rank, dtype=dtype,
                                                   device=device), persistent=False)
        self.register_buffer("lora_b", torch.zeros(max_loras, max_rank, self.out_features, dtype=dtype,
                                                   device=device), persistent=False)

    def set_slot(self, slot: int, a: torch.Tensor | None, b: torch.Tensor | None) -> None:
        """Put an adapter's A [in, r] and B [r, out] in a slot (zero-padded), or clear it with None."""
        self.lora_a[slot].zero_()
        self.lora_b[slot].zero_()
        if a is not None and b is not None:
            r = a.shape[1]
            self.lora_a[slot, :, :r].copy_(a)
            self.lora_b[slot, :r, :].copy_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        batch = self.ctx.batch
        if batch is None:
            return y
        for slot, rows in batch.groups:
            if rows.numel() == x.shape[0]:  # the whole batch uses one adapter: no gather
                y = y + (x @ self.lora_a[slot]) @ self.lora_b[slot]
            else:
                delta = (x.index_select(0, rows) @ self.lora_a[slot]) @ self.lora_b[slot]
                y = y.index_add(0, rows, delta.to(y.dtype))
        return y
