"""Retrieval quality on labelled questions: hit@1, hit@5 and MRR for dense, BM25 and hybrid side by side.

    python -m retrieval.eval [--questions data/eval/retrieval_dev.jsonl] [--json OUT] [--data-dir DIR]

By default a fresh store is built from the bundled corpus in a temporary directory, so the numbers do not
depend on what an admin has uploaded; `--data-dir` evaluates that store instead. A question counts as hit
by topic when a result carries its topic, and by document when a result is its `doc_id` (or one of its
`doc_ids`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from .store import SEARCH_MODES, GuidelineStore, StoreConfig

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QUESTIONS = ROOT / "data" / "eval" / "retrieval_dev.jsonl"


def first_rank(values: list[str], wanted: set[str]) -> int | None:
    return next((i for i, v in enumerate(values, 1) if v in wanted), None)


def summarise(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks) or 1
    return {"hit@1": sum(r == 1 for r in ranks if r) / n, "hit@5": sum(1 for r in ranks if r and r <= 5) / n,
            "mrr": sum(1 / r for r in ranks if r) / n}


def evaluate(store: GuidelineStore, questions: list[dict], k: int = 5) -> dict:
    """{mode: {"topic": {...}, "doc": {...}, "misses": [ids missed by topic at k]}} for every search mode."""
    out = {}
    for mode in SEARCH_MODES:
        by_topic, by_doc, misses = [], [], []
        for q in questions:
            hits = store.search(q["question"], k=k, mode=mode)
            topic_rank = first_rank([h.topic for h in hits], {q["topic"]})
            by_topic.append(topic_rank)
            wanted = set(q.get("doc_ids") or ([q["doc_id"]] if q.get("doc_id") else []))
            if wanted:
                by_doc.append(first_rank([h.doc_id for h in hits], wanted))
            if topic_rank is None:
                misses.append(q["id"])
        out[mode] = {"topic": summarise(by_topic), "doc": summarise(by_doc), "misses": misses}
    return out


def load_questions(path: Path) -> list[dict]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                questions.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{number}: not JSON: {e}") from e
    return questions


def print_table(results: dict, n: int) -> None:
    print(f"{n} questions; hits within the top 5")
    print(f"{'mode':8} {'topic hit@1':>12} {'topic hit@5':>12} {'topic MRR':>10} {'doc hit@1':>10} "
          f"{'doc hit@5':>10} {'doc MRR':>8}")
    for mode, r in results.items():
        t, d = r["topic"], r["doc"]
        print(f"{mode:8} {t['hit@1']:12.3f} {t['hit@5']:12.3f} {t['mrr']:10.3f} {d['hit@1']:10.3f} "
              f"{d['hit@5']:10.3f} {d['mrr']:8.3f}")
    for mode, r in results.items():
        if r["misses"]:
            print(f"{mode} misses by topic: {', '.join(r['misses'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrieval.eval", description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--data-dir", type=Path, help="evaluate the store under this data directory")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    from curbside.settings import load_settings

    questions = load_questions(args.questions)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=args.data_dir)
        config = StoreConfig.from_settings(settings)
        if args.data_dir is None:
            config = StoreConfig(**{**config.__dict__, "root": Path(tmp) / "store"})
        store = GuidelineStore(config)
        if args.data_dir is None:
            store.seed_bundled()
        results = evaluate(store, questions)
    print_table(results, len(questions))
    if args.json:
        args.json.write_text(json.dumps({"questions": len(questions), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
