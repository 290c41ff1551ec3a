"""Streaming text: no broken characters, stop strings cut exactly, even across chunk boundaries."""

import pytest
from transformers import AutoTokenizer

from inference import LLM, SamplingParams
from inference.engine.detokenizer import append_text, find_stop, streamable_length
from inference.engine.sequence import Sequence


@pytest.fixture(scope="module")
def tokenizer(smollm2_path):
    return AutoTokenizer.from_pretrained(smollm2_path)


def stream(tokenizer, text: str, prompt: str = "Note:", **params) -> tuple[Sequence, list[str]]:
    """Feed `text`'s tokens one at a time as if generated; return the sequence and streamed deltas."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    s = Sequence("r", prompt_ids, SamplingParams(**params))
    deltas = []
    for t in tokenizer(text, add_special_tokens=False)["input_ids"]:
        s.token_ids.append(t)
        new = append_text(tokenizer, s)
        if find_stop(s, len(new)) is not None:
            from inference.engine.sequence import Status

            s.status = Status.FINISHED
        upto = streamable_length(s)
        deltas.append(s.output_text[s.emitted_text_len:upto])
        s.emitted_text_len = max(s.emitted_text_len, upto)
        if s.finished:
            break
    return s, deltas


@pytest.mark.parametrize("text", ["Take sertraline 50 mg — daily. Café naïve 😀 résumé",
                                  "  leading spaces and\nnewlines\n\n", "中文 测试 and emoji 🧠🫀 done"])
def test_incremental_decoding_reassembles_the_text_without_broken_characters(tokenizer, text):
    s, deltas = stream(tokenizer, text)
    assert "".join(deltas) == tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert not any("\ufffd" in d for d in deltas)


def test_a_stop_string_cuts_the_text_exactly_before_it(tokenizer):
    s, deltas = stream(tokenizer, "Plan: refer today. STOP here please", stop=["STOP"])
    assert s.output_text == "Plan: refer today. " and s.stop_reason == "STOP"
    assert "".join(deltas) == s.output_text


def test_a_stop_string_straddling_tokens_is_never_streamed_in_part(tokenizer):
    s, deltas = stream(tokenizer, "abc<|end|>xyz", stop=["<|end|>"])
    assert "".join(deltas) == "abc"
    assert all("<" not in d for d in deltas)


def test_include_stop_str_in_output_keeps_the_stop_string(tokenizer):
    s, _ = stream(tokenizer, "one two three four", stop=[" three"], include_stop_str_in_output=True)
    assert s.output_text == "one two three"


def test_generation_stops_at_a_stop_string_seen_in_the_unstopped_output(smollm2_path, tmp_path):
    llm = LLM(smollm2_path, data_dir=tmp_path, kv_cache_memory="128MiB")
    prompt = "The three most common symptoms of depression are"
    free = llm.generate([prompt], SamplingParams(max_tokens=40, temperature=0))[0].text
    words = free.split()
    stop = " " + words[len(words) // 2]
    cut = free.index(stop)
    stopped = llm.generate([prompt], SamplingParams(max_tokens=40, temperature=0, stop=[stop]))[0]
    assert stopped.text == free[:cut]
    assert stopped.finish_reason == "stop"
