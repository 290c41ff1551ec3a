"""One batched forward over ragged sequences: builds positions, cache slots and attention metadata,
runs the model, and returns logits for the sequences that sample a token this step.

On CUDA with the Triton kernels the attention metadata takes the kernels' form (context lengths instead of
masks, one record for all prefill chunks), and decode-only steps replay a captured CUDA graph
(engine/cuda_graphs.py) unless the engine runs eager.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from .. import kernels
from ..layers.attention import DECODE_CHUNK, AttentionMetadata, DecodeChunk, Int8KV, KVCache, PagedPrefill, PrefillSpan
from ..layers.sampler import to_device
from ..models.llama import LlamaForCausalLM, ModelConfig
from .scheduler import ScheduledBatch

log = logging.getLogger("curbside.engine")


def zeros(shape: tuple[int, ...], dtype: torch.dtype, device: str) -> torch.Tensor:
    """A zeroed KV pool. On CPU it comes from calloc'd pages, so memory becomes resident only as blocks
    are used; zeros (not garbage) matter because masked-out slots are still read."""
    if device != "cpu":
        return torch.zeros(shape, dtype=dtype, device=device)
    carrier = {2: np.int16, 4: np.float32, 1: np.int8}[dtype.itemsize]
    return torch.from_numpy(np.zeros(shape, dtype=carrier)).view(dtype)


def kv_bytes_per_block(cfg: ModelConfig, block_size: int, dtype: torch.dtype, kv_cache_dtype: str = "auto") -> int:
    """Bytes of one block's keys and values over all layers, for a model in `dtype` and a cache stored as
    kv_cache_dtype ("auto": the model dtype; "int8": one byte plus a float32 scale per token and head)."""
    per_head = {"auto": cfg.head_dim * dtype.itemsize, "int8": cfg.head_dim + 4, "fp8": cfg.head_dim}[kv_cache_dtype]
    return 2 * cfg.num_layers * block_size * cfg.num_kv_heads * per_head


def kv_cache(shape: tuple[int, ...], dtype: torch.dtype, kv_cache_dtype: str, device: str) -> KVCache:
    """One layer's zeroed keys (or values) [num_blocks, block_size, kv_heads, head_dim] as stored."""
    if kv_cache_dtype == "int8":
        return Int8KV(zeros(shape, torch.int8, device), zeros(shape[:-1], torch.float32, device))
    if kv_cache_dtype == "fp8":
        return zeros(shape, torch.int8, device).view(torch.float8_e4m3fn)
    return zeros(shape, dtype, device)


class ModelRunner:
    def __init__(self, model: LlamaForCausalLM, cfg: ModelConfig, num_blocks: int, block_size: int,
                 dtype: torch.dtype, device: str, kv_cache_dtype: str = "auto"):
        self.model, self.cfg = model, cfg
        self.block_size, self.device = block_size, device
        self.kv_cache_dtype = kv_cache_dtype
        self.lora = None  # a LoraManager when the engine serves adapters
        self.graphs = None  # DecodeGraphs once capture_cuda_graphs has run
        shape = (num_blocks, block_size, cfg.num_kv_heads, cfg.head_dim)

        def layer_cache() -> KVCache:
            return kv_cache(shape, dtype, kv_cache_dtype, device)

        self.kv_caches = [(layer_cache(), layer_cache()) for _ in range(cfg.num_layers)]

    def _block_tables(self, block_tables: list[list[int]], num_blocks: int) -> torch.Tensor:
        """[B, num_blocks] block ids, padded with the zeroed block 0."""
        table = np.zeros((len(block_tables), num_blocks), dtype=np.int64)
        for row, bt in enumerate(block_tables):
            n = min(len(bt), num_blocks)
            table[row, :n] = bt[:n]
        return torch.from_numpy(table).to(self.device)

    def prepare(self, batch: ScheduledBatch):
        bs = self.block_size
        use_kernels = kernels.active_on(self.device)
        # one Triton launch for every prefill chunk; a quantized cache's fresh prompt keeps the torch path,
        # which attends to its own unquantized keys
        kernel_prefills: list[tuple[int, int, int, list[int]]] | None = \
            [] if use_kernels and self.kv_cache_dtype == "auto" else None
        input_ids: list[int] = []
        positions: list[int] = []
        slot_mapping: list[int] = []
        prefills: list[PrefillSpan] = []
        decode_rows: list[int] = []
        sample_rows: list[int] = []
        for i, (seq, n) in enumerate(zip(batch.seqs, batch.num_new_tokens, strict=True)):
            start, end = seq.num_computed_tokens, seq.num_computed_tokens + n
            row0 = len(input_ids)
            input_ids.extend(seq.token_ids[start:end])
            positions.extend(range(start, end))
            bt = seq.block_table
            slot_mapping.extend(bt[p // bs] * bs + p % bs for p in range(start, end))
            if n == 1:
                decode_rows.append(i)
            elif kernel_prefills is not None:
                kernel_prefills.append((row0, n, end, bt))
            elif start == 0:
                prefills.append(PrefillSpan(row0, n, end, None, None))
            else:
                table = self._block_tables([bt], -(-end // bs))[0]
                q_pos = torch.arange(start, end, device=self.device)
                mask = torch.arange(end, device=self.device)[None, :] <= q_pos[:, None]
                prefills.append(PrefillSpan(row0, n, end, table, mask))
            if end == seq.num_tokens:
                sample_rows.append(len(input_ids) - 1)
        meta = AttentionMetadata(
            slot_mapping=torch.tensor(slot_mapping, device=self.device),
            prefills=prefills,
            num_prefill_tokens=len(input_ids) - len(decode_rows),
        )
        first = meta.num_prefill_tokens
        if kernel_prefills:
            meta.paged_prefill = self._paged_prefill(kernel_prefills)
        if use_kernels:
            if decode_rows:  # the Triton kernel takes every decode at once and reads their lengths
                seqs = [batch.seqs[i] for i in decode_rows]
                ctx = [s.num_computed_tokens + 1 for s in seqs]
                tables = self._block_tables([s.block_table for s in seqs], -(-max(ctx) // bs))
                meta.decodes.append(DecodeChunk(first, tables, None, torch.tensor(ctx, device=self.device)))
        else:
            for c in range(0, len(decode_rows), DECODE_CHUNK):
                seqs = [batch.seqs[i] for i in decode_rows[c:c + DECODE_CHUNK]]
                ctx = [s.num_computed_tokens + 1 for s in seqs]
                num_blocks = -(-max(ctx) // bs)
                mask = None
                if min(ctx) < num_blocks * bs:  # mask the padding and each block's unused tail
                    width = torch.arange(num_blocks * bs, device=self.device)
                    mask = (width[None, :] < torch.tensor(ctx, device=self.device)[:, None])[:, None, None, :]
                tables = self._block_tables([s.block_table for s in seqs], num_blocks)
                meta.decodes.append(DecodeChunk(first + c, tables, mask))
        ids = torch.tensor(input_ids, device=self.device)
        pos = torch.tensor(positions, device=self.device)
        return ids, pos, meta, sample_rows

    def _paged_prefill(self, chunks: list[tuple[int, int, int, list[int]]]) -> PagedPrefill:
        """The Triton prefill kernel's view of (first row, query tokens, context tokens, block table) chunks."""
        starts, lens, ctxs, tables = zip(*chunks, strict=True)
        info = torch.tensor([starts, lens, ctxs], device=self.device)
        table = self._block_tables(list(tables), -(-max(ctxs) // self.block_size))
        return PagedPrefill(info[0], info[1], info[2], table, max(lens))

    def capture_cuda_graphs(self, max_num_seqs: int, max_model_len: int) -> bool:
        """Capture decode steps of up to max_num_seqs sequences; False (staying eager) where that cannot work."""
        from .cuda_graphs import DecodeGraphs, graphs_supported

        if not graphs_supported(self.device, self.lora is not None):
            return False
        graphs = DecodeGraphs(self.model, self.kv_caches, max_num_seqs, -(-max_model_len // self.block_size),
                              self.block_size, self.device)
        try:
            graphs.capture()
        except Exception:  # serving eagerly beats not serving; the log says why
            log.exception("capturing CUDA graphs failed; decode steps run eagerly")
            torch.cuda.empty_cache()
            return False
        self.graphs = graphs
        return True

    def _set_adapters(self, batch: ScheduledBatch) -> None:
        """Tell the LoRA layers which rows of this step run with which adapter."""
        if self.lora is not None:
            rows = [seq.lora_name for seq, n in zip(batch.seqs, batch.num_new_tokens, strict=True) for _ in range(n)]
            self.lora.prepare(rows, self.device)

    @torch.inference_mode()
    def hidden_states(self, batch: ScheduledBatch) -> torch.Tensor:
        """Final hidden states [T, hidden] of every token the step computes, in batch order (for scoring
        prompts, e.g. perplexity); writes their keys and values to the cache like `run`."""
        ids, pos, meta, _ = self.prepare(batch)
        self._set_adapters(batch)
        return self.model(ids, pos, self.kv_caches, meta)

    @torch.inference_mode()
    def run(self, batch: ScheduledBatch) -> torch.Tensor:
        """Logits [N, vocab] (fp32) for the N sequences whose step ends at their last token, in batch order."""
        if self.graphs is not None and self.graphs.fits(batch):
            logits = self.graphs.run(batch.seqs)
            samples = [i for i, s in enumerate(batch.seqs) if s.num_computed_tokens + 1 == s.num_tokens]
            return logits if len(samples) == len(batch.seqs) else logits[to_device(samples, logits.device)]
        ids, pos, meta, sample_rows = self.prepare(batch)
        self._set_adapters(batch)
        hidden = self.model(ids, pos, self.kv_caches, meta)
        if not sample_rows:
            return hidden.new_empty((0, self.cfg.vocab_size), dtype=torch.float32)
        # a pinned, non-blocking copy on CUDA: the step's one wait for the GPU is the sampler's
        return self.model.logits(hidden[to_device(sample_rows, hidden.device)])
