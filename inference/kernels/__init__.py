"""Triton kernels for the CUDA paths: attention over the paged KV cache, fused residual-add + RMSNorm, rotary.

The layers ask `active(x)` before each call: the kernels run when x is on a CUDA device, Triton imports,
and they have not been switched off (`set_enabled(False)`, which the engine calls for
EngineConfig(use_triton_kernels=False)). Everywhere else the layers keep their torch code, which is
also the reference the kernels are tested against (`python -m inference.kernels.verify`).

The switch is per process: the layers have no engine to ask. The tests run the kernels on CPU tensors under
Triton's interpreter (TRITON_INTERPRET=1, set before triton is first imported) with `run_on_cpu(True)`.
"""

from __future__ import annotations

import functools

import torch

_enabled = True
_on_cpu = False


@functools.cache
def triton_importable() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def set_enabled(enabled: bool) -> None:
    """Switch the Triton kernels on (the default) or off for this process; off forces the torch path."""
    global _enabled
    _enabled = enabled


def run_on_cpu(on: bool) -> None:
    """Let the kernels take CPU tensors too: only meaningful under TRITON_INTERPRET=1 (tests)."""
    global _on_cpu
    _on_cpu = on


def active(x: torch.Tensor) -> bool:
    """Whether the layers should call a Triton kernel for tensor x."""
    return (x.is_cuda or _on_cpu) and _enabled and triton_importable()


def active_on(device: str | torch.device) -> bool:
    """`active` for tensors that will live on `device` (the model runner decides its metadata layout once)."""
    return (torch.device(device).type == "cuda" or _on_cpu) and _enabled and triton_importable()
