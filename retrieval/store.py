"""The guideline store: documents and chunks in SQLite, search indexes in immutable generations.

Durability, in one paragraph: SQLite (WAL) is the source of truth. Every change (ingest, replace, delete,
rebuild) is one SQLite transaction that bumps the store's generation; rows are never updated in place but
marked with the generation that added and the one that removed them. After the commit the indexes for the
new generation are written to a fresh directory (temporary name, fsync, rename) and only then does
`manifest.json` (written the same way) switch searchers to it. A process killed at any point leaves the
manifest naming a complete generation whose rows still exist; the next writer rebuilds the indexes for a
generation that was committed but never published, and discards half-written directories. Rows a
generation no longer sees are deleted only once the manifest has moved two generations past them, so a
searcher still holding the previous generation keeps finding its chunks.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .chunking import make_splitter
from .durable import write_bytes_atomic, write_json_atomic
from .errors import DocumentNotFoundError, IngestError, RetrievalError
from .fusion import reciprocal_rank_fusion
from .indexes import Generation, IndexInput, build_generation
from .ingest import DocumentMeta, PreparedDocument, bundled_guideline_paths, prepare_document
from .loaders import check_name

log = logging.getLogger("curbside.retrieval")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL, title TEXT NOT NULL, topic TEXT NOT NULL, source TEXT NOT NULL,
    version TEXT NOT NULL, reviewed TEXT, file_name TEXT NOT NULL, format TEXT NOT NULL,
    content_hash TEXT NOT NULL, size_bytes INTEGER NOT NULL, text TEXT NOT NULL,
    ingested_at TEXT NOT NULL, gen_added INTEGER NOT NULL, gen_removed INTEGER);
CREATE INDEX IF NOT EXISTS documents_live ON documents (doc_id) WHERE gen_removed IS NULL;
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    document INTEGER NOT NULL REFERENCES documents(id),
    ordinal INTEGER NOT NULL, section TEXT NOT NULL, page INTEGER,
    start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL, indexed_text TEXT NOT NULL,
    embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks (document);
"""

SEARCH_MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True)
class StoreConfig:
    root: Path
    embedding_model: str = "all-minilm-l6-v2"
    models_dir: Path = Path("var/models")
    max_document_bytes: int = 20 * 1024 * 1024
    chunk_tokens: int = 192
    chunk_overlap_tokens: int = 32
    exact_search_max_chunks: int = 50_000
    search_candidates: int = 50
    embed_batch_size: int = 64

    @classmethod
    def from_settings(cls, s) -> StoreConfig:
        return cls(root=s.store_dir, embedding_model=s.embedding_model or "all-minilm-l6-v2",
                   models_dir=s.model_dir, max_document_bytes=s.max_document_bytes, chunk_tokens=s.chunk_tokens,
                   chunk_overlap_tokens=s.chunk_overlap_tokens, exact_search_max_chunks=s.exact_search_max_chunks,
                   search_candidates=s.search_candidates)


@dataclass
class DocumentInfo(DocumentMeta):
    size_bytes: int
    chunks: int
    ingested_at: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class IngestOutcome:
    name: str
    status: str                 # added | replaced | unchanged | failed
    doc_id: str | None = None
    chunks: int = 0
    version: str | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class IngestReport:
    outcomes: list[IngestOutcome]
    generation: int
    chunks: int = 0
    seconds: dict[str, float] = field(default_factory=dict)   # parse, embed, commit, index

    @property
    def failed(self) -> list[IngestOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def to_dict(self) -> dict:
        return {"generation": self.generation, "chunks": self.chunks, "seconds": self.seconds,
                "outcomes": [o.to_dict() for o in self.outcomes]}


@dataclass
class SearchHit:
    chunk_id: int
    doc_id: str
    title: str
    topic: str
    source: str
    version: str
    section: str
    page: int | None
    start: int
    end: int
    text: str
    score: float                  # the fused (or single-method) score used for ranking
    dense_score: float | None = None
    bm25_score: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class GuidelineStore:
    """Open with `GuidelineStore(config)`; safe to search from many threads while one thread ingests."""

    def __init__(self, config: StoreConfig, embedder=None, on_stage: Callable[[str], None] | None = None):
        self.config = config
        self.root = Path(config.root)
        self.index_root = self.root / "indexes"
        self.files_root = self.root / "files"
        self.manifest_path = self.root / "manifest.json"
        for d in (self.root, self.index_root, self.files_root):
            d.mkdir(parents=True, exist_ok=True)
        self._embedder = embedder
        self._splitter = None
        self._on_stage = on_stage or (lambda stage: None)
        self._local = threading.local()
        self._swap = threading.Lock()
        self._generation: Generation | None = None
        self._generation_number = -1
        with self._connect() as db:
            db.executescript(SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
        self.recover()

    # -- plumbing -------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.root / "store.sqlite", timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.row_factory = sqlite3.Row
        return db

    @property
    def _db(self) -> sqlite3.Connection:
        """One connection per thread, for reads."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @property
    def embedder(self):
        if self._embedder is None:
            from curbside.embedder import Embedder

            self._embedder = Embedder.load(self.config.embedding_model, self.config.models_dir)
        return self._embedder

    @property
    def splitter(self):
        if self._splitter is None:
            self._splitter = make_splitter(self.embedder.tokenizer, self.config.chunk_tokens,
                                           self.config.chunk_overlap_tokens)
        return self._splitter

    @contextmanager
    def _write_lock(self, blocking: bool = True) -> Iterator[bool]:
        """One writer at a time across processes; released by the kernel if the holder dies."""
        with open(self.root / "write.lock", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _committed_generation(self, db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def _manifest(self) -> dict | None:
        try:
            return json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            return None

    # -- recovery and publishing ----------------------------------------------------------------------

    def recover(self) -> None:
        """Discard half-written index directories and publish a committed generation that never was."""
        with self._write_lock(blocking=False) as locked:
            if not locked:
                return  # a live writer holds the store; it publishes its own work
            for tmp in self.index_root.glob("*.tmp"):
                shutil.rmtree(tmp, ignore_errors=True)
            manifest = self._manifest()
            with self._connect() as db:
                committed = self._committed_generation(db)
            published = manifest["generation"] if manifest else -1
            if committed != published:
                fresh = published == -1 and committed == 0
                (log.info if fresh else log.warning)("store %s: generation %d committed but %d published; "
                                                     "rebuilding indexes", self.root, committed, published)
                self._publish(committed)

    def _visible_rows(self, db: sqlite3.Connection, generation: int) -> Iterable[sqlite3.Row]:
        return db.execute(
            "SELECT c.id, d.doc_id, d.topic, c.indexed_text, c.embedding FROM chunks c "
            "JOIN documents d ON d.id = c.document "
            "WHERE d.gen_added <= ? AND (d.gen_removed IS NULL OR d.gen_removed > ?) ORDER BY c.id",
            (generation, generation))

    def _publish(self, generation: int) -> None:
        """Write the indexes of a committed generation, then point the manifest at them; caller holds the lock."""
        t0 = time.perf_counter()
        with self._connect() as db:
            rows = list(self._visible_rows(db, generation))
            n_docs = db.execute("SELECT COUNT(*) FROM documents WHERE gen_added <= ? AND "
                                "(gen_removed IS NULL OR gen_removed > ?)", (generation, generation)).fetchone()[0]
        dims = self.embedder.dimensions if rows else 0
        vectors = (np.frombuffer(b"".join(r["embedding"] for r in rows), dtype=np.float32).reshape(len(rows), -1)
                   if rows else np.zeros((0, dims), np.float32))
        data = IndexInput(rows=np.array([r["id"] for r in rows], dtype=np.int64),
                          doc_ids=[r["doc_id"] for r in rows], topics=[r["topic"] for r in rows],
                          texts=[r["indexed_text"] for r in rows], vectors=vectors)
        name = f"gen-{generation:08d}"
        shutil.rmtree(self.index_root / name, ignore_errors=True)  # a stale copy from an aborted publish
        build_generation(self.index_root, name, data, self.config.exact_search_max_chunks, self._on_stage)
        self._on_stage("indexes_written")
        previous = self._manifest()
        write_json_atomic(self.manifest_path, {
            "generation": generation, "index": name, "chunks": len(rows), "documents": n_docs,
            "previous_index": previous["index"] if previous else None,
            "embedding_model": self.config.embedding_model, "dimensions": int(vectors.shape[1]),
            "published_at": datetime.now(UTC).isoformat(timespec="seconds")})
        self._on_stage("manifest_written")
        self._collect_garbage(generation, keep={name, previous["index"] if previous else name})
        log.info("store %s: published generation %d (%d chunks, %d documents) in %.2fs",
                 self.root, generation, len(rows), n_docs, time.perf_counter() - t0)

    def _collect_garbage(self, generation: int, keep: set[str]) -> None:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            dead = [r[0] for r in db.execute(
                "SELECT id FROM documents WHERE gen_removed IS NOT NULL AND gen_removed < ?", (generation,))]
            for doc in dead:
                db.execute("DELETE FROM chunks WHERE document = ?", (doc,))
                db.execute("DELETE FROM documents WHERE id = ?", (doc,))
            db.execute("COMMIT")
            referenced = {r[0] for r in db.execute("SELECT DISTINCT content_hash FROM documents")}
        for path in self.index_root.iterdir():
            if path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
        for path in self.files_root.iterdir():
            if path.name not in referenced:
                path.unlink(missing_ok=True)

    def _current(self) -> tuple[Generation | None, int]:
        """The published generation, reloaded when another thread or process has published a newer one."""
        manifest = self._manifest()
        if manifest is None:
            return None, -1
        if manifest["generation"] != self._generation_number:
            with self._swap:
                if manifest["generation"] != self._generation_number:
                    self._generation = Generation(self.index_root / manifest["index"])
                    self._generation_number = manifest["generation"]
        return self._generation, self._generation_number

    # -- writing --------------------------------------------------------------------------------------

    def prepare(self, name: str, data: bytes, topic: str | None = None) -> PreparedDocument:
        return prepare_document(name, data, self.splitter, self.config.max_document_bytes, topic)

    def ingest_files(self, files: list[tuple[str, bytes]], topic: str | None = None,
                     progress: bool = False) -> IngestReport:
        """Ingest uploaded (name, bytes) pairs; a bad file is reported as failed and changes nothing."""
        t0 = time.perf_counter()
        outcomes: list[IngestOutcome] = []
        prepared: list[PreparedDocument] = []
        live = self._live_hashes()
        for name, data in _progress(files, progress, "parsing"):
            try:
                doc = self.prepare(name, data, topic)
            except IngestError as e:
                outcomes.append(IngestOutcome(name, "failed", error=str(e)))
                continue
            if live.get(doc.doc_id) == (doc.content_hash, doc.topic):
                outcomes.append(IngestOutcome(name, "unchanged", doc.doc_id, len(doc.chunks), doc.version))
                continue
            prepared.append(doc)
        t1 = time.perf_counter()
        texts = [t for doc in prepared for t in doc.indexed_texts()]
        vectors = self.embedder.encode(texts, batch_size=self.config.embed_batch_size,
                                       progress=progress and len(texts) > 256)
        offset = 0
        for doc in prepared:
            doc.embeddings = vectors[offset:offset + len(doc.chunks)]
            offset += len(doc.chunks)
        self._on_stage("embedded")
        t2 = time.perf_counter()
        report = self.commit(prepared)
        report.outcomes = outcomes + report.outcomes
        report.seconds = {"parse": t1 - t0, "embed": t2 - t1, **report.seconds}
        return report

    def ingest_paths(self, paths: list[Path], topic: str | None = None, progress: bool = False) -> IngestReport:
        """Ingest files from disk (directories are walked for supported files)."""
        from .loaders import SUPPORTED_SUFFIXES

        files: list[Path] = []
        for path in map(Path, paths):
            if path.is_dir():
                files += sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES
                                and p.is_file() and p.name != "SOURCES.md")
            else:
                files.append(path)
        pairs = []
        failed = []
        for path in files:
            try:
                if path.stat().st_size > self.config.max_document_bytes:  # do not read a huge file to refuse it
                    pairs.append((path.name, b"\0" * (self.config.max_document_bytes + 1)))
                else:
                    pairs.append((path.name, path.read_bytes()))
            except OSError as e:
                failed.append(IngestOutcome(path.name, "failed", error=f"{path}: {e.strerror or e}"))
        report = self.ingest_files(pairs, topic, progress)
        report.outcomes = failed + report.outcomes
        return report

    def seed_bundled(self) -> IngestReport:
        """Ingest the bundled corpus (data/guidelines); unchanged documents are skipped."""
        return self.ingest_paths(bundled_guideline_paths())

    def commit(self, prepared: list[PreparedDocument]) -> IngestReport:
        """Store embedded documents as one new generation (replacing same-id documents) and publish it."""
        t0 = time.perf_counter()
        outcomes: list[IngestOutcome] = []
        with self._write_lock():
            for doc in prepared:  # originals first: content-addressed, so a crash leaves only an orphan
                path = self.files_root / doc.content_hash
                if not path.exists():
                    write_bytes_atomic(path, doc.data)
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                generation = self._committed_generation(db) + 1
                for doc in prepared:
                    outcomes.append(self._insert(db, doc, generation))
                if all(o.status == "unchanged" for o in outcomes):
                    db.execute("ROLLBACK")
                    return IngestReport(outcomes, generation - 1, seconds={"commit": time.perf_counter() - t0})
                db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
                db.execute("COMMIT")
            self._on_stage("committed")
            t1 = time.perf_counter()
            self._publish(generation)
        chunks = sum(o.chunks for o in outcomes if o.status in ("added", "replaced"))
        return IngestReport(outcomes, generation, chunks,
                            {"commit": t1 - t0, "index": time.perf_counter() - t1})

    def _insert(self, db: sqlite3.Connection, doc: PreparedDocument, generation: int) -> IngestOutcome:
        assert doc.embeddings is not None and len(doc.embeddings) == len(doc.chunks)
        old = db.execute("SELECT id, content_hash, topic FROM documents WHERE doc_id = ? AND gen_removed IS NULL",
                         (doc.doc_id,)).fetchone()
        if old and (old["content_hash"], old["topic"]) == (doc.content_hash, doc.topic):
            return IngestOutcome(doc.file_name, "unchanged", doc.doc_id, len(doc.chunks), doc.version)
        if old:
            db.execute("UPDATE documents SET gen_removed = ? WHERE id = ?", (generation, old["id"]))
        cur = db.execute(
            "INSERT INTO documents (doc_id, title, topic, source, version, reviewed, file_name, format, "
            "content_hash, size_bytes, text, ingested_at, gen_added) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (doc.doc_id, doc.title, doc.topic, doc.source, doc.version, doc.reviewed, doc.file_name, doc.format,
             doc.content_hash, len(doc.data), doc.text, datetime.now(UTC).isoformat(timespec="seconds"),
             generation))
        texts = doc.indexed_texts()
        db.executemany(
            "INSERT INTO chunks (document, ordinal, section, page, start, end, text, indexed_text, embedding) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            [(cur.lastrowid, c.ordinal, c.section, c.page, c.start, c.end, c.text, texts[i],
              np.ascontiguousarray(doc.embeddings[i], dtype=np.float32).tobytes())
             for i, c in enumerate(doc.chunks)])
        return IngestOutcome(doc.file_name, "replaced" if old else "added", doc.doc_id, len(doc.chunks), doc.version)

    def delete(self, doc_id: str) -> int:
        """Remove a document from search (one new generation); returns the new generation."""
        with self._write_lock():
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                generation = self._committed_generation(db) + 1
                cur = db.execute("UPDATE documents SET gen_removed = ? WHERE doc_id = ? AND gen_removed IS NULL",
                                 (generation, doc_id))
                if cur.rowcount == 0:
                    db.execute("ROLLBACK")
                    raise DocumentNotFoundError(f"no document {doc_id!r} in the store")
                db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
                db.execute("COMMIT")
            self._publish(generation)
        return generation

    def rebuild(self, reembed: bool = False) -> int:
        """Rewrite every index from the stored chunks (re-embedding them if asked) as a new generation."""
        with self._write_lock():
            with self._connect() as db:
                updates = []
                if reembed:
                    rows = db.execute("SELECT c.id, c.indexed_text FROM chunks c JOIN documents d ON d.id = "
                                      "c.document WHERE d.gen_removed IS NULL").fetchall()
                    vectors = self.embedder.encode([r["indexed_text"] for r in rows],
                                                   batch_size=self.config.embed_batch_size)
                    updates = [(v.tobytes(), r["id"]) for r, v in zip(rows, vectors, strict=True)]
                db.execute("BEGIN IMMEDIATE")
                generation = self._committed_generation(db) + 1
                # Re-embedding rewrites vectors in place: the previous generation's index files keep their own
                # copies, so searchers still on it are unaffected.
                db.executemany("UPDATE chunks SET embedding = ? WHERE id = ?", updates)
                db.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(generation),))
                db.execute("COMMIT")
            self._publish(generation)
        return generation

    # -- reading --------------------------------------------------------------------------------------

    def _live_hashes(self) -> dict[str, tuple[str, str]]:
        return {r["doc_id"]: (r["content_hash"], r["topic"]) for r in
                self._db.execute("SELECT doc_id, content_hash, topic FROM documents WHERE gen_removed IS NULL")}

    @property
    def generation(self) -> int:
        manifest = self._manifest()
        return manifest["generation"] if manifest else -1

    def documents(self) -> list[DocumentInfo]:
        """The documents searchers see now (the published generation), by doc_id."""
        gen = self.generation
        rows = self._db.execute(
            "SELECT d.*, (SELECT COUNT(*) FROM chunks c WHERE c.document = d.id) AS chunks FROM documents d "
            "WHERE d.gen_added <= ? AND (d.gen_removed IS NULL OR d.gen_removed > ?) ORDER BY d.doc_id",
            (gen, gen)).fetchall()
        return [DocumentInfo(**{k: r[k] for k in DocumentInfo.__dataclass_fields__}) for r in rows]

    def document(self, doc_id: str) -> tuple[DocumentInfo, str]:
        """A published document's record and its extracted text (what citations' offsets index into)."""
        for info in self.documents():
            if info.doc_id == doc_id:
                text = self._db.execute("SELECT text FROM documents WHERE doc_id = ? AND content_hash = ?",
                                        (doc_id, info.content_hash)).fetchone()[0]
                return info, text
        raise DocumentNotFoundError(f"no document {doc_id!r} in the store")

    def original(self, doc_id: str) -> tuple[str, bytes]:
        """The uploaded file's name and bytes, exactly as ingested."""
        info, _ = self.document(doc_id)
        return check_name(info.file_name), (self.files_root / info.content_hash).read_bytes()

    def search(self, query: str, k: int = 5, topics: list[str] | None = None, doc_ids: list[str] | None = None,
               mode: str = "hybrid") -> list[SearchHit]:
        """The k best chunks for a query, filtered by topic and/or doc_id, each with its citation metadata."""
        if mode not in SEARCH_MODES:
            raise RetrievalError(f"unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}")
        if not query.strip():
            raise RetrievalError("empty search query")
        if k < 1:
            raise RetrievalError(f"k must be at least 1, got {k}")
        gen, _ = self._current()
        if gen is None or not len(gen):
            return []
        mask = gen.allowed(topics, doc_ids)
        candidates = max(self.config.search_candidates, k)
        dense = gen.search_dense(self.embedder.encode([query])[0], candidates, mask) if mode != "bm25" else []
        keyword = gen.search_keywords(query, candidates, mask) if mode != "dense" else []
        dense_scores, keyword_scores = dict(dense), dict(keyword)
        if mode == "hybrid":
            ranked = reciprocal_rank_fusion([[p for p, _ in dense], [p for p, _ in keyword]])
        else:
            ranked = dense or keyword
        ranked = ranked[:k]
        by_row = self._chunk_rows([int(gen.rows[p]) for p, _ in ranked])
        hits = []
        for position, score in ranked:
            row = by_row.get(int(gen.rows[position]))
            if row is None:  # collected after a newer generation was published: skip rather than fail
                continue
            hits.append(SearchHit(
                chunk_id=row["id"], doc_id=row["doc_id"], title=row["title"], topic=row["topic"],
                source=row["source"], version=row["version"], section=row["section"], page=row["page"],
                start=row["start"], end=row["end"], text=row["text"], score=round(score, 6),
                dense_score=dense_scores.get(position), bm25_score=keyword_scores.get(position)))
        return hits

    def _chunk_rows(self, ids: list[int]) -> dict[int, sqlite3.Row]:
        if not ids:
            return {}
        rows = self._db.execute(
            "SELECT c.id, c.section, c.page, c.start, c.end, c.text, d.doc_id, d.title, d.topic, d.source, "
            f"d.version FROM chunks c JOIN documents d ON d.id = c.document WHERE c.id IN ({','.join('?' * len(ids))})",
            ids).fetchall()
        return {r["id"]: r for r in rows}

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def _progress(items: list, enabled: bool, desc: str):
    if not enabled or len(items) < 2:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file")


def open_store(settings, embedder=None, seed: bool | None = None) -> GuidelineStore:
    """The store under the data directory; a new store is seeded with the bundled corpus when configured."""
    store = GuidelineStore(StoreConfig.from_settings(settings), embedder)
    if (settings.seed_bundled_guidelines if seed is None else seed) and store.generation < 1:
        report = store.seed_bundled()
        for failure in report.failed:
            log.error("bundled guideline refused: %s", failure.error)
    return store
