"""Perplexity of our engine's forward pass (sliding windows), to see what quantization costs in quality.

    python -m inference.eval_ppl [--model NAME_OR_PATH] [--quantization int8|int4] [--kv-cache-dtype int8]
                                 [--context 512] [--stride 256] [--json OUT] [--compare] [FILES...]

Scores the bundled guideline corpus (data/guidelines/*.md without SOURCES.md) or the given text files.
Each file is tokenized on its own and read in windows of `context` tokens that start every `stride` tokens;
a window scores only the tokens no earlier window scored, so every token after the first is predicted
once, with at least context - stride tokens before it (the first window's tokens with fewer). The windows
run through the engine's own loader, quantization, KV cache and model runner. With a quantized KV cache a
window runs in chunks of `--chunk` tokens (default 64) so that later chunks attend to the cached, quantized
keys and values as decoding does (a fresh prompt's first chunk sees its own keys unquantized); with a float
cache chunking changes nothing but speed, so a window is one forward. `--compare` runs none / int8 / int4
side by side and prints a table.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import EngineConfig
from .engine.llm_engine import LLMEngine
from .engine.scheduler import ScheduledBatch
from .engine.sequence import Sequence
from .sampling_params import SamplingParams

CORPUS = Path(__file__).resolve().parents[1] / "data" / "guidelines"


@dataclass
class Score:
    """Summed negative log-likelihood (nats) of `tokens` predicted tokens."""

    nll: float = 0.0
    tokens: int = 0

    def add(self, other: Score) -> None:
        self.nll += other.nll
        self.tokens += other.tokens

    @property
    def ppl(self) -> float:
        return math.exp(self.nll / self.tokens) if self.tokens else float("nan")


def windows(num_tokens: int, context: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """(begin, end, first scored position) of each window over a text of num_tokens tokens."""
    prev_end = 0
    for begin in range(0, num_tokens, stride):
        end = min(begin + context, num_tokens)
        yield begin, end, max(prev_end, begin + 1)
        prev_end = end
        if end == num_tokens:
            break


def score_window(engine: LLMEngine, token_ids: list[int], first_scored: int, chunk: int) -> Score:
    """NLL of token_ids[first_scored:] given the tokens before them, run in chunks through the KV cache."""
    seq = Sequence("eval-ppl", list(token_ids), SamplingParams(max_tokens=1))
    bm = engine.block_manager
    if not bm.allocate_prompt(seq, len(token_ids)):
        raise RuntimeError(f"the KV cache cannot hold a window of {len(token_ids)} tokens")
    if seq.num_computed_tokens:  # a prefix-cache hit would skip positions we need to score
        bm.free_sequence(seq)
        raise RuntimeError("score windows with an engine built with enable_prefix_caching=False")
    targets = torch.tensor(token_ids, device=engine.config.device)
    score = Score()
    try:
        for start in range(0, len(token_ids), chunk):
            n = min(chunk, len(token_ids) - start)
            hidden = engine.runner.hidden_states(ScheduledBatch([seq], [n]))
            seq.num_computed_tokens += n
            # the row for position p predicts token p + 1; keep rows whose target is scored
            lo, hi = max(first_scored - 1, start), min(start + n, len(token_ids) - 1)
            if lo >= hi:
                continue
            with torch.inference_mode():
                logprobs = engine.model.logits(hidden[lo - start:hi - start]).log_softmax(-1)
                picked = logprobs.gather(1, targets[lo + 1:hi + 1, None])
            score.add(Score(-picked.sum().item(), hi - lo))
    finally:
        bm.free_sequence(seq)
    return score


def score_tokens(engine: LLMEngine, token_ids: list[int], context: int = 512, stride: int = 256,
                 chunk: int = 64) -> Score:
    """Sliding-window NLL of one token sequence under the engine's model."""
    if not 0 < stride <= context:
        raise ValueError(f"need 0 < stride <= context, got stride={stride}, context={context}")
    total = Score()
    for begin, end, first in windows(len(token_ids), context, stride):
        total.add(score_window(engine, token_ids[begin:end], first - begin, chunk))
    return total


def corpus_files(paths: list[str]) -> list[Path]:
    """The given files, or the bundled guideline corpus without its SOURCES.md."""
    if paths:
        return [Path(p) for p in paths]
    return sorted(p for p in CORPUS.glob("*.md") if p.name != "SOURCES.md")


def build_engine(model: str | Path | None, quantization: str | None, kv_cache_dtype: str, context: int,
                 **engine_args) -> LLMEngine:
    """An engine for scoring: no prefix caching (every window must be computed), room for a window."""
    return LLMEngine(EngineConfig(model=model, quantization=quantization, kv_cache_dtype=kv_cache_dtype,
                                  enable_prefix_caching=False, max_num_seqs=1,
                                  max_model_len=max(context, 16), **engine_args))


def evaluate(engine: LLMEngine, files: list[Path], context: int, stride: int, chunk: int) -> dict:
    """Per-file and total perplexity of the engine's model on text files."""
    per_file, total = {}, Score()
    start = time.perf_counter()
    for f in files:
        ids = engine.tokenizer(f.read_text(), verbose=False)["input_ids"]
        s = score_tokens(engine, ids, context, stride, chunk)
        per_file[f.name] = {"ppl": s.ppl, "tokens": s.tokens}
        total.add(s)
    return {"ppl": total.ppl, "nll": total.nll, "tokens": total.tokens, "seconds": time.perf_counter() - start,
            "files": per_file}


def print_table(rows: dict[str, dict]) -> None:
    base = rows.get("none", {}).get("ppl")
    print(f"{'quantization':14} {'ppl':>9} {'delta':>9} {'tokens':>8} {'weights MiB':>12} {'seconds':>8}")
    for name, r in rows.items():
        delta = "-" if base is None or name == "none" else f"{100 * (r['ppl'] / base - 1):+.2f}%"
        print(f"{name:14} {r['ppl']:9.3f} {delta:>9} {r['tokens']:8d} {r['weight_mib']:12.0f} {r['seconds']:8.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", help="text files (default: the bundled guideline corpus)")
    ap.add_argument("--model", default=None, help="model name or path (default: the embedded model)")
    ap.add_argument("--quantization", choices=["int8", "int4"], default=None)
    ap.add_argument("--group-size", type=int, default=32, help="int4 group size (32, 64 or 128)")
    ap.add_argument("--quantize-lm-head", action="store_true", help="also quantize the LM head (to measure it)")
    ap.add_argument("--kv-cache-dtype", choices=["auto", "int8", "fp8"], default="auto")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--context", type=int, default=512, help="tokens per window")
    ap.add_argument("--stride", type=int, default=256, help="tokens between window starts")
    ap.add_argument("--chunk", type=int, default=None,
                    help="tokens per forward within a window (default: the window, 64 with a quantized KV cache)")
    ap.add_argument("--compare", action="store_true", help="run none, int8 and int4 and print a table")
    ap.add_argument("--data-dir", default="var")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args(argv)

    files = corpus_files(args.files)
    chunk = args.chunk or (args.context if args.kv_cache_dtype == "auto" else 64)
    methods = [None, "int8", "int4"] if args.compare else [args.quantization]
    rows: dict[str, dict] = {}
    for method in methods:
        engine = build_engine(args.model, method, args.kv_cache_dtype, args.context, dtype=args.dtype,
                              quantization_group_size=args.group_size, data_dir=Path(args.data_dir),
                              threads=args.threads)
        if method and args.quantize_lm_head:
            from .quantization import quantize_model, weight_bytes

            quantize_model(engine.model, method, args.group_size, include_lm_head=True)
            engine.weight_bytes = weight_bytes(engine.model)
        name = (method or "none") + ("+head" if method and args.quantize_lm_head else "")
        rows[name] = r = evaluate(engine, files, args.context, args.stride, chunk)
        r["weight_mib"] = engine.weight_bytes / 2**20
        print(f"{name}: ppl {r['ppl']:.3f} over {r['tokens']} tokens in {r['seconds']:.0f}s", file=sys.stderr)
        del engine
        gc.collect()
    print(f"model {args.model or 'default'}, {args.dtype}, kv_cache_dtype {args.kv_cache_dtype}, context "
          f"{args.context}, stride {args.stride}, chunk {chunk}, {len(files)} files")
    print_table(rows)
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "files")}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"settings": settings, "files": [str(f) for f in files],
                                               "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
