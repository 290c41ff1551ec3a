"""Paged KV-cache blocks: a free list, reference counts and a prefix cache keyed by chained block hashes.

A block holds `block_size` tokens' keys and values. Full blocks whose KV has been computed are registered
under a hash chained over their tokens (and the hash of the block before), so another sequence with
the same prefix reuses them by reference count. Blocks whose count drops to zero go to the back of an
LRU free queue but keep their hash until they are handed out again, so a later request can still hit them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .sequence import Sequence


@dataclass
class Block:
    block_id: int
    ref_count: int = 0
    hash: int | None = None
    tokens: tuple[int, ...] | None = None


def chain_hash(prev: int | None, tokens: tuple[int, ...]) -> int:
    return hash((prev, tokens))


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.blocks = [Block(i) for i in range(num_blocks)]
        # Block 0 is never handed out: padded attention reads point at it (and the padding rows of a CUDA
        # graph write their finite keys there), always masked.
        self.free: OrderedDict[int, None] = OrderedDict((i, None) for i in range(1, num_blocks))
        self.cached: dict[int, int] = {}  # chain hash -> block id
        self.prefix_queries = 0  # prompt tokens looked up in the prefix cache
        self.prefix_hits = 0  # of those, tokens served from it

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @property
    def num_free_blocks(self) -> int:
        return len(self.free)

    def usage(self) -> float:
        return 1.0 - len(self.free) / max(len(self.blocks) - 1, 1)

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    def _take_free(self) -> int:
        block_id, _ = self.free.popitem(last=False)
        block = self.blocks[block_id]
        if block.hash is not None and self.cached.get(block.hash) == block_id:
            del self.cached[block.hash]
        block.hash, block.tokens, block.ref_count = None, None, 1
        return block_id

    def _ref(self, block_id: int) -> None:
        block = self.blocks[block_id]
        if block.ref_count == 0:
            del self.free[block_id]
        block.ref_count += 1

    def match_prefix(self, seq: Sequence) -> list[int]:
        """Cached blocks covering a prefix of the sequence's tokens (never its last token)."""
        if not self.enable_prefix_caching:
            return []
        hits: list[int] = []
        prev = seq.lora_name  # KV computed under an adapter is only shared with that adapter
        bs = self.block_size
        for i in range((seq.num_tokens - 1) // bs):
            tokens = tuple(seq.token_ids[i * bs:(i + 1) * bs])
            h = chain_hash(prev, tokens)
            block_id = self.cached.get(h)
            if block_id is None or self.blocks[block_id].tokens != tokens:
                break
            hits.append(block_id)
            prev = h
        return hits

    def allocate_prompt(self, seq: Sequence, num_new_tokens: int) -> bool:
        """Admit a waiting sequence: reuse its cached prefix, then reserve blocks for its first chunk.

        Returns False (changing nothing) when the free list cannot hold the chunk.
        """
        hits = self.match_prefix(seq)
        cached_tokens = len(hits) * self.block_size
        need = self.blocks_needed(cached_tokens + num_new_tokens) - len(hits)
        reusable_free = sum(1 for b in hits if self.blocks[b].ref_count == 0)
        if need > len(self.free) - reusable_free:
            return False
        for b in hits:
            self._ref(b)
        seq.block_table = list(hits)
        seq.num_computed_tokens = cached_tokens
        seq.num_cached_tokens = cached_tokens
        self.prefix_queries += seq.num_tokens
        self.prefix_hits += cached_tokens
        for _ in range(need):
            seq.block_table.append(self._take_free())
        return True

    def can_grow(self, seq: Sequence, num_new_tokens: int) -> bool:
        need = self.blocks_needed(seq.num_computed_tokens + num_new_tokens) - len(seq.block_table)
        return need <= len(self.free)

    def grow(self, seq: Sequence, num_new_tokens: int) -> None:
        """Reserve blocks so the sequence can compute `num_new_tokens` more tokens (call can_grow first)."""
        need = self.blocks_needed(seq.num_computed_tokens + num_new_tokens) - len(seq.block_table)
        for _ in range(need):
            seq.block_table.append(self._take_free())

    def register_computed(self, seq: Sequence, upto: int | None = None) -> None:
        """Publish the sequence's full blocks up to token `upto` (default: those computed) in the prefix cache.

        The scheduler publishes blocks as soon as they are scheduled: every layer writes the whole step's
        keys and values before any attention reads them, so a request admitted later in the same step can
        already share them.
        """
        if not self.enable_prefix_caching:
            return
        bs = self.block_size
        prev = seq.lora_name  # KV computed under an adapter is only shared with that adapter
        for i in range((seq.num_computed_tokens if upto is None else upto) // bs):
            block = self.blocks[seq.block_table[i]]
            if block.hash is None:
                tokens = tuple(seq.token_ids[i * bs:(i + 1) * bs])
                block.hash, block.tokens = chain_hash(prev, tokens), tokens
                self.cached.setdefault(block.hash, block.block_id)
            prev = block.hash

    def reset_prefix_cache(self) -> None:
        """Forget every cached hash (after a failed step, whose blocks may hold partial results)."""
        self.cached.clear()
        for block in self.blocks:
            block.hash, block.tokens = None, None

    def free_sequence(self, seq: Sequence) -> None:
        """Drop the sequence's references; the tail goes to the free queue first so it is evicted first."""
        for block_id in reversed(seq.block_table):
            block = self.blocks[block_id]
            block.ref_count -= 1
            if block.ref_count == 0:
                self.free[block_id] = None
        seq.block_table = []
        seq.num_computed_tokens = 0
