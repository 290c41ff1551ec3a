"""Sampling: seeds reproduce, filters keep what they promise, penalties move logits the documented way."""

import pytest
import torch

from inference import LLM, SamplingParams
from inference.engine.sequence import Sequence
from inference.layers.sampler import Sampler, apply_penalties, filter_logits


def seq(tokens, prompt_len=None, rid="r", **params):
    s = Sequence(rid, list(tokens[:prompt_len] if prompt_len else tokens), SamplingParams(**params))
    if prompt_len:
        s.token_ids = list(tokens)
    return s


def test_top_k_keeps_exactly_k_tokens():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    out = filter_logits(logits, [2], [1.0], [0.0])
    assert torch.isfinite(out).tolist() == [[False, True, False, True, False]]


def test_top_p_keeps_the_smallest_set_reaching_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    out = filter_logits(logits, [-1], [0.7], [0.0])
    assert torch.isfinite(out).tolist() == [[True, True, False, False]]


def test_min_p_drops_tokens_below_a_fraction_of_the_best():
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.08, 0.02]]))
    out = filter_logits(logits, [-1], [1.0], [0.1])  # threshold 0.06
    assert torch.isfinite(out).tolist() == [[True, True, True, False]]


def test_filters_never_remove_the_most_likely_token():
    logits = torch.tensor([[0.0, 10.0, 0.0]])
    out = filter_logits(logits, [-1], [1e-9], [1.0])
    assert out.argmax().item() == 1 and torch.isfinite(out).sum() == 1


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens():
    logits = torch.tensor([[2.0, -2.0, 2.0, -2.0]])
    apply_penalties(logits, [seq([0, 1], repetition_penalty=2.0)])
    assert logits.tolist() == [[1.0, -4.0, 2.0, -2.0]]


def test_presence_and_frequency_penalties_count_generated_tokens_only():
    logits = torch.zeros(1, 5)
    s = seq([4, 1, 1, 2], prompt_len=1, presence_penalty=0.5, frequency_penalty=1.0)
    apply_penalties(logits, [s])
    assert logits.tolist() == [[0.0, -2.5, -1.5, 0.0, 0.0]]  # the prompt token 4 is untouched


def test_greedy_rows_take_the_argmax_while_sampled_rows_follow_their_seed():
    sampler = Sampler("cpu", seed=0)
    logits = torch.randn(3, 50)
    rows = [seq([1], rid="g", temperature=0), seq([1], rid="s1", seed=7), seq([1], rid="s2", seed=7)]
    tokens, _ = sampler(logits, rows)
    assert tokens[0] == logits[0].argmax().item()
    again, _ = Sampler("cpu", seed=99)(logits[1:2], [seq([1], rid="s1", seed=7)])
    assert again[0] == tokens[1]


def test_sampling_follows_the_distribution():
    sampler = Sampler("cpu", seed=1)
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).repeat(4000, 1)
    tokens, _ = sampler(logits, [seq([1], rid=str(i)) for i in range(4000)])
    freq = torch.bincount(torch.tensor(tokens), minlength=3).float() / 4000
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.03)


@pytest.fixture(scope="module")
def tiny_llm(tiny_llama, tmp_path_factory):
    return LLM(tiny_llama, data_dir=tmp_path_factory.mktemp("d"), kv_cache_memory="16MiB")


def test_same_seed_gives_the_same_output_even_in_different_batches(tiny_llm):
    p = SamplingParams(max_tokens=20, temperature=1.0, top_p=0.95, seed=1234, ignore_eos=True)
    alone = tiny_llm.generate([[5, 6, 7, 8]], p)[0].token_ids
    together = tiny_llm.generate([[9, 10, 11], [5, 6, 7, 8], [12, 13]], [
        SamplingParams(max_tokens=20, temperature=0.8, ignore_eos=True), p,
        SamplingParams(max_tokens=5, temperature=1.0, seed=3, ignore_eos=True)])[1].token_ids
    assert alone == together
    other = tiny_llm.generate([[5, 6, 7, 8]], SamplingParams(max_tokens=20, seed=4321, ignore_eos=True))[0]
    assert other.token_ids != alone


def test_top_k_of_one_is_greedy(tiny_llm):
    greedy = tiny_llm.generate([[5, 6, 7]], SamplingParams(max_tokens=12, temperature=0, ignore_eos=True))
    topk1 = tiny_llm.generate([[5, 6, 7]], SamplingParams(max_tokens=12, temperature=1.5, top_k=1,
                                                          ignore_eos=True))
    assert greedy[0].token_ids == topk1[0].token_ids


def test_stop_token_ids_end_the_request_with_reason_stop(tiny_llm):
    greedy = tiny_llm.generate([[5, 6, 7]], SamplingParams(max_tokens=12, temperature=0, ignore_eos=True))[0]
    target = greedy.token_ids[4]
    first = greedy.token_ids.index(target)
    out = tiny_llm.generate([[5, 6, 7]], SamplingParams(max_tokens=12, temperature=0, ignore_eos=True,
                                                        stop_token_ids=[target]))[0]
    assert out.token_ids == greedy.token_ids[: first + 1]
    assert out.finish_reason == "stop" and out.outputs[0].stop_reason == target
