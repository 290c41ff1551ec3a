"""Concurrent streams share engine steps; a client that goes away frees its KV blocks at once."""

import asyncio
import re
import time

import httpx
from support.server import MODEL


def metric(server, name: str) -> float:
    text = httpx.get(server.url + "/metrics", headers=server.headers(), timeout=30).text
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def test_metrics_expose_the_documented_names(server):
    text = httpx.get(server.url + "/metrics", headers=server.headers(), timeout=30).text
    for name in ["curbside_num_requests_running", "curbside_num_requests_waiting", "curbside_kv_cache_usage_perc",
                 "curbside_prefix_cache_hit_ratio", "curbside_prompt_tokens_total",
                 "curbside_generation_tokens_total", "curbside_time_to_first_token_seconds_bucket",
                 "curbside_inter_token_latency_seconds_bucket", "curbside_e2e_request_latency_seconds_bucket",
                 "curbside_request_queue_time_seconds_bucket", "curbside_embedding_batch_size_bucket"]:
        assert name in text, name


def test_many_concurrent_streams_complete_in_shared_engine_steps(server):
    steps0 = metric(server, "curbside_engine_steps_total")
    seqs0 = metric(server, "curbside_engine_step_num_sequences_sum")

    async def one(client, i):
        body = {"model": MODEL, "messages": [{"role": "user", "content": f"Say something about {i}."}],
                "max_tokens": 12, "temperature": 0, "stream": True, "ignore_eos": True}
        chunks = []
        async with client.stream("POST", server.base_url + "/chat/completions", json=body,
                                 headers=server.headers()) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line.startswith("data: "):
                    chunks.append(line[6:])
        return chunks

    async def main():
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(*(one(client, i) for i in range(16)))

    results = asyncio.run(main())
    assert all(r[-1] == "[DONE]" for r in results)
    steps = metric(server, "curbside_engine_steps_total") - steps0
    seqs = metric(server, "curbside_engine_step_num_sequences_sum") - seqs0
    assert seqs / steps > 4, f"only {seqs / steps:.1f} sequences per step: streams were not batched"


def test_embedding_requests_are_coalesced_into_batches(server):
    count0 = metric(server, "curbside_embedding_batch_size_count")
    texts0 = metric(server, "curbside_embedding_batch_size_sum")

    async def main():
        async with httpx.AsyncClient(timeout=60) as client:
            rs = await asyncio.gather(*(client.post(server.base_url + "/embeddings", headers=server.headers(),
                                                    json={"model": "all-minilm-l6-v2", "input": f"text {i}"})
                                        for i in range(24)))
        return [r.json()["data"][0]["embedding"] for r in rs]

    vectors = asyncio.run(main())
    assert len(vectors) == 24 and all(len(v) == 384 for v in vectors)
    batches = metric(server, "curbside_embedding_batch_size_count") - count0
    assert metric(server, "curbside_embedding_batch_size_sum") - texts0 == 24
    assert batches < 24, "every request ran its own forward"


def wait_idle(server, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    running = usage = None
    while time.monotonic() < deadline:
        running = metric(server, "curbside_num_requests_running")
        usage = metric(server, "curbside_kv_cache_usage_perc")
        if running == 0 and usage == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"blocks were not freed after the client disconnected: running={running}, "
                         f"kv usage={usage}\n{server.log()[-2000:]}")


def test_a_disconnected_stream_is_aborted_and_frees_its_blocks(server):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Write a long story."}],
            "max_tokens": 4000, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body, headers=server.headers(),
                      timeout=60) as r:
        assert r.status_code == 200, r.read()
        # Hold the line iterator while the metrics are read: breaking out of a `for` over it would drop the
        # generator, and closing it closes the connection, which the server rightly treats as a disconnect.
        lines = r.iter_lines()
        first = [next(lines) for _ in range(7)]
        # The gauges are sampled at the instant /metrics is read; the request may be between steps or
        # preempted back to waiting, so look a few times for it in the engine while the stream is open.
        deadline, in_engine = time.monotonic() + 10, 0.0
        while in_engine < 1 and time.monotonic() < deadline:
            in_engine = metric(server, "curbside_num_requests_running") + metric(server,
                                                                                 "curbside_num_requests_waiting")
            time.sleep(0.05)
        assert in_engine >= 1, (f"the stream was not in the engine while being read: {in_engine}\n{first}\n"
                                f"{server.log()[-3000:]}")
    wait_idle(server)


def test_a_disconnected_non_streaming_request_is_aborted_too(server):
    body = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 4000, "ignore_eos": True}
    try:
        httpx.post(server.base_url + "/completions", json=body, headers=server.headers(), timeout=1.5)
    except httpx.TimeoutException:
        pass
    wait_idle(server)
