"""Decode steps on CUDA: graphs captured for a ladder of batch sizes, steps padded to the next one, and
sampling that reads back only the chosen token ids. The CUDA tests skip on machines without a GPU."""

from __future__ import annotations

import warnings

import pytest
import torch
from support.models import hf_greedy, random_prompts

from inference import LLM, SamplingParams
from inference.engine.cuda_graphs import capture_sizes, decode_inputs, graphs_supported, padded_size
from inference.engine.sequence import Sequence
from inference.layers.sampler import Sampler

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")


def test_graphs_are_captured_for_small_powers_of_two_then_every_16_up_to_max_num_seqs():
    assert capture_sizes(1) == [1]
    assert capture_sizes(5) == [1, 2, 4, 5]
    assert capture_sizes(40) == [1, 2, 4, 8, 16, 32, 40]
    assert capture_sizes(128) == [1, 2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128]
    assert capture_sizes(10_000)[-1] == 512


def test_a_step_is_padded_to_the_smallest_captured_size_that_holds_it():
    sizes = capture_sizes(40)
    assert [padded_size(sizes, n) for n in (1, 2, 3, 5, 9, 16, 17, 33, 40)] == [1, 2, 4, 8, 16, 16, 32, 40, 40]
    assert padded_size(sizes, 41) is None  # more decodes than the largest graph: the step runs eagerly


def test_decode_inputs_put_padding_rows_on_the_never_allocated_block_zero():
    a = Sequence("a", [5, 6, 7], SamplingParams())
    a.block_table, a.num_computed_tokens = [3], 2  # decoding token 7 at position 2
    b = Sequence("b", list(range(10, 30)), SamplingParams())
    b.block_table, b.num_computed_tokens = [4, 9], 19  # position 19: block 9, slot 3
    inputs, tables = decode_inputs([a, b], block_size=16, padded=4)
    ids, positions, slots, lengths = inputs.tolist()
    assert ids == [7, 29, 0, 0] and positions == [2, 19, 0, 0]
    assert slots == [3 * 16 + 2, 9 * 16 + 3, 0, 0]
    assert lengths == [3, 20, 1, 1]  # padding attends to one slot of block 0, never to nothing
    assert tables.tolist() == [[3, 0], [4, 9]]


def test_graphs_need_cuda_the_triton_kernels_and_no_lora():
    assert not graphs_supported("cpu", lora=False)
    if torch.cuda.is_available():
        assert not graphs_supported("cuda", lora=True)


def test_the_cpu_engine_runs_eagerly(tiny_llama, tmp_path):
    llm = LLM(tiny_llama, data_dir=tmp_path, kv_cache_memory="4MiB")
    assert llm.engine.runner.graphs is None


@cuda
@pytest.mark.parametrize("variant", ["llama-gqa-tied", "qwen2-gqa-bias"])
def test_graph_replay_generates_what_hf_and_the_eager_engine_generate(tiny_models, variant, tmp_path):
    path = tiny_models[variant]
    prompts = random_prompts(12, 3, 70, seed=1)  # 12 decodes pad to the graph of 16
    params = SamplingParams(max_tokens=24, temperature=0, ignore_eos=True)
    kw = dict(data_dir=tmp_path, device="cuda", kv_cache_memory="64MiB", max_num_seqs=16)
    graphs = LLM(path, **kw)
    assert graphs.engine.runner.graphs is not None
    eager = LLM(path, enforce_eager=True, **kw)
    reference = LLM(path, enforce_eager=True, use_triton_kernels=False, **kw)
    expected = hf_greedy(path, prompts, 24)
    assert [o.token_ids for o in graphs.generate(prompts, params)] == expected
    assert [o.token_ids for o in eager.generate(prompts, params)] == expected
    assert [o.token_ids for o in reference.generate(prompts, params)] == expected


@cuda
def test_an_int8_cache_decodes_through_graphs(tiny_llama, tmp_path):
    prompts = random_prompts(6, 3, 70, seed=2)
    params = SamplingParams(max_tokens=16, temperature=0, ignore_eos=True)
    kw = dict(data_dir=tmp_path, device="cuda", kv_cache_memory="64MiB", max_num_seqs=8, kv_cache_dtype="int8")
    graphs = LLM(tiny_llama, **kw)
    assert graphs.engine.runner.graphs is not None
    reference = LLM(tiny_llama, enforce_eager=True, use_triton_kernels=False, **kw)
    got = [o.token_ids for o in graphs.generate(prompts, params)]
    want = [o.token_ids for o in reference.generate(prompts, params)]
    same = sum(x == y for a, b in zip(got, want, strict=True) for x, y in zip(a, b, strict=True))
    assert same / (6 * 16) >= 0.9


@cuda
def test_sampling_waits_for_the_gpu_once_per_step():
    vocab = 1000
    logits = torch.randn(4, vocab, device="cuda")
    seqs = [Sequence("greedy", [1, 2, 3], SamplingParams(temperature=0)),
            Sequence("filtered", [4, 5], SamplingParams(temperature=0.7, top_p=0.9, top_k=50, min_p=0.05)),
            Sequence("seeded", [6], SamplingParams(temperature=1.0, seed=3)),
            Sequence("penalised", [7, 8, 8], SamplingParams(temperature=0.8, repetition_penalty=1.2,
                                                            presence_penalty=0.5, frequency_penalty=0.3))]
    seqs[3].token_ids += [9, 9]
    sampler = Sampler("cuda")
    sampler(logits, seqs)  # warm-up: pinned buffers, generators
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            tokens, _ = sampler(logits, seqs)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert len(syncs) == 1, [str(w.message) for w in syncs]
    assert len(tokens) == 4 and all(0 <= t < vocab for t in tokens)
