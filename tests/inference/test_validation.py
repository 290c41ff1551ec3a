"""Bad input gets a specific error naming the parameter and value; the engine keeps serving others."""

import pytest

from inference import LLM, InvalidParameterError, ModelNotFoundError, PromptTooLongError, SamplingParams


@pytest.mark.parametrize("kwargs, param", [
    ({"temperature": -0.1}, "temperature"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"top_k": -5}, "top_k"),
    ({"min_p": 2.0}, "min_p"),
    ({"presence_penalty": 3.0}, "presence_penalty"),
    ({"logprobs": 50}, "logprobs"),
    ({"stop": [""]}, "stop"),
])
def test_invalid_sampling_parameters_name_the_parameter_and_value(kwargs, param):
    with pytest.raises(InvalidParameterError) as e:
        SamplingParams(**kwargs)
    assert e.value.param == param
    assert param in str(e.value) and repr(next(iter(kwargs.values()))) in str(e.value)


@pytest.fixture(scope="module")
def llm(tiny_llama, tmp_path_factory):
    return LLM(tiny_llama, data_dir=tmp_path_factory.mktemp("d"), kv_cache_memory="16MiB", max_model_len=128)


def test_an_empty_prompt_is_refused(llm):
    with pytest.raises(InvalidParameterError, match="prompt"):
        llm.generate([""])
    with pytest.raises(InvalidParameterError, match="prompt"):
        llm.generate([[]])


def test_token_ids_outside_the_vocabulary_are_refused(llm):
    with pytest.raises(InvalidParameterError, match=r"\[0, 512\)"):
        llm.generate([[1, 2, 100000]])


def test_prompt_plus_max_tokens_over_the_context_states_both_counts_and_the_limit(llm):
    with pytest.raises(PromptTooLongError) as e:
        llm.generate([list(range(3, 103))], SamplingParams(max_tokens=40))
    msg = str(e.value)
    assert "100" in msg and "40" in msg and "128" in msg
    assert (e.value.prompt_tokens, e.value.max_tokens, e.value.limit) == (100, 40, 128)


def test_an_unknown_model_path_is_refused(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        LLM(str(tmp_path / "no-such-model"), data_dir=tmp_path)


def test_a_bad_request_in_a_batch_leaves_the_engine_serving(llm):
    with pytest.raises(InvalidParameterError):
        llm.generate([[5, 6], ""], SamplingParams(max_tokens=4, temperature=0))
    assert not llm.engine.has_unfinished_requests()
    out = llm.generate([[5, 6]], SamplingParams(max_tokens=4, temperature=0, ignore_eos=True))
    assert len(out[0].token_ids) == 4
