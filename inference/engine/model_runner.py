"""One batched forward over ragged sequences: builds positions, cache slots and attention metadata,
runs the model, and returns logits for the sequences that sample a token this step."""

from __future__ import annotations

import numpy as np
import torch

from ..layers.attention import AttentionMetadata, PrefillSpan
from ..models.llama import LlamaForCausalLM, ModelConfig
from .scheduler import ScheduledBatch


def kv_bytes_per_block(cfg: ModelConfig, block_size: int, dtype: torch.dtype) -> int:
    return 2 * cfg.num_layers * block_size * cfg.num_kv_heads * cfg.head_dim * dtype.itemsize


class ModelRunner:
    def __init__(self, model: LlamaForCausalLM, cfg: ModelConfig, num_blocks: int, block_size: int,
                 dtype: torch.dtype, device: str):
        self.model, self.cfg = model, cfg
        self.block_size, self.device = block_size, device
        shape = (num_blocks, block_size, cfg.num_kv_heads, cfg.head_dim)
        # Uninitialised pools cost no resident memory until used; block 0 (the padding target) is zeroed
        # so masked-out reads can never inject NaN.
        self.kv_caches = []
        for _ in range(cfg.num_layers):
            k, v = torch.empty(shape, dtype=dtype, device=device), torch.empty(shape, dtype=dtype, device=device)
            k[0].zero_()
            v[0].zero_()
            self.kv_caches.append((k, v))

    def _slots(self, block_tables: list[list[int]], num_slots: int, lengths: list[int] | None = None) -> torch.Tensor:
        """Cache slots [B, num_slots] of the first positions of each block table; positions at or past
        a row's length point at the zeroed slot 0."""
        bs = self.block_size
        width = -(-num_slots // bs)
        table = np.zeros((len(block_tables), width), dtype=np.int64)
        for row, bt in enumerate(block_tables):
            n = min(len(bt), width)
            table[row, :n] = bt[:n]
        slots = (table[:, :, None] * bs + np.arange(bs)[None, None, :]).reshape(len(block_tables), -1)
        if lengths is not None:
            slots[np.arange(slots.shape[1])[None, :] >= np.asarray(lengths)[:, None]] = 0
        return torch.from_numpy(np.ascontiguousarray(slots[:, :num_slots])).to(self.device)

    def prepare(self, batch: ScheduledBatch):
        bs = self.block_size
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
            elif start == 0:
                prefills.append(PrefillSpan(row0, n, end, None, None))
            else:
                slots = self._slots([bt], end)[0]
                q_pos = torch.arange(start, end, device=self.device)
                mask = torch.arange(end, device=self.device)[None, :] <= q_pos[:, None]
                prefills.append(PrefillSpan(row0, n, end, slots, mask))
            if end == seq.num_tokens:
                sample_rows.append(len(input_ids) - 1)
        meta = AttentionMetadata(
            slot_mapping=torch.tensor(slot_mapping, device=self.device),
            prefills=prefills,
            num_prefill_tokens=len(input_ids) - len(decode_rows),
        )
        if decode_rows:
            seqs = [batch.seqs[i] for i in decode_rows]
            ctx = [s.num_computed_tokens + 1 for s in seqs]
            max_ctx = max(ctx)
            meta.decode_slots = self._slots([s.block_table for s in seqs], max_ctx, ctx)
            if min(ctx) < max_ctx:  # ragged: mask the padding
                lens = torch.tensor(ctx, device=self.device)
                meta.decode_mask = (torch.arange(max_ctx, device=self.device)[None, :] < lens[:, None])[:, None, None, :]
        ids = torch.tensor(input_ids, device=self.device)
        pos = torch.tensor(positions, device=self.device)
        return ids, pos, meta, sample_rows

    @torch.inference_mode()
    def run(self, batch: ScheduledBatch) -> torch.Tensor:
        """Logits [N, vocab] (fp32) for the N sequences whose step ends at their last token, in batch order."""
        ids, pos, meta, sample_rows = self.prepare(batch)
        hidden = self.model(ids, pos, self.kv_caches, meta)
        if not sample_rows:
            return hidden.new_empty((0, self.cfg.vocab_size), dtype=torch.float32)
        return self.model.logits(hidden[torch.tensor(sample_rows, device=self.device)])
