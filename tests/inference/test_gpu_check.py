"""scripts/gpu_check.py, in its --smoke mode: the GPU check's code paths on the CPU with tiny shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_smoke_run_writes_every_section_of_the_report(tmp_path):
    out = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "scripts/gpu_check.py", str(out), "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "smoke" and report["errors"] == {} and report["ok"]
    assert report["env"]["torch"] == __import__("torch").__version__
    assert "kernels" in report["skipped"]  # no GPU: the kernels are tested under the interpreter instead
    for model in ("llama", "qwen2"):
        engine = report["correctness"][model]["engines"]["cpu"]
        assert engine["ok"] and engine["seeded_sampling_reproducible"]
        for key in ("top1_agreement", "max_abs_logprob_gap", "prefill_kl_mean", "sequences_equal_to_hf"):
            assert key in engine
        assert 0.5 <= report["correctness"][model]["hf_bf16_vs_fp32_top1"] <= 1
    assert report["bandwidth"]["gb_per_s"] > 0
    for key in ("bench_1b", "bench_8b"):
        bench = report[key]
        engine, hf = bench["engine"], bench["hf"]
        assert engine["single_stream"]["itl_ms"] > 0 and engine["single_stream_eager"]["itl_ms"] > 0
        assert engine["roofline_itl_ms"] > 0 and 0 < engine["single_stream"]["fraction_of_roofline"]
        assert engine["throughput"]["requests"] == bench["requests"]
        assert engine["throughput"]["output_tokens_per_s"] > 0
        assert hf["cache"] == "static" and hf["batches_timed"] >= 1 and hf["output_tokens_per_s"] > 0
        assert bench["throughput_vs_hf"] > 0
    assert "bench_1b" in done.stdout.splitlines()[-2] or "bench_8b" in done.stdout.splitlines()[-1]
