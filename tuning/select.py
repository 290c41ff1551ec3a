"""`curbside tune select`: train candidate methods within a time budget, pick one, test it, publish it.

The budget covers everything the command does (data, evaluations, training), measured by the wall clock:

1. Build (or import) the data, then evaluate the base model on validation and on test; the base model's
   test time is reserved for the chosen adapter's own test evaluation at the end.
2. For each candidate in order: load it and run `probe_steps` training steps to measure its step time. If
   `step time x remaining steps + a validation run` does not fit in what is left, the candidate is skipped and
   the card says why; otherwise it trains to its step count and is evaluated on validation.
3. The best validation `selection_score` (tuning.metrics) wins. Our engine serves LoRA only, so by default
   the winner is the best LoRA and the card's `best_overall` names any other method that scored higher;
   with `servable_only=False` (`--any-method`) every method competes and near-ties (0.005) go to a LoRA.
4. The winner is reloaded from its saved PEFT files and evaluated on the held-out test split.

`resume` continues an earlier run in its own directory, on the data it was built with: a candidate's
trainer resumes from its latest checkpoint (a finished one trains no further), and an evaluation whose
adapter weights, records and settings are unchanged is read back instead of run again.
5. `<data_dir>/adapters/<name>/` is written atomically: the adapter, its loss curve and `model_card.json`.

`beats_base_on_validation` is true when the winner's validation score is higher than the base model's and it
is not worse than the base on citation_validity or on key_fact_recall.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from curbside.model_store import REGISTRY, sha256_file

from .dataset import (
    DataConfig,
    canonical_jsonl,
    copy_dataset,
    generate,
    import_user_dataset,
    load_split,
    stratified,
)
from .evaluate import EvalConfig, evaluate_model, load_for_eval, write_report
from .methods import ATTENTION, ATTENTION_MLP, MethodConfig, resolve_base, select_device
from .metrics import METRICS_VERSION, SCORE_WEIGHTS, selection_score
from .registry import CARD, DEFAULT_ADAPTER_NAME, adapters_dir
from .train import TrainConfig, Trainer

TIE = 0.005


class SelectError(RuntimeError):
    """Selection could not produce an adapter (nothing fitted the budget, no data)."""


@dataclass(frozen=True)
class Candidate:
    name: str
    method: MethodConfig
    steps: int
    learning_rate: float | None = None


# Sized for the 2-core CPU (one step = grad_accum examples; about 22 s there, 0.5 s on an H200). The shipped
# LoRA comes first, so a run whose budget runs out still reproduces it. The 45-step LoRAs show what less
# training gives; the second adapts the top 10 of SmolLM2's 30 layers (steps 1.8x cheaper). Only a LoRA can be
# served by our engine; prompt tuning and IA3 are trained for the comparison. The one-epoch LoRA comes last: it
# fits a GPU's minutes, not `make tune`'s CPU budget, and did not beat the 150-step one on the H200.
DEFAULT_CANDIDATES = (
    Candidate("lora-r8-attn-long", MethodConfig("lora", lora_r=8, lora_alpha=16, target_modules=ATTENTION),
              steps=150, learning_rate=2e-3),
    Candidate("lora-r8-attn", MethodConfig("lora", lora_r=8, lora_alpha=16, target_modules=ATTENTION), steps=45,
              learning_rate=2e-3),
    Candidate("lora-r16-attn-mlp-top10", MethodConfig("lora", lora_r=16, lora_alpha=32, target_modules=ATTENTION_MLP,
                                                      top_layers=10), steps=45, learning_rate=2e-3),
    Candidate("prompt-tuning-20", MethodConfig("prompt", num_virtual_tokens=20), steps=30),
    Candidate("ia3", MethodConfig("ia3"), steps=30),
    Candidate("lora-r8-attn-epoch", MethodConfig("lora", lora_r=8, lora_alpha=16, target_modules=ATTENTION),
              steps=300, learning_rate=2e-3),   # 600 examples: about one pass over the data
)



def candidates_named(names: str | None) -> tuple[Candidate, ...]:
    """The default candidates named in a comma-separated list, in its order; all of them for None or ""."""
    wanted = [n.strip() for n in (names or "").split(",") if n.strip()]
    if not wanted:
        return DEFAULT_CANDIDATES
    known = {c.name: c for c in DEFAULT_CANDIDATES}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise SelectError(f"unknown candidate(s) {unknown}; known: {', '.join(known)}")
    return tuple(known[w] for w in wanted)


@dataclass
class SelectConfig:
    budget_minutes: float
    name: str = DEFAULT_ADAPTER_NAME
    seed: int = 0
    base_model: str = "smollm2-135m-instruct"
    candidates: tuple[Candidate, ...] = DEFAULT_CANDIDATES
    steps: int | None = None                 # overrides every candidate's step count
    batch_size: int = 1
    grad_accum: int = 2
    max_seq_len: int = 1024
    validation_limit: int | None = 16
    test_limit: int | None = 40
    probe_steps: int = 2
    device: str = "auto"
    data_file: Path | None = None            # a built data directory, or a user chat JSONL to validate and split
    servable_only: bool = True               # publish the best LoRA (what the engine can serve)
    resume: Path | None = None               # an earlier run directory to continue
    data_config: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


@dataclass
class Budget:
    minutes: float
    clock: Callable[[], float] = time.monotonic
    start: float = 0.0

    def __post_init__(self):
        self.start = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        return self.minutes * 60 - self.elapsed()


def base_model_identity(name: str, path: Path) -> dict:
    weights = sorted(Path(path).glob("*.safetensors"))
    identity = {"name": name, "path": str(path),
                "sha256": {w.name: sha256_file(w) for w in weights}}
    if name in REGISTRY:
        identity["package"] = f"{REGISTRY[name].package}=={REGISTRY[name].version}"
        identity["package_sha256"] = REGISTRY[name].sha256
    return identity


def beats_base(adapter: dict, base: dict) -> bool:
    """Higher selection score than the base, and not worse on citation_validity or key_fact_recall."""
    def value(m, k):
        return m.get(k) if m.get(k) is not None else 0.0
    return (selection_score(adapter) > selection_score(base)
            and value(adapter, "citation_validity") >= value(base, "citation_validity")
            and value(adapter, "key_fact_recall") >= value(base, "key_fact_recall"))


def choose(results: list[dict], servable_only: bool = False) -> dict | None:
    """The best trained candidate by validation score; near-ties go to a servable LoRA.

    With `servable_only`, only LoRA candidates compete (the engine serves LoRA only).
    """
    trained = [r for r in results if r["status"] == "trained"
               and (not servable_only or r["method"]["method"] == "lora")]
    if not trained:
        return None
    best = max(r["score"] for r in trained)
    close = [r for r in trained if r["score"] >= best - TIE]
    return max(close, key=lambda r: (r["method"]["method"] == "lora", r["score"]))


def _public(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "by_kind"}


def publish(adapter_src: Path, target: Path, card: dict, extra_files: list[Path]) -> Path:
    """Write the adapter directory atomically: a temporary sibling, fsynced, then renamed into place."""
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(adapter_src, tmp)
    for f in extra_files:
        if f.exists():
            shutil.copy2(f, tmp / f.name)
    (tmp / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    for p in tmp.iterdir():
        with open(p, "rb") as handle:
            os.fsync(handle.fileno())
    old = root / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


def _eval_key(adapter_dir: Path, records: list[dict], config: SelectConfig) -> str:
    """What an adapter's evaluation depends on: its weights, the exact records and the evaluation settings."""
    weights = sorted(Path(adapter_dir).glob("*.safetensors"))
    return hashlib.sha256(json.dumps({"weights": [sha256_file(w) for w in weights],
                                      "records": canonical_jsonl(records).hex(), "eval": config.eval.__dict__,
                                      "device": config.device, "metrics": METRICS_VERSION},
                                     sort_keys=True).encode()).hexdigest()


def _earlier_eval(out: Path, key: str) -> dict | None:
    """The metrics an earlier run wrote to `out` for the same evaluation key, if any."""
    try:
        metrics = json.loads((out / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("eval_key") == key else None


def _evaluate_adapter(load: Callable[[], tuple], adapter_dir: Path, records: list[dict], config: SelectConfig,
                      out: Path, progress: bool, desc: str, log: Callable[[str], None]) -> dict:
    """Evaluate the adapter that `load()` returns as (model, tokenizer, device), unless `out` already holds
    this very evaluation from an earlier run (then its metrics are read back, marked `reused`)."""
    key = _eval_key(adapter_dir, records, config)
    earlier = _earlier_eval(out, key)
    if earlier is not None:
        log(f"{desc}: unchanged since the earlier run, reusing {out / 'metrics.json'}")
        return {**{k: v for k, v in earlier.items() if k != "eval_key"}, "reused": True}
    model, tokenizer, device = load()
    metrics, rows = evaluate_model(model, tokenizer, records, config.eval, device, progress, desc)
    write_report(out, metrics, rows, {"eval_key": key})
    return metrics


def _cached_base_eval(data_dir: Path, models_dir: Path, base_id: dict, records: list[dict], config: SelectConfig,
                      out: Path, progress: bool, desc: str, log: Callable[[str], None]) -> dict:
    """The base model's metrics on these records, from the cache when the same evaluation was run before.

    The key covers the base model's weights, the exact records and the evaluation settings; the cached metrics
    keep the `seconds` the evaluation took, so budget estimates stay honest.
    """
    key = hashlib.sha256(json.dumps({"model": base_id["sha256"], "records": canonical_jsonl(records).hex(),
                                     "eval": config.eval.__dict__, "device": config.device,
                                     "metrics": METRICS_VERSION}, sort_keys=True).encode()).hexdigest()
    cache = Path(data_dir) / "tuning" / "base-eval-cache" / f"{key}.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        write_report(out, cached["metrics"], cached["rows"], {"cached_from": str(cache)})
        log(f"{desc}: cached ({cache.name[:12]})")
        return {**cached["metrics"], "cached": True}
    model, tokenizer, device = load_for_eval(config.base_model, models_dir, device=config.device)
    metrics, rows = evaluate_model(model, tokenizer, records, config.eval, device, progress, desc)
    del model
    gc.collect()
    write_report(out, metrics, rows)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"metrics": metrics, "rows": rows}))
    os.replace(tmp, cache)
    return metrics


def run_select(config: SelectConfig, data_dir: Path, models_dir: Path, guideline_paths: list[Path] | None = None,
               tokenizer_dir: Path | None = None, progress: bool = True, log: Callable[[str], None] = print,
               clock: Callable[[], float] = time.monotonic) -> dict:
    """Run the whole selection; returns the model card (also written next to the published adapter)."""
    budget = Budget(config.budget_minutes, clock)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    work = Path(data_dir) / "tuning" / "runs" / f"{config.name}-{stamp}"
    if config.resume is None:
        work.mkdir(parents=True, exist_ok=True)

    # 1. data (a resumed run keeps the data it was built with)
    if config.resume is not None:
        work = Path(config.resume)
        try:
            manifest = json.loads((work / "data" / "manifest.json").read_text())
        except (OSError, ValueError) as e:
            raise SelectError(f"cannot resume {work}: it holds no selection run data ({e})") from e
        log(f"resuming {work}")
    elif config.data_file is not None and Path(config.data_file).is_dir():
        manifest = copy_dataset(Path(config.data_file), work / "data")
    elif config.data_file is not None:
        manifest = import_user_dataset(Path(config.data_file), work / "data", seed=config.seed)
    else:
        from retrieval.ingest import bundled_guideline_paths

        from .corpus import embedder_tokenizer_dir

        data_config = DataConfig(**{**config.data_config.__dict__, "seed": config.seed})
        manifest = generate(work / "data", guideline_paths or bundled_guideline_paths(),
                            tokenizer_dir or embedder_tokenizer_dir(models_dir), data_config)
    train_records = load_split(work / "data", "train")
    validation = stratified(load_split(work / "data", "validation"), config.validation_limit, config.seed)
    test = stratified(load_split(work / "data", "test"), config.test_limit, config.seed)
    log(f"data: {len(train_records)} train, {len(validation)} validation, {len(test)} test examples "
        f"(sha256 {manifest['sha256'][:12]})")

    # 2. the base model on validation and test (cached: the same data, model and settings give the same answers)
    base_path = resolve_base(config.base_model, models_dir)
    base_id = base_model_identity(config.base_model, base_path)
    base_val = _cached_base_eval(data_dir, models_dir, base_id, validation, config, work / "base" / "validation",
                                 progress, "base validation", log)
    base_test = _cached_base_eval(data_dir, models_dir, base_id, test, config, work / "base" / "test", progress,
                                  "base test", log)
    reserve = base_test["seconds"] * 1.1 + 15
    val_seconds = base_val["seconds"]
    log(f"base: validation score {selection_score(base_val):.3f} ({val_seconds:.0f} s), test "
        f"{base_test['seconds']:.0f} s; {budget.left() / 60:.1f} min left, {reserve / 60:.1f} min reserved for "
        "the adapter's test run")

    # 3. candidates
    results = []
    for candidate in config.candidates:
        steps = config.steps or candidate.steps
        entry: dict = {"name": candidate.name, "method": candidate.method.to_dict(), "steps": steps}
        results.append(entry)
        left = budget.left() - reserve
        if left < val_seconds + 30:
            entry.update(status="skipped", reason=f"no time left ({max(0, left) / 60:.1f} min before the reserve)")
            log(f"{candidate.name}: skipped, {entry['reason']}")
            continue
        train_config = TrainConfig(method=candidate.method, base_model=config.base_model,
                                   learning_rate=candidate.learning_rate, max_steps=steps,
                                   batch_size=config.batch_size, grad_accum=config.grad_accum,
                                   max_seq_len=config.max_seq_len, seed=config.seed,
                                   checkpoint_every=max(1, steps // 3), device=config.device)
        out = work / "candidates" / candidate.name
        started = budget.elapsed()
        trainer = Trainer(train_config, train_records, out, models_dir, progress=progress)
        trainer.run(until=min(config.probe_steps, steps))
        per_step = trainer.seconds_per_step() or 0.0
        needed = per_step * (steps - trainer.step) + val_seconds * 1.1 + 10
        left = budget.left() - reserve
        entry["probe_seconds_per_step"] = entry["seconds_per_step"] = round(per_step, 2)
        entry["estimated_seconds"] = round(needed + budget.elapsed() - started)
        if needed > left:
            entry.update(status="skipped", probe_seconds=round(budget.elapsed() - started, 1),
                         reason=f"needs about {needed / 60:.1f} min more ({steps - trainer.step} steps at "
                                f"{per_step:.1f} s + validation), only {max(0, left) / 60:.1f} min left")
            log(f"{candidate.name}: skipped, {entry['reason']}")
            del trainer
            gc.collect()
            continue
        trainer.run()
        adapter = trainer.finish()
        train_seconds = budget.elapsed() - started
        if trainer.resumed_from is not None:
            # this run only finished what an earlier one started: count the earlier steps' compute too
            train_seconds += sum(trainer.step_seconds[:trainer.resumed_from])
            entry["resumed_from_step"] = trainer.resumed_from
        trainer.model.eval()
        metrics = _evaluate_adapter(lambda t=trainer: (t.model, t.tokenizer, t.device), adapter, validation,
                                    config, out / "validation", progress, f"{candidate.name} validation", log)
        entry.update(status="trained", adapter=str(adapter), train_seconds=round(train_seconds, 1),
                     seconds_per_step=round(trainer.seconds_per_step() or per_step, 2),
                     validation_seconds=metrics["seconds"], validation=_public(metrics),
                     score=selection_score(metrics), final_loss=trainer.losses[-1] if trainer.losses else None,
                     trainable_parameters=trainer.trainable)
        log(f"{candidate.name}: trained {steps} steps in {train_seconds / 60:.1f} min, validation score "
            f"{entry['score']:.3f} (citation validity {metrics['citation_validity']}, key-fact recall "
            f"{metrics['key_fact_recall']})")
        del trainer
        gc.collect()

    chosen = choose(results, servable_only=config.servable_only)
    best = choose(results)
    card: dict = {
        "name": config.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": base_id,
        "data": {"manifest_sha256": manifest["sha256"],
                 "splits": {s: {k: v for k, v in m.items() if k != "file"} for s, m in manifest["splits"].items()},
                 "documents": manifest.get("documents"), "source": manifest.get("generator"),
                 "evaluated": {"validation": len(validation), "test": len(test)}},
        "selection": {"score": "weighted mean of validation metrics", "weights": SCORE_WEIGHTS, "tie": TIE,
                      "budget_minutes": config.budget_minutes, "seed": config.seed,
                      "eval": config.eval.__dict__, "device": str(select_device(config.device)[0])},
        "candidates": results,
        "validation": {"base": _public(base_val)},
        "work_dir": str(work),
    }
    if chosen is None:
        card.update(chosen=None, servable=False, beats_base_on_validation=False,
                    test={"base": _public(base_test), "adapter": None},
                    elapsed_minutes=round(budget.elapsed() / 60, 2))
        (work / CARD).write_text(json.dumps(card, indent=2) + "\n")
        if best is not None:
            raise SelectError(f"only {best['method']['method']} candidates trained and the engine serves LoRA only "
                              f"(--any-method publishes {best['name']}); see {work / CARD}")
        raise SelectError(f"no candidate fitted in {config.budget_minutes} min; see {work / CARD}")

    if best is not None and best is not chosen:
        card["best_overall"] = {"name": best["name"], "method": best["method"]["method"], "score": best["score"],
                                "note": "scored higher on validation but is not a LoRA, which is all our engine "
                                        "serves; curbside tune select --any-method publishes it instead"}

    # 4. the winner on test, reloaded from the files that will ship
    adapter_test = _evaluate_adapter(
        lambda: load_for_eval(config.base_model, models_dir, Path(chosen["adapter"]), config.device),
        Path(chosen["adapter"]), test, config, work / "candidates" / chosen["name"] / "test", progress,
        "adapter test", log)
    gc.collect()

    servable = chosen["method"]["method"] == "lora"
    card.update(
        chosen={"name": chosen["name"], **chosen["method"], "steps": chosen["steps"], "score": chosen["score"]},
        servable=servable,
        serving=({"engine": "LoRA", "max_lora_rank": chosen["method"]["lora_r"],
                  "note": f"serve with --enable-lora --max-lora-rank {max(16, chosen['method']['lora_r'])}"}
                 if servable else
                 {"engine": None, "note": f"{chosen['method']['method']} adapters cannot be served by our engine "
                                          "(it serves LoRA only); use it with HF + PEFT, or select among LoRA "
                                          "candidates"}),
        beats_base_on_validation=beats_base(chosen["validation"], base_val),
        test={"base": _public(base_test), "adapter": _public(adapter_test)},
        elapsed_minutes=round(budget.elapsed() / 60, 2),
    )
    card["validation"]["adapter"] = chosen["validation"]
    (work / CARD).write_text(json.dumps(card, indent=2) + "\n")
    target = adapters_dir(data_dir) / config.name
    candidate_dir = work / "candidates" / chosen["name"]
    publish(Path(chosen["adapter"]), target, card, [candidate_dir / "loss_curve.png",
                                                    candidate_dir / "train_summary.json"])
    card["published"] = str(target)
    log(f"chose {chosen['name']}; test citation validity {base_test['citation_validity']} -> "
        f"{adapter_test['citation_validity']}, key-fact recall {base_test['key_fact_recall']} -> "
        f"{adapter_test['key_fact_recall']}; wrote {target} in {budget.elapsed() / 60:.1f} min")
    return card
