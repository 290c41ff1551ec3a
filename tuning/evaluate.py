"""Evaluate a base model or an adapter on a split: greedy answers, task metrics and reference perplexity.

One prefill per batch does two jobs: the prompt followed by the reference answer is run once, which gives
the reference's log-likelihood (perplexity) and, at the last prompt position, the first generated token;
the KV cache is then cut back to the prompt and greedy decoding continues from there. On the CPU the prompt
(about 700 tokens) costs far more than the answer, so this halves the cost of scoring both.

Prompts are left-padded so that they all end at the same column; references are right-padded after them.
Batches are formed from prompts of similar length. Decoding stops at the end-of-turn token or after
`max_new_tokens`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .encoding import prompt_ids
from .methods import (
    causal_lm,
    forward,
    load_adapter,
    load_base,
    load_tokenizer,
    resolve_base,
    select_device,
    set_threads,
)
from .metrics import aggregate, score_example


@dataclass(frozen=True)
class EvalConfig:
    batch_size: int = 16
    max_new_tokens: int = 96   # consult-example answers (DataConfig.consult) need about 192
    max_seq_len: int = 1024
    device: str = "auto"


@dataclass
class Generation:
    answer: str
    nll: float          # summed over the reference tokens (0 when there is no reference)
    ref_tokens: int
    new_tokens: int
    prefill_seconds: float = 0.0  # this example's share of its batch's prefill and decode time
    decode_seconds: float = 0.0


def _reference_ids(messages: list[dict], tokenizer) -> list[int]:
    if not messages or messages[-1]["role"] != "assistant":
        return []
    return tokenizer(messages[-1]["content"] + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]


def stop_ids(tokenizer, model) -> set[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(causal_lm(model), "generation_config", None), "eos_token_id", None)
    ids |= set(configured if isinstance(configured, list) else [configured])
    return {i for i in ids if i is not None}


@torch.inference_mode()
def generate_batch(model, tokenizer, prompts: list[list[int]], references: list[list[int]], max_new_tokens: int,
                   device: torch.device) -> list[Generation]:
    """Greedy answers for a batch of prompts, and each reference's summed NLL given its prompt."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = stop_ids(tokenizer, model)
    batch, width_p = len(prompts), max(len(p) for p in prompts)
    width_r = max(len(r) for r in references)
    ids = torch.full((batch, width_p + width_r), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, (p, r) in enumerate(zip(prompts, references, strict=True)):
        ids[row, width_p - len(p):width_p] = torch.tensor(p)
        mask[row, width_p - len(p):width_p] = 1
        if r:
            ids[row, width_p:width_p + len(r)] = torch.tensor(r)
            mask[row, width_p:width_p + len(r)] = 1
    ids, mask = ids.to(device), mask.to(device)
    from transformers import DynamicCache

    cache = DynamicCache()
    started = time.perf_counter()
    out = forward(model, ids, mask, logits_to_keep=width_r + 1, cache=cache, use_cache=True)
    logits = out.logits.float()  # [B, width_r + 1, V]: positions width_p - 1 ... end
    nll = [0.0] * batch
    if width_r:
        logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = ids[:, width_p:]
        picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        for row, r in enumerate(references):
            nll[row] = float(-picked[row, :len(r)].sum())
    cache = out.cache
    cache.crop(-width_r)  # back to the prompt (a no-op without references)
    mask = mask[:, :width_p]
    token = logits[:, 0].argmax(-1)
    prefilled = time.perf_counter()
    generated = [[] for _ in range(batch)]
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    for _ in range(max_new_tokens):
        for row in range(batch):
            if not done[row]:
                generated[row].append(int(token[row]))
        done |= torch.tensor([int(t) in stops for t in token.tolist()], device=device)
        if bool(done.all()) or len(max(generated, key=len)) >= max_new_tokens:
            break
        mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
        step = forward(model, token.unsqueeze(1), mask, logits_to_keep=1, cache=cache, use_cache=True)
        cache = step.cache
        token = step.logits[:, -1].float().argmax(-1)
    decoded = time.perf_counter()
    results = []
    for row in range(batch):
        tokens = [t for t in generated[row] if t not in stops]
        results.append(Generation(tokenizer.decode(tokens, skip_special_tokens=True).strip(), nll[row],
                                  len(references[row]), len(generated[row]), (prefilled - started) / batch,
                                  (decoded - prefilled) / batch))
    return results


def generate_all(model, tokenizer, records: list[dict], config: EvalConfig, device: torch.device,
                 progress: bool = True, desc: str = "eval") -> list[Generation]:
    """Generations for every record, in record order (batched by prompt length)."""
    prompts = [prompt_ids(r["messages"], tokenizer, config.max_seq_len) for r in records]
    references = [_reference_ids(r["messages"], tokenizer) for r in records]
    order = sorted(range(len(records)), key=lambda i: len(prompts[i]))
    results: list[Generation | None] = [None] * len(records)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(records), desc=desc, unit="example", dynamic_ncols=True)
    model.eval()
    for start in range(0, len(order), config.batch_size):
        chunk = order[start:start + config.batch_size]
        outs = generate_batch(model, tokenizer, [prompts[i] for i in chunk], [references[i] for i in chunk],
                              config.max_new_tokens, device)
        for i, out in zip(chunk, outs, strict=True):
            results[i] = out
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return results  # type: ignore[return-value]


def evaluate_model(model, tokenizer, records: list[dict], config: EvalConfig = EvalConfig(),
                   device: torch.device | None = None, progress: bool = True, desc: str = "eval",
                   threads: int | None = None) -> tuple[dict, list[dict]]:
    """(metrics, per-example rows) for a loaded model on chat records."""
    device = device or next(causal_lm(model).parameters()).device
    threads = set_threads(threads)
    started = time.perf_counter()
    generations = generate_all(model, tokenizer, records, config, device, progress, desc)
    rows = []
    for record, g in zip(records, generations, strict=True):
        row = score_example(record["messages"], g.answer)
        meta = record.get("meta") or {}
        rows.append({"id": meta.get("id"), "kind": meta.get("kind"), "answer": g.answer,
                     "reference": record["messages"][-1]["content"], "new_tokens": g.new_tokens, **row})
    nll = sum(g.nll for g in generations)
    tokens = sum(g.ref_tokens for g in generations)
    metrics = aggregate(rows, nll, tokens)
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    metrics["seconds_prefill"] = round(sum(g.prefill_seconds for g in generations), 1)
    metrics["seconds_decode"] = round(sum(g.decode_seconds for g in generations), 1)
    metrics["threads"] = threads
    metrics["mean_new_tokens"] = round(sum(g.new_tokens for g in generations) / max(1, len(generations)), 1)
    metrics["by_kind"] = {kind: aggregate([r for r in rows if r["kind"] == kind])
                          for kind in sorted({r["kind"] for r in rows if r["kind"]})}
    return metrics, rows


def load_for_eval(base_model: str, models_dir: Path, adapter: Path | None = None, device: str = "auto",
                  threads: int | None = None):
    """(model, tokenizer, device): the base model, with a PEFT adapter on top when one is given."""
    set_threads(threads)
    dev, dtype = select_device(device)
    path = resolve_base(base_model, models_dir)
    tokenizer = load_tokenizer(path)
    model = load_base(path, dev, dtype)
    if adapter is not None:
        model = load_adapter(model, Path(adapter))
    model.eval()
    return model, tokenizer, dev


def write_report(out_dir: Path, metrics: dict, rows: list[dict], extra: dict | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps({**(extra or {}), **metrics}, indent=2) + "\n")
    with (out_dir / "predictions.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

