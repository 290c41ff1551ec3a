"""The official `openai` package, unchanged, against our server: chat, completions, embeddings."""

import asyncio

import numpy as np
import openai
import pytest
from support.server import API_KEY, EMBED, MODEL


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)


@pytest.fixture
def aclient(server):
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)


MESSAGES = [{"role": "user", "content": "Name one symptom of depression."}]


def test_models_lists_the_base_model_and_the_embedder(client):
    ids = [m.id for m in client.models.list().data]
    assert MODEL in ids and EMBED in ids


def test_chat_completion_returns_text_usage_and_finish_reason(client):
    r = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=12, temperature=0)
    choice = r.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_max_completion_tokens_caps_the_answer_with_finish_reason_length(client):
    r = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_completion_tokens=3, temperature=0,
                                       extra_body={"ignore_eos": True})
    assert r.usage.completion_tokens == 3 and r.choices[0].finish_reason == "length"


def test_streamed_chat_equals_the_non_streamed_answer_and_reports_usage(client):
    kw = dict(model=MODEL, messages=MESSAGES, max_tokens=16, temperature=0)
    full = client.chat.completions.create(**kw).choices[0].message.content
    chunks = list(client.chat.completions.create(**kw, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_n_choices_seeded_sampling_and_logprobs(client):
    r = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8, n=2, temperature=1.0,
                                       seed=11, logprobs=True, top_logprobs=2)
    assert [c.index for c in r.choices] == [0, 1]
    lp = r.choices[0].logprobs.content
    assert lp and all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in lp)
    again = client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8, n=2, temperature=1.0,
                                           seed=11)
    assert [c.message.content for c in again.choices] == [c.message.content for c in r.choices]


def test_completions_stop_string_and_streaming(client):
    r = client.completions.create(model=MODEL, prompt="1, 2, 3, 4,", max_tokens=20, temperature=0, stop=[" 7"])
    assert r.choices[0].finish_reason == "stop" and " 7" not in r.choices[0].text
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt="1, 2, 3, 4,", max_tokens=20, temperature=0, stop=[" 7"], stream=True) if c.choices)
    assert streamed == r.choices[0].text


def test_completions_accept_several_prompts_and_token_ids(client):
    r = client.completions.create(model=MODEL, prompt=["Hello", "The patient"], max_tokens=4, temperature=0,
                                  extra_body={"ignore_eos": True})
    assert [c.index for c in r.choices] == [0, 1] and all(c.text for c in r.choices)
    ids = client.completions.create(model=MODEL, prompt=[[504, 3458], [504]], max_tokens=4, temperature=0,
                                    extra_body={"ignore_eos": True})
    assert len(ids.choices) == 2 and ids.usage.prompt_tokens == 3


def test_embeddings_float_and_base64_agree_and_are_normalised(client):
    floats = client.embeddings.create(model=EMBED, input=["low mood", "insomnia"], encoding_format="float")
    default = client.embeddings.create(model=EMBED, input=["low mood", "insomnia"])  # base64 on the wire
    a = np.array([d.embedding for d in floats.data])
    b = np.array([d.embedding for d in default.data])
    assert a.shape == (2, 384) and np.allclose(a, b, atol=1e-6)
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-4)
    assert floats.usage.prompt_tokens > 0


def test_async_client_streams_concurrently(aclient):
    async def one(i):
        stream = await aclient.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Count to {i + 3}."}], max_tokens=10,
            temperature=0, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def main():
        return await asyncio.gather(*(one(i) for i in range(6)))

    assert all(asyncio.run(main()))
