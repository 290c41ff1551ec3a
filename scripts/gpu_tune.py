"""The selection run behind scripts/gpu_tune.sh: `run_select` without the CLI (whose settings need pydantic)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tuning.evaluate import EvalConfig
from tuning.select import SelectConfig, candidates_named, run_select


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, required=True, help="the data directory (models/, tuning/, adapters/)")
    ap.add_argument("--data", type=Path, required=True, help="a `curbside tune data` directory")
    ap.add_argument("--budget-minutes", type=float, default=8)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--candidates", help="comma-separated candidate names (default: all)")
    ap.add_argument("--validation-limit", type=int, default=16)
    ap.add_argument("--test-limit", type=int, default=40)
    ap.add_argument("--max-new-tokens", type=int, default=96, help="192 for `tune data --consult` data")
    args = ap.parse_args()
    config = SelectConfig(budget_minutes=args.budget_minutes, data_file=args.data, steps=args.steps,
                          device=args.device, candidates=candidates_named(args.candidates),
                          validation_limit=args.validation_limit, test_limit=args.test_limit,
                          eval=EvalConfig(max_new_tokens=args.max_new_tokens))
    card = run_select(config, args.root, args.root / "models", progress=False)
    print(json.dumps({"published": card.get("published"), "chosen": card.get("chosen"), "test": card.get("test")},
                     indent=1, default=str))


if __name__ == "__main__":
    main()
