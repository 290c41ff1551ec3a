"""CUDA graphs for decode steps: the whole forward of B single-token sequences, replayed in one launch.

A decode step of a small model is mostly kernel-launch overhead on a GPU; a captured graph launches it all
at once. Graphs are captured at startup for a ladder of batch sizes (1, 2, 4, 8, then every 16 up to
max_num_seqs) over static input buffers: token ids, positions, cache slots and context lengths [4, max_bs],
and block tables [max_bs, max_blocks_per_seq]. A step of n decodes fills the buffers, pads to the smallest
captured size >= n, replays, and runs the LM head on the first n rows of that graph's hidden states (outside
the graph: one matmul, and each graph would otherwise keep its own [B, vocab] float32 logits alive).

Padding rows hold token 0 at position 0, write their keys to slot 0 of block 0 (never handed out, and
every reader masks it) and attend to that one slot, so they cost a little compute and touch nothing real.
Steps with prefill chunks, more sequences than the largest graph, or LoRA adapters run eagerly. Graphs need
the Triton decode kernel: the torch path's masks depend on the step's lengths.
"""

from __future__ import annotations

import bisect
import logging
import time

import numpy as np
import torch

from .. import kernels
from ..layers.attention import AttentionMetadata, DecodeChunk, KVCache
from .scheduler import ScheduledBatch
from .sequence import Sequence

log = logging.getLogger("curbside.engine")

MAX_CAPTURED_BATCH = 512


def capture_sizes(max_num_seqs: int) -> list[int]:
    """Batch sizes to capture, ascending: 1, 2, 4, 8, then multiples of 16, and max_num_seqs itself (<= 512)."""
    top = min(max_num_seqs, MAX_CAPTURED_BATCH)
    sizes = {s for s in (1, 2, 4, 8) if s <= top} | set(range(16, top + 1, 16)) | {top}
    return sorted(sizes)


def padded_size(sizes: list[int], n: int) -> int | None:
    """The smallest captured size that holds n sequences, or None when none does."""
    i = bisect.bisect_left(sizes, n)
    return sizes[i] if i < len(sizes) else None


def graphs_supported(device: str, lora: bool) -> bool:
    """Decode graphs need CUDA and the Triton decode kernel; LoRA's per-step row groups are not static."""
    return torch.device(device).type == "cuda" and kernels.active_on(device) and not lora


def decode_inputs(seqs: list[Sequence], block_size: int, padded: int) -> tuple[np.ndarray, np.ndarray]:
    """Host inputs of one decode step: [4, padded] int64 rows of token ids, positions, cache slots and context
    lengths (padding rows: token 0, position 0, slot 0, length 1), and block tables [n, max blocks in use]."""
    n = len(seqs)
    inputs = np.zeros((4, padded), dtype=np.int64)
    inputs[3] = 1
    width = max(-(-(s.num_computed_tokens + 1) // block_size) for s in seqs)
    tables = np.zeros((n, width), dtype=np.int64)
    for i, s in enumerate(seqs):
        pos = s.num_computed_tokens
        inputs[0, i] = s.token_ids[pos]
        inputs[1, i] = pos
        inputs[2, i] = s.block_table[pos // block_size] * block_size + pos % block_size
        inputs[3, i] = pos + 1
        k = min(len(s.block_table), width)
        tables[i, :k] = s.block_table[:k]
    return inputs, tables


class DecodeGraphs:
    def __init__(self, model, kv_caches: list[tuple[KVCache, KVCache]], max_num_seqs: int, max_blocks: int,
                 block_size: int, device: str):
        self.model, self.kv_caches = model, kv_caches
        self.block_size, self.device = block_size, device
        self.sizes = capture_sizes(max_num_seqs)
        top = self.sizes[-1]
        self.inputs = torch.zeros(4, top, dtype=torch.int64, device=device)  # ids, positions, slots, lengths
        self.inputs[3] = 1
        self.block_tables = torch.zeros(top, max_blocks, dtype=torch.int64, device=device)
        # Pinned staging, so the step's copies are queued without waiting for the GPU. Reusing it is safe:
        # the previous step's token ids were read back (a sync) before the next step fills it.
        self.staging = torch.zeros(4, top, dtype=torch.int64).pin_memory()
        self.staging_tables = torch.zeros(top * max_blocks, dtype=torch.int64).pin_memory()
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.hidden: dict[int, torch.Tensor] = {}  # each graph's output [B, hidden], in the shared pool

    def _forward(self, b: int) -> torch.Tensor:
        ids, positions, slots, lengths = self.inputs[:, :b]
        meta = AttentionMetadata(slot_mapping=slots, decodes=[DecodeChunk(0, self.block_tables[:b], None, lengths)])
        return self.model(ids, positions, self.kv_caches, meta)

    @torch.inference_mode()
    def capture(self) -> None:
        """Capture every size, largest first, into one shared memory pool (replays never overlap)."""
        start = time.monotonic()
        pool = None
        for b in reversed(self.sizes):
            self._forward(b)  # warm-up: compiles the Triton kernels and sets up cuBLAS outside the capture
            torch.cuda.synchronize(self.device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                self.hidden[b] = self._forward(b)
            pool = graph.pool()
            self.graphs[b] = graph
        torch.cuda.synchronize(self.device)
        log.info("captured CUDA graphs for decode batch sizes %s in %.1f s", self.sizes, time.monotonic() - start)

    def fits(self, batch: ScheduledBatch) -> bool:
        return all(n == 1 for n in batch.num_new_tokens) and len(batch.seqs) <= self.sizes[-1]

    @torch.inference_mode()
    def run(self, seqs: list[Sequence]) -> torch.Tensor:
        """Logits [n, vocab] (fp32) of a decode step of n <= max captured size sequences."""
        n = len(seqs)
        b = padded_size(self.sizes, n)
        inputs, tables = decode_inputs(seqs, self.block_size, b)
        self.staging[:, :b].numpy()[:] = inputs
        self.inputs.copy_(self.staging, non_blocking=True)  # whole rows: contiguous; columns >= b are unread
        flat = self.staging_tables[:tables.size]
        flat.numpy()[:] = tables.reshape(-1)
        width = tables.shape[1]
        # Only the columns in use are refreshed: a row's stale columns lie past its length and are never read
        self.block_tables[:n, :width].copy_(flat.to(self.device, non_blocking=True).view(n, width))
        self.graphs[b].replay()
        return self.model.logits(self.hidden[b][:n])
