"""Consult examples' excerpts as the pipeline retrieves them.

The corpus goes into a temporary `GuidelineStore` (the real chunker, embedder, BM25 and fusion); a case is
searched with the pipeline's own query (`retrieval_query`), steering topics and top k (`retrieve_hits`), limited
to one split's documents so no other split's text reaches its prompts. Hits map back to the builder's passages.
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

from app.consult import ConsultConfig, ConsultPipeline, retrieval_query, retrieve_hits, steering_topics

from .corpus import Document, Passage


class SplitRetriever:
    """`retriever(case, doc_ids)`: the passages the consult pipeline would quote for `case`, best first."""

    def __init__(self, guideline_paths: list[Path], embedder_dir: Path, documents: list[Document], k: int):
        from curbside.embedder import Embedder
        from retrieval.store import GuidelineStore, StoreConfig

        from .dataset import DatasetError

        self._tmp = tempfile.TemporaryDirectory(prefix="curbside-tuning-store-")
        root = Path(self._tmp.name)
        self.store = GuidelineStore(StoreConfig(root=root, models_dir=root / "models"),
                                    Embedder(embedder_dir, device="cpu"))
        report = self.store.ingest_paths(list(guideline_paths))
        if report.failed:
            raise DatasetError(f"could not index the corpus for consult examples: {report.failed[0].to_dict()}")
        self.k = k
        self.pipeline = ConsultPipeline(self.store, ConsultConfig(k=k))  # for `assess`: no model is called
        self.passages = {(p.doc_id, p.text): p for d in documents for p in d.passages}

    def __call__(self, case: dict, doc_ids: list[str]) -> list[Passage]:
        from .dataset import DatasetError

        a = self.pipeline.assess(case)
        query = retrieval_query(a.question, a.presentation, a.findings, a.instruments)
        search = partial(self.store.search, doc_ids=doc_ids)
        hits = retrieve_hits(search, query, steering_topics(a.findings, a.instruments, a.patient), self.k)
        passages = []
        for hit in hits:
            passage = self.passages.get((hit.doc_id, hit.text))
            if passage is None:
                raise DatasetError(f"store chunk {hit.doc_id}:{hit.start} is not a corpus passage (chunker drift?)")
            passages.append(passage)
        return passages

    def close(self) -> None:
        self._tmp.cleanup()
