"""Engine configuration: what the LLM, the async engine and the server construct the engine from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import InvalidParameterError
from .layers.quantized import INT4_GROUP_SIZES
from .quantization import METHODS as QUANTIZATIONS

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}
KV_CACHE_DTYPES = ("auto", "int8", "fp8")


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
    quantization: str | None = None  # weight-only: "int8" (per output channel) or "int4" (group-wise)
    quantization_group_size: int = 32  # int4 input columns per scale and zero point
    enable_lora: bool = False  # wrap the linear layers so PEFT LoRA adapters can be served per request
    max_loras: int = 4  # adapters resident at once (one step uses at most this many distinct adapters)
    max_lora_rank: int = 16
    kv_cache_dtype: str = "auto"  # "auto" (the model dtype), "int8" (scale per token and KV head) or "fp8"
    # CUDA only: the Triton kernels (paged attention, RMSNorm, rotary); False forces the torch reference path
    use_triton_kernels: bool = True
    # CUDA only: True skips capturing CUDA graphs of decode steps (they need the Triton kernels and no LoRA)
    enforce_eager: bool = False

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
        self._check_quantization()

    def _check_quantization(self) -> None:
        if self.quantization in ("none", ""):
            self.quantization = None
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise InvalidParameterError("quantization", self.quantization, f"expected one of {QUANTIZATIONS} or None")
        if self.quantization_group_size not in INT4_GROUP_SIZES:
            raise InvalidParameterError("quantization_group_size", self.quantization_group_size,
                                        f"expected one of {INT4_GROUP_SIZES}")
        if self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise InvalidParameterError("kv_cache_dtype", self.kv_cache_dtype, f"expected one of {KV_CACHE_DTYPES}")
        if self.kv_cache_dtype == "fp8":
            # e4m3 conversions are native from Ada/Hopper (compute capability 8.9) on; elsewhere use int8
            if not self.device.startswith("cuda"):
                raise InvalidParameterError("kv_cache_dtype", "fp8", f"fp8 needs a CUDA device with compute "
                                            f"capability >= 8.9, not {self.device}; use int8 instead")
            capability = torch.cuda.get_device_capability(torch.device(self.device))
            if capability < (8, 9):
                raise InvalidParameterError("kv_cache_dtype", "fp8", f"fp8 needs compute capability >= 8.9; "
                                            f"{self.device} has {capability[0]}.{capability[1]}; use int8 instead")

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]
