"""Registered adapters (on the CPU) and the `max_loras` resident slots on the device, with LRU eviction."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path

import torch

from ..errors import InvalidParameterError
from .adapter import FUSED, AdapterError, LoraAdapter, load_peft_adapter
from .layers import LoraBatch, LoraContext, LoraLinear

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def _fused_geometry(cfg) -> tuple[dict[str, tuple[int, int]], dict[str, list[tuple[int, int]]]]:
    q, kv, h, inter = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim, cfg.hidden_size, \
        cfg.intermediate_size
    shapes = {"self_attn.qkv_proj": (h, q + 2 * kv), "self_attn.o_proj": (q, h),
              "mlp.gate_up_proj": (h, 2 * inter), "mlp.down_proj": (inter, h)}
    slices = {"self_attn.qkv_proj": [(0, q), (q, q + kv), (q + kv, q + 2 * kv)], "self_attn.o_proj": [(0, h)],
              "mlp.gate_up_proj": [(0, inter), (inter, 2 * inter)], "mlp.down_proj": [(0, h)]}
    return shapes, slices


class LoraManager:
    """Wraps the model's linear layers once; loads, evicts and assigns adapters to slots."""

    def __init__(self, model: torch.nn.Module, max_loras: int, max_lora_rank: int):
        if max_loras < 1:
            raise InvalidParameterError("max_loras", max_loras, "must be at least 1")
        if max_lora_rank < 1:
            raise InvalidParameterError("max_lora_rank", max_lora_rank, "must be at least 1")
        self.cfg = model.cfg
        self.max_loras, self.max_lora_rank = max_loras, max_lora_rank
        self.ctx = LoraContext()
        self.shapes, self.slices = _fused_geometry(self.cfg)
        param = next(model.parameters())
        self.layers: dict[tuple[int, str], LoraLinear] = {}
        for i, layer in enumerate(model.layers):
            for fused, parts in FUSED.items():
                parent_name, attr = fused.split(".")
                parent = getattr(layer, parent_name)
                wrapped = LoraLinear(getattr(parent, attr), max_loras, max_lora_rank * len(parts), self.ctx,
                                     param.dtype if param.dtype.is_floating_point else torch.float32, param.device)
                setattr(parent, attr, wrapped)
                self.layers[(i, fused)] = wrapped
        self.adapters: dict[str, LoraAdapter] = {}
        self.resident: OrderedDict[str, int] = OrderedDict()  # name -> slot, least recently used first
        self._lock = threading.Lock()

    def add(self, name: str, path: str | Path) -> LoraAdapter:
        """Register (or replace) an adapter by name; it is copied to a slot when a request first uses it."""
        if not NAME.match(name or ""):
            raise InvalidParameterError("lora_name", name, "must be letters, digits, '.', '_', ':' or '-'")
        adapter = load_peft_adapter(path, name, self.cfg.num_layers, self.shapes, self.slices)
        if adapter.rank > self.max_lora_rank:
            raise AdapterError(f"{path}: rank {adapter.rank} exceeds max_lora_rank={self.max_lora_rank}")
        with self._lock:
            self.adapters[name] = adapter
            # A replaced adapter must not keep serving its old weights: dropping it from the resident map makes
            # the next step copy the new ones in. Slots are written only in `prepare`, on the engine thread.
            self.resident.pop(name, None)
        return adapter

    def remove(self, name: str) -> None:
        with self._lock:
            if name not in self.adapters:
                raise InvalidParameterError("lora_name", name, f"no adapter of that name; loaded: {self.names()}")
            del self.adapters[name]
            self.resident.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self.adapters)

    def _write_slot(self, slot: int, adapter: LoraAdapter | None) -> None:
        for key, layer in self.layers.items():
            a, b = adapter.weights.get(key, (None, None)) if adapter else (None, None)
            layer.set_slot(slot, a, b)

    def _slot_for(self, name: str, in_use: set[str]) -> int:
        if name in self.resident:
            self.resident.move_to_end(name)
            return self.resident[name]
        used = set(self.resident.values())
        free = [s for s in range(self.max_loras) if s not in used]
        if free:
            slot = free[0]
        else:
            victim = next((n for n in self.resident if n not in in_use), None)
            if victim is None:
                raise InvalidParameterError("max_loras", self.max_loras, "more adapters in one step than slots")
            slot = self.resident.pop(victim)
        self._write_slot(slot, self.adapters[name])
        self.resident[name] = slot
        return slot

    def prepare(self, row_adapters: list[str | None], device: torch.device | str) -> None:
        """Group a step's rows by adapter (None = base model) and make each adapter resident."""
        rows: dict[str, list[int]] = {}
        for i, name in enumerate(row_adapters):
            if name is not None:
                rows.setdefault(name, []).append(i)
        if not rows:
            self.ctx.batch = None
            return
        with self._lock:
            missing = [n for n in rows if n not in self.adapters]
            if missing:
                raise InvalidParameterError("lora_name", missing[0], "adapter was unloaded")
            groups = [(self._slot_for(name, set(rows)), torch.tensor(r, dtype=torch.long, device=device))
                      for name, r in rows.items()]
        self.ctx.batch = LoraBatch(groups)

    def clear(self) -> None:
        self.ctx.batch = None
