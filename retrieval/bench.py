"""Retrieval speed: ingest throughput and query latency, on the bundled corpus and a synthetic large store.

    python -m retrieval.bench [--synthetic-chunks 100000] [--queries 200] [--json OUT]

The bundled corpus is ingested end to end (parse, chunk, embed, commit, index) and searched with the
labelled dev questions; query latency includes embedding the query. The synthetic store holds random
unit vectors and text drawn from the corpus vocabulary: it measures index size effects (FAISS HNSW past
the exact-search threshold, BM25 over many documents), not quality. Embedding time is reported apart.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from .chunking import Chunk
from .eval import DEFAULT_QUESTIONS, load_questions
from .ingest import PreparedDocument
from .store import GuidelineStore, StoreConfig


def latency(store: GuidelineStore, queries: list[str], mode: str = "hybrid") -> dict[str, float]:
    for q in queries[:5]:
        store.search(q, k=5, mode=mode)  # warm caches
    times = []
    for q in queries:
        t0 = time.perf_counter()
        store.search(q, k=5, mode=mode)
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)),
            "mean_ms": float(np.mean(times)), "queries": len(times)}


def embed_latency(store: GuidelineStore, queries: list[str]) -> float:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        store.embedder.encode([q])
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50))


def synthetic_documents(n_chunks: int, dims: int, vocabulary: list[str], seed: int = 0,
                        per_doc: int = 100) -> list[PreparedDocument]:
    rng = np.random.default_rng(seed)
    topics = ["depression", "anxiety", "bipolar", "alcohol", "opioids", "insomnia", "general"]
    docs = []
    for d in range(0, n_chunks, per_doc):
        chunks, texts = [], []
        for i in range(min(per_doc, n_chunks - d)):
            text = " ".join(rng.choice(vocabulary, size=int(rng.integers(40, 120))))
            start = sum(len(t) + 1 for t in texts)
            chunks.append(Chunk(i, f"Section {i}", None, start, start + len(text), text))
            texts.append(text)
        vectors = rng.standard_normal((len(chunks), dims)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        body = "\n".join(texts)
        docs.append(PreparedDocument(
            doc_id=f"synthetic-{d // per_doc:05d}", title=f"Synthetic {d // per_doc}", topic=topics[d % len(topics)],
            source="synthetic", version="1", reviewed=None, file_name=f"synthetic-{d}.txt", format="text",
            content_hash=f"{seed}-{d}", data=body.encode(), text=body, chunks=chunks, embeddings=vectors))
    return docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrieval.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic-chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from curbside.settings import load_settings

    settings = load_settings()
    base = StoreConfig.from_settings(settings)
    questions = [q["question"] for q in load_questions(DEFAULT_QUESTIONS)]
    queries = (questions * (args.queries // len(questions) + 1))[:args.queries]
    out: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()}}
    with tempfile.TemporaryDirectory() as tmp:
        store = GuidelineStore(StoreConfig(**{**base.__dict__, "root": Path(tmp) / "bundled"}))
        store.embedder.encode(["warm up"])
        t0 = time.perf_counter()
        report = store.seed_bundled()
        total = time.perf_counter() - t0
        out["bundled_ingest"] = {"documents": len(report.outcomes), "chunks": report.chunks, "total_s": total,
                                 **{f"{k}_s": v for k, v in report.seconds.items()},
                                 "chunks_per_s": report.chunks / total,
                                 "chunks_per_s_excluding_embedding": report.chunks / (total - report.seconds["embed"])}
        out["query_embedding_p50_ms"] = embed_latency(store, queries[:50])
        out["bundled_query"] = {mode: latency(store, queries, mode) for mode in ("hybrid", "dense", "bm25")}
        vocabulary = sorted({w for q in store.documents() for w in store.document(q.doc_id)[1].split() if w.isalpha()})

        if args.synthetic_chunks:
            big = GuidelineStore(StoreConfig(**{**base.__dict__, "root": Path(tmp) / "synthetic"}), store.embedder)
            docs = synthetic_documents(args.synthetic_chunks, store.embedder.dimensions, vocabulary)
            t0 = time.perf_counter()
            rep = big.commit(docs)
            total = time.perf_counter() - t0
            gen, _ = big._current()
            out["synthetic_ingest"] = {"chunks": rep.chunks, "dense_index": gen.dense_kind, "total_s": total,
                                       **{f"{k}_s": v for k, v in rep.seconds.items()},
                                       "chunks_per_s_excluding_embedding": rep.chunks / total}
            out["synthetic_query"] = {mode: latency(big, queries, mode) for mode in ("hybrid", "dense", "bm25")}

    b = out["bundled_ingest"]
    print(f"bundled corpus: {b['chunks']} chunks ingested in {b['total_s']:.1f}s ({b['chunks_per_s']:.0f} chunks/s; "
          f"embedding {b['embed_s']:.1f}s, everything else {b['chunks_per_s_excluding_embedding']:.0f} chunks/s)")
    print(f"query embedding p50 {out['query_embedding_p50_ms']:.1f} ms")
    print(f"{'store':10} {'mode':7} {'p50 ms':>8} {'p99 ms':>8} {'target p50':>11}")
    for name, key, target in (("bundled", "bundled_query", 30), ("synthetic", "synthetic_query", 100)):
        for mode, r in out.get(key, {}).items():
            print(f"{name:10} {mode:7} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {target if mode == 'hybrid' else '':>11}")
    if "synthetic_ingest" in out:
        s = out["synthetic_ingest"]
        print(f"synthetic: {s['chunks']} chunks committed and indexed ({s['dense_index']}) in {s['total_s']:.1f}s "
              f"({s['chunks_per_s_excluding_embedding']:.0f} chunks/s, embedding excluded)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
