"""Engine configuration: what the LLM, the async engine and the server construct the engine from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import InvalidParameterError

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}


def parse_memory(value: str | int | None) -> int | None:
    """Bytes from 4GiB, 512MiB, 2GB, 1e9 or an int; None stays None."""
    if value is None or isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*([\d.e+]+)\s*([KMGT]?i?B?)?\s*", str(value), re.IGNORECASE)
    if not m:
        raise InvalidParameterError("kv_cache_memory", value, "expected a size such as 4GiB or 512MiB")
    unit = (m.group(2) or "").upper().rstrip("B")
    scale = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
             "KI": 1024, "MI": 1024**2, "GI": 1024**3, "TI": 1024**4}[unit]
    return int(float(m.group(1)) * scale)


@dataclass
class EngineConfig:
    """Everything the engine needs to start; defaults suit the embedded model on a CPU."""

    model: str | Path | None = None
    dtype: str = "float32"
    device: str = "auto"
    data_dir: Path = Path("var")
    max_model_len: int | None = None
    max_num_seqs: int = 128
    max_num_batched_tokens: int = 2048
    block_size: int = 16
    kv_cache_memory: int | str | None = None
    gpu_memory_utilization: float = 0.85
    enable_prefix_caching: bool = True
    threads: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise InvalidParameterError("dtype", self.dtype, f"expected one of {sorted(set(DTYPES))}")
        self.kv_cache_memory = parse_memory(self.kv_cache_memory)
        if self.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidParameterError("device", self.device, "CUDA is not available on this machine")
        if self.device not in ("cpu",) and not self.device.startswith("cuda"):
            raise InvalidParameterError("device", self.device, "expected cpu, cuda or cuda:N")
        for name in ("max_num_seqs", "max_num_batched_tokens", "block_size"):
            if getattr(self, name) < 1:
                raise InvalidParameterError(name, getattr(self, name), "must be >= 1")
        self.data_dir = Path(self.data_dir)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]
