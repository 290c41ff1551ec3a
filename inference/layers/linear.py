"""Linear layer that keeps its weight transposed ([in, out], contiguous).

On CPU, `x @ W_t` streams a row-major [in, out] weight noticeably faster than `F.linear` with [out, in]
(measured ~20% at batch 1 on the 2-core EPYC); on CUDA both are cuBLAS calls of the same cost.
"""

from __future__ import annotations

import torch
from torch import nn


class Linear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = False):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight_t = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def load(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Copy an HF-layout weight [out, in] (and bias [out]) in."""
        if tuple(weight.shape) != (self.out_features, self.in_features):
            raise ValueError(f"weight shape {tuple(weight.shape)} != {(self.out_features, self.in_features)}")
        with torch.no_grad():
            self.weight_t.copy_(weight.t())
            if self.bias is not None:
                if bias is None:
                    raise ValueError("checkpoint has no bias for a layer that needs one")
                self.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return x @ self.weight_t
        return torch.addmm(self.bias, x, self.weight_t)
