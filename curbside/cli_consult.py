"""`curbside consult` (one case, streamed) and `curbside eval` (a case file, scored, with a report)."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path

from .settings import load_settings


def _pipeline(settings, base_url: str, args):
    from app.consult import ConsultConfig, ConsultPipeline
    from retrieval.store import open_store

    adapter = args.adapter
    if adapter is None and not args.base and not args.base_url:
        # the local server started for this command serves the tuned adapter (see `curbside serve`)
        from .settings import tuned_adapter

        adapter = (tuned_adapter(settings) or (None,))[0]
    config = ConsultConfig(base_url=base_url, model=args.model or settings.model, adapter=adapter,
                           api_key=args.api_key or settings.api_key, max_tokens=args.max_tokens)
    return ConsultPipeline(open_store(settings), config)


def _server(settings, args, out_dir: Path):
    """The given base URL, or a local inference server started for this command."""
    if args.base_url:
        return nullcontext(args.base_url)
    from app.eval_runner import local_server

    print("starting a local inference server ...", file=sys.stderr, flush=True)
    return local_server(settings.data_dir, args.model or settings.model, out_dir / "server.log")


def cmd_consult(args) -> int:
    from app.consult import CaseError

    settings = load_settings(data_dir=args.data_dir)
    raw = sys.stdin.read() if args.case == "-" else Path(args.case).read_text(encoding="utf-8")
    try:
        case = json.loads(raw)
    except json.JSONDecodeError as e:
        print(f"curbside: error: {args.case} is not JSON: {e}", file=sys.stderr)
        return 2
    out_dir = settings.data_dir / "consult"
    with _server(settings, args, out_dir) as server:
        base_url = server if isinstance(server, str) else server.base_url
        pipeline = _pipeline(settings, base_url, args)
        stream = None if args.json else (lambda text: print(text, end="", file=sys.stderr, flush=True))
        try:
            result = pipeline.run(case, on_token=stream)
        except CaseError as e:
            print(f"curbside: error: {e}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(f"\n\nURGENCY: {result['urgency'].upper()}")
    for flag in result["red_flags"]:
        print(f"  red flag: {flag['kind']} ({flag['urgency']}) from {flag['source']}: \"{flag['evidence']}\"")
    for action in result["safety_actions"]:
        print(f"  ACTION: {action}")
    for name, r in result["instruments"].items():
        print(f"  {name}: {r}")
    for name, msg in result["instrument_errors"].items():
        print(f"  {name}: not scored: {msg}")
    print(f"\n{result['answer']}\n")
    for c in result["citations"]:
        print(f"[{c['n']}] {c['title']} — {c['section']} ({c['doc_id']} v{c['version']})")
    if result["verification"]["fallback_used"]:
        print(f"\n(model answer withheld: {result['verification']['reason']}; showing guideline statements)")
    return 0


def cmd_eval(args) -> int:
    from app.eval_runner import now, run_cases, run_info, write_results
    from app.evaluation import compute_metrics, load_jsonl, strict_failures, target_report
    from app.report import write_report

    settings = load_settings(data_dir=args.data_dir)
    try:
        cases = load_jsonl(args.cases)
    except (OSError, ValueError) as e:
        print(f"curbside: error: {e}", file=sys.stderr)
        return 2
    cases = cases[:args.limit] if args.limit else cases
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = now()
    with _server(settings, args, out_dir) as server:
        base_url = server if isinstance(server, str) else server.base_url
        pipeline = _pipeline(settings, base_url, args)
        done = []

        def progress(result: dict) -> None:
            done.append(result)
            status = result.get("error") or result["urgency"]
            print(f"[{len(done)}/{len(cases)}] {result.get('id')}: {status}", file=sys.stderr, flush=True)

        results = run_cases(pipeline, cases, args.concurrency, progress)
    write_results(out_dir, results)
    metrics = compute_metrics(cases, results)
    info = run_info(Path(args.cases), base_url, pipeline.config.model, pipeline.config.adapter, started)
    write_report(out_dir, cases, results, metrics, info)
    for name, value, target, met in target_report(metrics):
        print(f"{'✓' if met else '✗'} {name}: {value} (target {target})")
    print(f"wrote {out_dir / 'results.jsonl'}, {out_dir / 'metrics.json'}, {out_dir / 'report.md'}")
    if args.strict:
        failures = strict_failures(metrics)
        for f in failures:
            print(f"strict: {f}", file=sys.stderr)
        return 1 if failures else 0
    return 0


def cmd_eval_compare(args) -> int:
    from app.eval_compare import load_metrics, report

    labels = tuple(args.labels.split(",", 1)) if args.labels else (str(args.a), str(args.b))
    try:
        a, b = load_metrics(Path(args.a)), load_metrics(Path(args.b))
    except ValueError as e:
        print(f"curbside: error: {e}", file=sys.stderr)
        return 2
    print(report(a, b, labels if len(labels) == 2 else (labels[0], str(args.b))))
    return 0


def add_commands(sub) -> None:
    def model_opts(p):
        p.add_argument("--base-url", help="OpenAI-compatible endpoint (default: start a local server)")
        p.add_argument("--model", help="served model name (default: the configured model)")
        p.add_argument("--adapter", help="LoRA adapter name to request instead of the base model")
        p.add_argument("--base", action="store_true",
                       help="use the base model even when a tuned adapter is installed (make tune)")
        p.add_argument("--api-key", help="bearer key for the endpoint")
        p.add_argument("--max-tokens", type=int, default=256, help="answer length limit (tokens)")

    c = sub.add_parser("consult", help="run one case (contract JSON, file or -) through the consult pipeline")
    c.add_argument("case")
    c.add_argument("--json", action="store_true", help="print the contract result object")
    model_opts(c)
    c.set_defaults(func=cmd_consult)

    e = sub.add_parser("eval", help="score the pipeline on a case file; writes results, metrics and a report")
    e.add_argument("--cases", required=True, help="JSONL case file (contract §1)")
    e.add_argument("--out", required=True, help="output directory")
    e.add_argument("--strict", action="store_true", help="exit 1 if emergency recall < 1 or any instrument is wrong")
    e.add_argument("--concurrency", type=int, default=8, help="cases in flight at once")
    e.add_argument("--limit", type=int, help="only the first N cases")
    model_opts(e)
    e.set_defaults(func=cmd_eval)

    ec = sub.add_parser("eval-compare", help="two `curbside eval --out` directories side by side")
    ec.add_argument("a")
    ec.add_argument("b")
    ec.add_argument("--labels", help="two comma-separated column names (default: the directories)")
    ec.set_defaults(func=cmd_eval_compare)
