"""The search indexes of one store generation: FAISS for dense vectors, bm25s for keywords.

A generation is a directory written once (under a temporary name, fsynced, then renamed) and never
modified; the store's manifest names the current one. Position i in every index is the i-th chunk in
`rows.npy` (the chunk's SQLite rowid), with its document and topic codes kept alongside for filtering.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bm25s
import faiss
import numpy as np
import Stemmer

from .durable import fsync_dir, fsync_tree

TOKEN_PATTERN = r"(?u)\b\w+\b"  # keeps single characters: "PHQ-9" is "phq" + "9"
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128

_stemmer = Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer.stemWords, token_pattern=TOKEN_PATTERN,
                          return_ids=False, show_progress=False)


@dataclass
class IndexInput:
    rows: np.ndarray            # int64 [n] chunk rowids
    doc_ids: list[str]          # [n]
    topics: list[str]           # [n]
    texts: list[str]            # [n] indexed text (title > section + body)
    vectors: np.ndarray         # float32 [n, d], unit-normalised


def build_generation(root: Path, name: str, data: IndexInput, exact_max: int,
                     on_stage: Callable[[str], None] = lambda stage: None) -> Path:
    """Write generation `name` under root atomically; returns its directory."""
    final = root / name
    tmp = root / f"{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n, dims = data.vectors.shape if data.vectors.ndim == 2 else (0, 0)
    kind = "none"
    if n:
        kind = "flat" if n <= exact_max else "hnsw"
        index = faiss.IndexFlatIP(dims) if kind == "flat" else faiss.IndexHNSWFlat(dims, HNSW_M,
                                                                                     faiss.METRIC_INNER_PRODUCT)
        if kind == "hnsw":
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(np.ascontiguousarray(data.vectors, dtype=np.float32))
        faiss.write_index(index, str(tmp / "dense.faiss"))
        on_stage("dense_index_written")
        bm25 = bm25s.BM25()
        bm25.index(tokenize(data.texts), show_progress=False)
        bm25.save(str(tmp / "bm25"), show_progress=False)
    doc_list = sorted(set(data.doc_ids))
    topic_list = sorted(set(data.topics))
    np.save(tmp / "rows.npy", np.asarray(data.rows, dtype=np.int64))
    np.save(tmp / "doc_codes.npy", np.asarray([doc_list.index(d) for d in data.doc_ids] if n else [], np.int32))
    np.save(tmp / "topic_codes.npy", np.asarray([topic_list.index(t) for t in data.topics] if n else [], np.int32))
    (tmp / "labels.json").write_text(json.dumps({"doc_ids": doc_list, "topics": topic_list, "dense": kind,
                                                 "dimensions": int(dims)}))
    fsync_tree(tmp)
    tmp.rename(final)
    fsync_dir(root)
    return final


class Generation:
    """A loaded, read-only generation: dense and keyword search over the same positions."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = np.load(path / "rows.npy")
        self.doc_codes = np.load(path / "doc_codes.npy")
        self.topic_codes = np.load(path / "topic_codes.npy")
        labels = json.loads((path / "labels.json").read_text())
        self.doc_ids: list[str] = labels["doc_ids"]
        self.topics: list[str] = labels["topics"]
        self.dense_kind: str = labels["dense"]
        self.dense = faiss.read_index(str(path / "dense.faiss")) if len(self.rows) else None
        self.bm25 = bm25s.BM25.load(str(path / "bm25"), show_progress=False) if len(self.rows) else None

    def __len__(self) -> int:
        return len(self.rows)

    def allowed(self, topics: list[str] | None, doc_ids: list[str] | None) -> np.ndarray | None:
        """Boolean mask [n] of positions passing the filters; None when there is no filter."""
        if not topics and not doc_ids:
            return None
        mask = np.ones(len(self.rows), dtype=bool)
        if topics:
            codes = [self.topics.index(t) for t in topics if t in self.topics]
            mask &= np.isin(self.topic_codes, codes)
        if doc_ids:
            codes = [self.doc_ids.index(d) for d in doc_ids if d in self.doc_ids]
            mask &= np.isin(self.doc_codes, codes)
        return mask

    def search_dense(self, query: np.ndarray, k: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        """(position, cosine similarity) best first; query is a unit vector [d]."""
        if self.dense is None or k <= 0:
            return []
        params = None
        if mask is not None:
            ids = np.flatnonzero(mask).astype(np.int64)
            if not len(ids):
                return []
            selector = faiss.IDSelectorBatch(ids)
            params = (faiss.SearchParametersHNSW(sel=selector, efSearch=max(HNSW_EF_SEARCH, k))
                      if self.dense_kind == "hnsw" else faiss.SearchParameters(sel=selector))
        elif self.dense_kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k))
        scores, ids = self.dense.search(query.reshape(1, -1).astype(np.float32), min(k, len(self)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def search_keywords(self, query: str, k: int, mask: np.ndarray | None) -> list[tuple[int, float]]:
        """(position, BM25 score) best first; positions with no matching term are left out."""
        if self.bm25 is None or k <= 0:
            return []
        tokens = tokenize([query])
        if not tokens[0]:
            return []
        weight = mask.astype(np.float32) if mask is not None else None
        ids, scores = self.bm25.retrieve(tokens, k=min(k, len(self)), show_progress=False, weight_mask=weight,
                                         n_threads=1)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
