"""Continuous batching: admission limits, chunked prefill and preemption."""

from inference.engine.block_manager import BlockManager
from inference.engine.scheduler import Scheduler
from inference.engine.sequence import Sequence, Status
from inference.sampling_params import SamplingParams


def make(num_blocks=64, block_size=4, max_num_seqs=8, budget=64):
    return Scheduler(BlockManager(num_blocks, block_size), max_num_seqs, budget)


def add(s: Scheduler, n_tokens: int, rid: str) -> Sequence:
    base = 1000 * (len(s.waiting) + len(s.running) + 1)  # distinct prompts: no prefix sharing
    seq = Sequence(rid, list(range(base, base + n_tokens)), SamplingParams())
    s.add(seq)
    return seq


def step(s: Scheduler, sample_token: int = 7):
    """Pretend the model ran: advance computed counts and append a token where a step completes."""
    batch = s.schedule()
    for seq, n in zip(batch.seqs, batch.num_new_tokens, strict=True):
        seq.num_computed_tokens += n
        if seq.num_computed_tokens == seq.num_tokens:
            seq.token_ids.append(sample_token)
    return batch


def test_admission_respects_max_num_seqs():
    s = make(max_num_seqs=3)
    for i in range(5):
        add(s, 4, f"r{i}")
    batch = step(s)
    assert len(batch.seqs) == 3 and len(s.waiting) == 2


def test_admission_respects_the_token_budget_and_chunks_long_prompts():
    s = make(budget=10)
    long = add(s, 25, "long")
    batch = step(s)
    assert batch.num_new_tokens == [10] and long.num_computed_tokens == 10
    assert step(s).num_new_tokens == [10]
    assert step(s).num_new_tokens == [5]
    assert long.num_output_tokens == 1


def test_decodes_keep_flowing_while_a_long_prompt_is_chunked():
    s = make(budget=8)
    short = add(s, 3, "short")
    step(s)  # short prefilled; it decodes from now on
    add(s, 30, "long")
    batch = step(s)
    assert short in batch.seqs and batch.num_new_tokens[batch.seqs.index(short)] == 1
    assert batch.num_tokens == 8


def test_prefill_chunks_come_before_decodes_in_a_batch():
    s = make(budget=64)
    add(s, 3, "a")
    step(s)
    add(s, 10, "b")
    batch = step(s)
    assert [q.request_id for q in batch.seqs] == ["b", "a"]


def test_running_out_of_blocks_preempts_the_newest_sequence_back_to_waiting():
    s = make(num_blocks=5, block_size=4, budget=64)  # 4 usable blocks
    a = add(s, 7, "a")
    b = add(s, 7, "b")
    step(s)  # each holds 2 blocks (8 slots); all 4 used
    assert s.bm.num_free_blocks == 0
    step(s)  # 8th token of each still fits
    assert s.num_preemptions == 0
    step(s)  # a's 9th token needs a new block -> b is preempted
    assert b.status is Status.WAITING and s.waiting[0] is b and b.block_table == []
    assert a.status is Status.RUNNING and s.num_preemptions == 1
    assert b.num_computed_tokens == 0 and b.num_preemptions == 1


def test_finish_releases_blocks_from_anywhere():
    s = make()
    a = add(s, 6, "a")
    waiting = add(s, 6, "w")
    s.max_num_seqs = 1
    step(s)
    s.finish(a)
    s.finish(waiting)
    assert not s.has_unfinished() and s.bm.num_free_blocks == s.bm.num_blocks - 1


def test_a_prefix_scheduled_earlier_in_the_same_step_is_shared_at_admission():
    s = make(budget=64)
    prefix = list(range(500, 512))
    a = Sequence("a", prefix + [1, 2], SamplingParams())
    b = Sequence("b", prefix + [3, 4, 5], SamplingParams())
    s.add(a)
    s.add(b)
    batch = s.schedule()
    assert batch.num_new_tokens == [14, 3]  # b computes only its own suffix
    assert b.num_cached_tokens == 12 and b.block_table[:3] == a.block_table[:3]
