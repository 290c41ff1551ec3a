"""`curbside ingest`, `curbside docs list|delete|rebuild|seed` and `curbside search`: the guideline store."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _store(args, seed: bool | None = None):
    from retrieval.store import open_store

    from .settings import load_settings

    return open_store(load_settings(data_dir=args.data_dir), seed=seed)


def cmd_ingest(args) -> int:
    store = _store(args, seed=False)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"curbside: error: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 2
    report = store.ingest_paths([Path(p) for p in args.paths], topic=args.topic, progress=not args.json)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        for o in report.outcomes:
            detail = o.error if o.status == "failed" else f"{o.doc_id} v{o.version}, {o.chunks} chunks"
            print(f"{o.status:9} {o.name}: {detail}")
        secs = ", ".join(f"{k} {v:.2f}s" for k, v in report.seconds.items())
        print(f"generation {report.generation}; {report.chunks} new chunks ({secs})")
    return 1 if report.failed else 0


def cmd_docs(args) -> int:
    store = _store(args, seed=False)
    if args.action == "list":
        docs = store.documents()
        if args.json:
            print(json.dumps([d.to_dict() for d in docs], indent=2))
        else:
            for d in docs:
                print(f"{d.doc_id:34} {d.topic:18} v{d.version:8} {d.chunks:4} chunks  {d.title[:60]}")
            print(f"{len(docs)} documents, generation {store.generation}")
    elif args.action == "delete":
        if not args.doc_ids:
            print("curbside: error: docs delete needs at least one DOC_ID", file=sys.stderr)
            return 2
        for doc_id in args.doc_ids:
            generation = store.delete(doc_id)
            print(f"deleted {doc_id} (generation {generation})")
    elif args.action == "rebuild":
        print(f"rebuilt indexes (generation {store.rebuild(reembed=args.reembed)})")
    elif args.action == "seed":
        report = store.seed_bundled()
        print(f"bundled corpus: {sum(o.status != 'unchanged' for o in report.outcomes)} documents added or "
              f"updated, generation {store.generation}")
        return 1 if report.failed else 0
    return 0


def cmd_search(args) -> int:
    store = _store(args)
    hits = store.search(args.query, k=args.k, topics=args.topic, doc_ids=args.doc_id, mode=args.mode)
    if args.json:
        keys = ("doc_id", "title", "topic", "section", "page", "score", "text", "source", "version", "chunk_id",
                "start", "end")
        print(json.dumps([{k: getattr(h, k) for k in keys} for h in hits], indent=2))
    else:
        for i, h in enumerate(hits, 1):
            where = f"{h.section}" + (f", p. {h.page}" if h.page else "")
            print(f"[{i}] {h.doc_id} ({h.topic}) {where}  score {h.score:.4f}\n    {h.text[:300]}\n")
    return 0


def add_commands(sub) -> None:
    from retrieval.store import SEARCH_MODES
    from retrieval.topics import TOPICS

    i = sub.add_parser("ingest", help="add guideline documents (PDF, DOCX, HTML, Markdown, text) to the store")
    i.add_argument("paths", nargs="+", help="files or directories")
    i.add_argument("--topic", choices=list(TOPICS), help="topic tag for every file (default: front matter or general)")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_ingest)

    d = sub.add_parser("docs", help="list, delete or rebuild the guideline store; seed the bundled corpus")
    d.add_argument("action", choices=["list", "delete", "rebuild", "seed"])
    d.add_argument("doc_ids", nargs="*", help="documents to delete")
    d.add_argument("--reembed", action="store_true", help="rebuild: recompute every embedding too")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_docs)

    s = sub.add_parser("search", help="hybrid search over the guideline store")
    s.add_argument("query")
    s.add_argument("--k", type=int, default=5)
    s.add_argument("--topic", action="append", choices=list(TOPICS), help="restrict to a topic (repeatable)")
    s.add_argument("--doc-id", action="append", help="restrict to a document (repeatable)")
    s.add_argument("--mode", choices=SEARCH_MODES, default="hybrid")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)
