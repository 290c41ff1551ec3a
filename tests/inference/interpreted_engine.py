"""Run the engine with its Triton kernels on CPU tensors, under Triton's interpreter; a subprocess of the tests.

    TRITON_INTERPRET=1 python tests/inference/interpreted_engine.py SPEC_JSON

SPEC_JSON: {"data_dir": ..., "runs": [{"name", "model", "prompts", "max_tokens", "engine": {EngineConfig
fields}}]}. Prints one JSON line: per run, the greedy token ids and how often each kernel ran, so the test
can tell the kernels really served the forward.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

if os.environ.get("TRITON_INTERPRET") != "1":
    sys.exit("set TRITON_INTERPRET=1: the kernels run on CPU tensors only under Triton's interpreter")

from inference import LLM, SamplingParams, kernels  # noqa: E402
from inference.kernels import paged_attention, rms_norm, rotary  # noqa: E402

calls: Counter = Counter()


def counted(module, name: str) -> None:
    fn = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls[f"{module.__name__.rsplit('.', 1)[-1]}.{name}"] += 1
        return fn(*args, **kwargs)

    setattr(module, name, wrapper)


for module, name in ((paged_attention, "paged_decode"), (paged_attention, "paged_prefill"),
                     (rms_norm, "rms_norm"), (rotary, "rotate")):
    counted(module, name)


def main() -> None:
    spec = json.loads(sys.argv[1])
    kernels.run_on_cpu(True)
    result = {}
    for run in spec["runs"]:
        calls.clear()
        llm = LLM(run["model"], data_dir=spec["data_dir"], **run["engine"])
        params = SamplingParams(max_tokens=run["max_tokens"], temperature=0, ignore_eos=True)
        outs = llm.generate(run["prompts"], params)
        bm = llm.engine.block_manager
        result[run["name"]] = {"tokens": [o.token_ids for o in outs], "calls": dict(calls),
                               "cached": [o.metrics.num_cached_tokens for o in outs],
                               "blocks_leaked": bm.num_blocks - 1 - bm.num_free_blocks}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
