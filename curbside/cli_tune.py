"""`curbside tune data|train|eval|select`: build tuning data, train and evaluate adapters, pick the default one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .settings import load_settings


def _settings(args):
    return load_settings(data_dir=args.data_dir)


def _tuning_dir(settings) -> Path:
    return Path(settings.data_dir) / "tuning"


def _error(message: str) -> int:
    print(f"curbside: error: {message}", file=sys.stderr)
    return 2


def _guidelines(args) -> list[Path]:
    from retrieval.ingest import bundled_guideline_paths

    if not args.guidelines:
        return bundled_guideline_paths()
    paths: list[Path] = []
    for given in map(Path, args.guidelines):
        paths += sorted(given.glob("*.md")) if given.is_dir() else [given]
    return paths


def cmd_data(args) -> int:
    from tuning.corpus import embedder_tokenizer_dir
    from tuning.dataset import DataConfig, DatasetError, generate, import_user_dataset

    s = _settings(args)
    out = Path(args.out) if args.out else _tuning_dir(s) / "data"
    try:
        if args.from_jsonl:
            manifest = import_user_dataset(Path(args.from_jsonl), out, seed=args.seed)
        else:
            config = DataConfig(seed=args.seed, n_excerpts=args.excerpts, consult=args.consult)
            manifest = generate(out, _guidelines(args), embedder_tokenizer_dir(s.model_dir), config)
    except DatasetError as e:
        return _error(str(e))
    for split, info in manifest["splits"].items():
        kinds = ", ".join(f"{k} {n}" for k, n in info["kinds"].items())
        print(f"{split:10} {info['examples']:5} examples ({kinds})  sha256 {info['sha256'][:16]}")
    for line in manifest.get("dropped", []):
        print(f"dropped: {line}", file=sys.stderr)
    print(f"wrote {out} (data sha256 {manifest['sha256']})")
    return 0


def _method_config(args):
    from tuning.methods import ATTENTION, MethodConfig

    targets = tuple(t.strip() for t in args.targets.split(",")) if args.targets else ATTENTION
    return MethodConfig(args.method, lora_r=args.rank, lora_alpha=args.alpha or 2 * args.rank,
                        lora_dropout=args.dropout, target_modules=targets, num_virtual_tokens=args.virtual_tokens,
                        top_layers=args.top_layers)


def cmd_train(args) -> int:
    from tuning.dataset import DatasetError, load_records, load_split, stratified
    from tuning.methods import MethodError
    from tuning.train import TrainConfig, TrainError, train

    s = _settings(args)
    data = Path(args.data) if args.data else _tuning_dir(s) / "data"
    try:
        records = load_records(data) if data.is_file() else load_split(data, "train")
        method = _method_config(args)
        from tuning.methods import check

        check(method)
    except (DatasetError, MethodError) as e:
        hint = "" if data.exists() else " (run `curbside tune data` first)"
        return _error(f"{e}{hint}")
    records = stratified(records, args.limit, args.seed)
    config = TrainConfig(method=method, base_model=args.model or s.model, learning_rate=args.lr,
                         max_steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
                         max_seq_len=args.max_seq_len, seed=args.seed, checkpoint_every=args.checkpoint_every,
                         device=args.device or "auto", threads=s.threads)
    out = Path(args.out) if args.out else _tuning_dir(s) / f"train-{args.method}"
    try:
        summary = train(config, records, out, s.model_dir)
    except TrainError as e:
        return _error(str(e))
    print(f"trained {summary['steps']} steps ({summary['examples_seen']} examples, "
          f"{summary['train_seconds'] / 60:.1f} min); final loss {summary['losses'][-1]:.3f}")
    print(f"adapter: {summary['adapter']}; loss curve: {out / 'loss_curve.png'}")
    return 0


def cmd_eval(args) -> int:
    from tuning.dataset import DatasetError, load_records, load_split, stratified
    from tuning.evaluate import EvalConfig, evaluate_model, load_for_eval, write_report
    from tuning.registry import adapters_dir, default_adapter

    s = _settings(args)
    data = Path(args.data) if args.data else _tuning_dir(s) / "data"
    try:
        records = load_records(data) if data.is_file() else load_split(data, args.split)
    except DatasetError as e:
        return _error(str(e))
    records = stratified(records, args.limit, args.seed)
    adapter = None
    if args.adapter:
        adapter = Path(args.adapter) if Path(args.adapter).exists() else adapters_dir(s.data_dir) / args.adapter
        if not (adapter / "adapter_config.json").exists():
            return _error(f"no PEFT adapter at {adapter}")
    elif not args.base:
        found = default_adapter(s.data_dir)
        adapter = found[1] if found else None
    model, tokenizer, device = load_for_eval(args.model or s.model, s.model_dir, adapter, args.device or "auto")
    config = EvalConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    metrics, rows = evaluate_model(model, tokenizer, records, config, device)
    out = Path(args.out) if args.out else _tuning_dir(s) / "eval" / (adapter.name if adapter else "base")
    write_report(out, metrics, rows, {"adapter": str(adapter) if adapter else None, "split": args.split})
    shown = {k: v for k, v in metrics.items() if k != "by_kind"}
    print(json.dumps({"adapter": str(adapter) if adapter else None, **shown}, indent=2))
    print(f"wrote {out / 'metrics.json'} and {out / 'predictions.jsonl'}")
    return 0


def cmd_select(args) -> int:
    from tuning.dataset import DatasetError
    from tuning.evaluate import EvalConfig
    from tuning.select import SelectConfig, SelectError, candidates_named, run_select

    s = _settings(args)
    try:
        candidates = candidates_named(args.candidates)
    except SelectError as e:
        return _error(str(e))
    config = SelectConfig(candidates=candidates, budget_minutes=args.budget_minutes, name=args.name, seed=args.seed,
                          base_model=args.model or s.model, steps=args.steps,
                          validation_limit=args.validation_limit, test_limit=args.test_limit,
                          data_file=Path(args.data) if args.data else None, device=args.device or "auto",
                          servable_only=not args.any_method, resume=Path(args.resume) if args.resume else None,
                          eval=EvalConfig(max_new_tokens=args.max_new_tokens))
    if config.resume is not None and config.data_file is not None:
        return _error("--resume continues on the data the run was built with; leave out --data")
    try:
        card = run_select(config, Path(s.data_dir), s.model_dir)
    except (SelectError, DatasetError) as e:
        return _error(str(e))
    print_card(card)
    print(f"wrote {card['published']}")
    return 0


def print_card(card: dict) -> None:
    """The candidate table and the base-versus-adapter test metrics of a model card."""
    def num(value):
        return float("nan") if value is None else value

    print(f"{'candidate':24} {'status':8} {'min':>5} {'s/step':>6} {'score':>6} {'cit.valid':>9} {'key facts':>9}")
    for c in card["candidates"]:
        v = c.get("validation") or {}
        minutes = (c.get("train_seconds") or 0) + (c.get("validation_seconds") or 0) + (c.get("probe_seconds") or 0)
        print(f"{c['name']:24} {c['status']:8} {minutes / 60:5.1f} {num(c.get('seconds_per_step')):6.1f} "
              f"{num(c.get('score')):6.3f} {num(v.get('citation_validity')):9.3f} "
              f"{num(v.get('key_fact_recall')):9.3f}")
        if c["status"] == "skipped":
            print(f"  skipped: {c['reason']}")
    base, tuned = card["test"]["base"], card["test"]["adapter"] or {}
    for key in ("citation_validity", "citation_accuracy", "key_fact_recall", "format_compliance",
                "abstention_accuracy", "perplexity"):
        print(f"test {key:20} base {base.get(key)!s:8} adapter {tuned.get(key)}")
    print(f"chosen: {card['chosen']['name'] if card.get('chosen') else None}; beats base on validation: "
          f"{card['beats_base_on_validation']}; servable: {card['servable']}")
    if card.get("best_overall"):
        best = card["best_overall"]
        print(f"best of any method: {best['name']} (score {best['score']:.3f}): {best['note']}")


def add_commands(sub) -> None:
    t = sub.add_parser("tune", help="tuning data, adapter training, evaluation and selection")
    tsub = t.add_subparsers(dest="tune_command", required=True)

    d = tsub.add_parser("data", help="build the chat-format tuning data from the guideline corpus")
    d.add_argument("--out", help="output directory (default <data-dir>/tuning/data)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--excerpts", type=int, default=4, help="excerpts per prompt (the consult pipeline's k)")
    d.add_argument("--consult", action="store_true",
                   help="add consult-vignette examples (data/tuning/consult_cases.json; see the README)")
    d.add_argument("--guidelines", nargs="+", help="guideline files or directories (default: the bundled corpus)")
    d.add_argument("--from-jsonl", help="validate and split your own chat JSONL instead of generating data")
    d.set_defaults(func=cmd_data)

    tr = tsub.add_parser("train", help="train one adapter (resumes from its latest checkpoint)")
    tr.add_argument("--method", choices=["lora", "prompt", "ia3"], default="lora")
    tr.add_argument("--data", help="a data directory (its train split) or a chat JSONL file")
    tr.add_argument("--out", help="run directory (default <data-dir>/tuning/train-<method>)")
    tr.add_argument("--steps", type=int, default=45, help="optimizer steps")
    tr.add_argument("--lr", type=float, help="learning rate (default: 2e-3 LoRA, 3e-2 prompt, 2e-2 IA3)")
    tr.add_argument("--rank", type=int, default=8, help="LoRA rank")
    tr.add_argument("--alpha", type=float, help="LoRA alpha (default 2 x rank)")
    tr.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout")
    tr.add_argument("--targets", help="LoRA target modules, comma-separated (default q_proj,k_proj,v_proj,o_proj)")
    tr.add_argument("--top-layers", type=int, help="LoRA/IA3: adapt only the top N layers (cheaper steps)")
    tr.add_argument("--virtual-tokens", type=int, default=20, help="prompt tuning: virtual tokens")
    tr.add_argument("--batch-size", type=int, default=1)
    tr.add_argument("--grad-accum", type=int, default=2)
    tr.add_argument("--max-seq-len", type=int, default=1024)
    tr.add_argument("--checkpoint-every", type=int, default=10)
    tr.add_argument("--limit", type=int, help="use at most N training examples")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--model", help="base model (default: the configured model)")
    tr.add_argument("--device", help="cpu, cuda or auto")
    tr.set_defaults(func=cmd_train)

    e = tsub.add_parser("eval", help="evaluate the base model or an adapter on a split")
    e.add_argument("--adapter", help="adapter directory or name under <data-dir>/adapters (default: the default "
                                     "adapter, if any)")
    e.add_argument("--base", action="store_true", help="evaluate the base model even if a default adapter exists")
    e.add_argument("--split", choices=["train", "validation", "test"], default="test")
    e.add_argument("--data", help="a data directory or a chat JSONL file (default <data-dir>/tuning/data)")
    e.add_argument("--limit", type=int, help="evaluate at most N examples (stratified by kind)")
    e.add_argument("--out", help="output directory for metrics.json and predictions.jsonl")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--max-new-tokens", type=int, default=96)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--model", help="base model (default: the configured model)")
    e.add_argument("--device", help="cpu, cuda or auto")
    e.set_defaults(func=cmd_eval)

    s = tsub.add_parser("select", help="train candidate methods within a time budget and publish the best")
    s.add_argument("--budget-minutes", type=float, required=True, help="wall-clock budget for the whole run")
    s.add_argument("--name", default="curbside-consult", help="adapter name under <data-dir>/adapters")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--data", help="a directory from `curbside tune data` (used as built), or your own chat JSONL "
                                  "(validated and split) instead of generating the data")
    s.add_argument("--steps", type=int, help="override every candidate's step count")
    s.add_argument("--validation-limit", type=int, default=16, help="validation examples per evaluation")
    s.add_argument("--test-limit", type=int, default=40, help="test examples per evaluation")
    s.add_argument("--max-new-tokens", type=int, default=96,
                   help="answer length when evaluating (consult-example data from `tune data --consult`: 192)")
    s.add_argument("--candidates", help="comma-separated candidate names to try (default: all, in order: "
                                        "lora-r8-attn-long, lora-r8-attn, lora-r16-attn-mlp-top10, "
                                        "prompt-tuning-20, ia3, lora-r8-attn-epoch)")
    s.add_argument("--model", help="base model (default: the configured model)")
    s.add_argument("--device", help="cpu, cuda or auto")
    s.add_argument("--any-method", action="store_true",
                   help="publish the best candidate of any method (default: the best LoRA, all the engine serves)")
    s.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an earlier run (<data-dir>/tuning/runs/...): finished candidates and unchanged "
                        "evaluations are reused, interrupted ones resume from their last checkpoint")
    s.set_defaults(func=cmd_select)
