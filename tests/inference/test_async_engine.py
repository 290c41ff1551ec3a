"""The asyncio engine: concurrent streams share steps; aborts and disconnects free blocks at once."""

import asyncio

import pytest
from support.models import hf_greedy

from inference import AsyncLLMEngine, EngineConfig, InvalidParameterError, SamplingParams


@pytest.fixture(scope="module")
def engine(tiny_llama, tmp_path_factory):
    eng = AsyncLLMEngine.from_config(EngineConfig(model=tiny_llama, data_dir=tmp_path_factory.mktemp("d"),
                                                  kv_cache_memory="16MiB"))
    yield eng
    eng.shutdown()


async def collect(engine, prompt, params, rid=None):
    deltas, last = [], None
    async for out in engine.generate(prompt, params, request_id=rid):
        deltas.append(out.delta_token_ids)
        last = out
    return deltas, last


def test_concurrent_streams_complete_share_steps_and_match_hf(engine, tiny_llama):
    prompts = [[5 + i, 6, 7, 8 + i] for i in range(8)]
    params = SamplingParams(max_tokens=16, temperature=0, ignore_eos=True)
    steps_before = engine.engine.stats["steps"]

    async def main():
        return await asyncio.gather(*(collect(engine, p, params) for p in prompts))

    results = asyncio.run(main())
    steps = engine.engine.stats["steps"] - steps_before
    assert steps < 8 * 16 / 2, "requests were not batched into shared steps"
    expected = hf_greedy(tiny_llama, prompts, 16)
    for (deltas, last), exp in zip(results, expected, strict=True):
        assert last.finished and last.token_ids == exp
        assert [t for d in deltas for t in d] == exp  # deltas add up to the whole output


def test_breaking_out_of_a_stream_aborts_the_request_and_frees_its_blocks(engine):
    bm = engine.engine.block_manager

    async def main():
        agen = engine.generate([5, 6, 7], SamplingParams(max_tokens=500, temperature=0, ignore_eos=True))
        async for out in agen:
            if len(out.token_ids) >= 3:
                break
        await agen.aclose()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if not engine.engine.has_unfinished_requests():
                break

    asyncio.run(main())
    assert not engine.engine.has_unfinished_requests()
    assert bm.num_free_blocks == bm.num_blocks - 1


def test_an_invalid_request_raises_to_its_caller_while_others_finish(engine):
    async def main():
        good = asyncio.create_task(collect(engine, [5, 6], SamplingParams(max_tokens=8, temperature=0,
                                                                          ignore_eos=True)))
        with pytest.raises(InvalidParameterError):
            await collect(engine, "", SamplingParams())
        return await good

    _, last = asyncio.run(main())
    assert last.finished and len(last.token_ids) == 8


def test_abort_by_request_id_ends_the_request(engine):
    async def main():
        task = asyncio.create_task(collect(engine, [9, 9, 9], SamplingParams(max_tokens=900, temperature=0,
                                                                             ignore_eos=True), "victim"))
        await asyncio.sleep(0.2)
        engine.abort("victim")
        done, _ = await asyncio.wait([task], timeout=0.5)
        task.cancel()
        return done

    asyncio.run(main())
    for _ in range(50):
        if not engine.engine.has_unfinished_requests():
            break
        import time

        time.sleep(0.02)
    assert "victim" not in engine.engine.requests
