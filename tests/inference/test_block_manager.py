"""The block manager: reference counts, the prefix cache and LRU eviction."""

from inference.engine.block_manager import BlockManager
from inference.engine.sequence import Sequence
from inference.sampling_params import SamplingParams


def seq(tokens, rid="r"):
    return Sequence(rid, list(tokens), SamplingParams())


def finish_prefill(bm: BlockManager, s: Sequence) -> None:
    s.num_computed_tokens = s.num_tokens
    bm.register_computed(s)


def test_allocation_reserves_blocks_and_freeing_returns_every_reference():
    bm = BlockManager(num_blocks=10, block_size=4)
    s = seq(range(10))
    assert bm.allocate_prompt(s, 10)
    assert len(s.block_table) == 3 and bm.num_free_blocks == 9 - 3
    bm.free_sequence(s)
    assert bm.num_free_blocks == 9
    assert all(b.ref_count == 0 for b in bm.blocks)


def test_block_zero_is_never_handed_out():
    bm = BlockManager(num_blocks=5, block_size=4)
    s = seq(range(16))
    assert bm.allocate_prompt(s, 16)
    assert 0 not in s.block_table


def test_allocation_fails_cleanly_when_the_pool_is_too_small():
    bm = BlockManager(num_blocks=3, block_size=4)
    s = seq(range(12))
    assert not bm.allocate_prompt(s, 12)
    assert s.block_table == [] and bm.num_free_blocks == 2


def test_a_shared_prefix_is_reused_by_reference_count():
    bm = BlockManager(num_blocks=20, block_size=4)
    a = seq(list(range(100, 112)) + [1, 2], "a")
    assert bm.allocate_prompt(a, a.num_tokens)
    finish_prefill(bm, a)
    b = seq(list(range(100, 112)) + [7, 8, 9], "b")
    assert bm.allocate_prompt(b, b.num_tokens - 12)
    assert b.num_cached_tokens == 12 and b.num_computed_tokens == 12
    assert b.block_table[:3] == a.block_table[:3]
    assert all(bm.blocks[i].ref_count == 2 for i in a.block_table[:3])
    bm.free_sequence(a)
    bm.free_sequence(b)
    assert all(blk.ref_count == 0 for blk in bm.blocks)


def test_the_last_prompt_token_is_never_served_from_cache():
    bm = BlockManager(num_blocks=20, block_size=4)
    a = seq(range(8), "a")
    bm.allocate_prompt(a, 8)
    finish_prefill(bm, a)
    b = seq(range(8), "b")  # identical prompt: the block holding the last token must be recomputed
    assert len(bm.match_prefix(b)) == 1


def test_blocks_are_published_only_once_computed():
    bm = BlockManager(num_blocks=20, block_size=4)
    a = seq(range(12), "a")
    bm.allocate_prompt(a, 12)  # reserved, not yet computed
    assert bm.match_prefix(seq(range(13), "b")) == []
    a.num_computed_tokens = 4
    bm.register_computed(a)
    assert len(bm.match_prefix(seq(range(13), "b"))) == 1


def test_freed_blocks_stay_cached_until_evicted_least_recently_used_first():
    bm = BlockManager(num_blocks=4, block_size=4)  # 3 usable blocks
    a = seq(range(9), "a")
    bm.allocate_prompt(a, 9)
    finish_prefill(bm, a)
    bm.free_sequence(a)
    assert len(bm.match_prefix(seq(range(9), "again"))) == 2  # still cached after free
    c = seq(range(50, 54), "c")  # takes one block: the tail of `a` goes first
    bm.allocate_prompt(c, 4)
    assert len(bm.match_prefix(seq(range(9), "again"))) == 2
    d = seq(range(60, 68), "d")  # two more blocks: now the head of `a` is evicted
    bm.allocate_prompt(d, 8)
    assert bm.match_prefix(seq(range(9), "again")) == []


def test_different_tokens_never_match_a_cached_block():
    bm = BlockManager(num_blocks=10, block_size=4)
    a = seq(range(9), "a")
    bm.allocate_prompt(a, 9)
    finish_prefill(bm, a)
    assert bm.match_prefix(seq([0, 1, 2, 99, 4, 5, 6, 7, 8], "b")) == []
