"""The guideline store: ingest, replace, delete, refuse bad input without change, search with citations."""

from __future__ import annotations

import threading

import pytest
from support.guidelines import INSOMNIA, LITHIUM, doc_ids, guideline

from retrieval.errors import DocumentNotFoundError, RetrievalError
from retrieval.retriever import GuidelineRetriever
from retrieval.store import GuidelineStore, StoreConfig
from retrieval.topics import TOPICS


def test_the_bundled_corpus_has_a_document_for_every_topic(bundled_store):
    docs = bundled_store.documents()
    assert len(docs) >= 16
    assert {d.topic for d in docs} >= set(TOPICS) - {"general"}
    assert all(d.source and d.version and d.chunks > 0 for d in docs)


@pytest.mark.parametrize("query, doc_id", [
    ("how often should lithium levels be checked", "bipolar-disorder"),
    ("buprenorphine induction in primary care", "opioid-use-disorder"),
    ("PHQ-9 severity bands and when to start treatment", "depression-adult"),
    ("first-line treatment for chronic insomnia before hypnotics", "insomnia-cbti"),
])
def test_hybrid_search_finds_the_guideline_that_answers(bundled_store, query, doc_id):
    hits = bundled_store.search(query, k=5)
    assert doc_id in doc_ids(hits)
    top = hits[0]
    assert top.text and top.section and top.title and top.source and top.score > 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_every_hit_cites_an_exact_span_of_its_document(bundled_store):
    for hit in bundled_store.search("suicide risk safety planning and means restriction", k=5):
        _, text = bundled_store.document(hit.doc_id)
        assert text[hit.start:hit.end] == hit.text


def test_search_filters_by_topic_and_by_document(bundled_store):
    hits = bundled_store.search("sleep and mood", k=5, topics=["insomnia"])
    assert hits and {h.topic for h in hits} == {"insomnia"}
    hits = bundled_store.search("monitoring", k=3, doc_ids=["psychosis-first-episode"])
    assert hits and set(doc_ids(hits)) == {"psychosis-first-episode"}
    assert bundled_store.search("monitoring", k=3, topics=["general"]) == []


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_search_mode_ranks_the_right_document_first(bundled_store, mode):
    hits = bundled_store.search("take-home naloxone for overdose prevention", k=3, mode=mode)
    assert hits[0].doc_id == "opioid-use-disorder"
    if mode == "dense":
        assert hits[0].dense_score is not None and hits[0].bm25_score is None


def test_bad_queries_are_refused_with_the_reason(bundled_store):
    with pytest.raises(RetrievalError, match="empty"):
        bundled_store.search("   ")
    with pytest.raises(RetrievalError, match="mode"):
        bundled_store.search("lithium", mode="fuzzy")
    with pytest.raises(RetrievalError, match="k must be"):
        bundled_store.search("lithium", k=0)


def test_reingesting_the_same_content_adds_nothing(small_store):
    generation = small_store.generation
    report = small_store.ingest_files([("lithium.md", LITHIUM), ("renamed.md", LITHIUM)])
    assert [o.status for o in report.outcomes] == ["unchanged", "unchanged"]
    assert small_store.generation == generation
    assert len(small_store.documents()) == 2


def test_a_new_version_replaces_the_old_one_for_searchers(small_store):
    v2 = guideline("lithium-test", "bipolar", "## Monitoring\n\n- Check lithium levels every 6 months once stable.",
                   version="2")
    report = small_store.ingest_files([("lithium-v2.md", v2)])
    assert report.outcomes[0].status == "replaced"
    docs = {d.doc_id: d for d in small_store.documents()}
    assert docs["lithium-test"].version == "2" and len(docs) == 2
    texts = [h.text for h in small_store.search("lithium levels", k=5)]
    assert any("every 6 months once stable" in t for t in texts)
    assert not any("12 hours after the dose" in t for t in texts)


def test_replaced_rows_are_kept_while_the_previous_generation_may_be_read_then_collected(small_store):
    def rows(doc_id):
        return small_store._db.execute("SELECT COUNT(*) FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()[0]

    for version in ("2", "3"):
        body = f"## Monitoring\n\n- Lithium version {version} advice."
        small_store.ingest_files([("lithium.md", guideline("lithium-test", "bipolar", body, version))])
    assert rows("lithium-test") == 2  # v3 live, v2 still readable by searchers of the previous generation
    small_store.ingest_files([("insomnia.md", INSOMNIA)])
    assert rows("lithium-test") == 1
    assert len(list(small_store.index_root.iterdir())) == 2


def test_a_bad_file_is_refused_by_name_and_the_store_is_unchanged(small_store):
    generation, docs = small_store.generation, small_store.documents()
    report = small_store.ingest_files([("notes.exe", b"MZ\x90"), ("empty.md", b"   \n"), ("../up.md", LITHIUM),
                                       ("bad.txt", b"caf\xe9"), ("fake.pdf", b"%PDF-1.7 truncated"),
                                       ("tagged.md", guideline("x", "astrology", "- a"))])
    errors = {o.name: o.error for o in report.outcomes}
    assert all(o.status == "failed" for o in report.outcomes)
    assert "notes.exe" in errors["notes.exe"] and "astrology" in errors["tagged.md"]
    assert small_store.generation == generation and small_store.documents() == docs


def test_good_files_are_ingested_alongside_a_refused_one(small_store):
    report = small_store.ingest_files([("insomnia.md", INSOMNIA), ("notes.exe", b"MZ")])
    assert [o.status for o in report.outcomes] == ["failed", "added"]
    assert "insomnia-test" in [d.doc_id for d in small_store.documents()]


def test_an_oversized_file_is_refused_before_parsing(store_config, embedder):
    store = GuidelineStore(StoreConfig(root=store_config.root, models_dir=store_config.models_dir,
                                       max_document_bytes=1024), embedder)
    report = store.ingest_files([("big.md", guideline("big", "general", "- x" * 2000))])
    assert report.outcomes[0].status == "failed" and "limit" in report.outcomes[0].error


def test_topic_given_at_ingest_overrides_the_front_matter(small_store):
    small_store.ingest_files([("sleep.md", INSOMNIA)], topic="general")
    assert {d.doc_id: d.topic for d in small_store.documents()}["insomnia-test"] == "general"


def test_delete_removes_a_document_from_search_and_unknown_ids_are_named(small_store):
    small_store.delete("naloxone-test")
    assert "naloxone-test" not in doc_ids(small_store.search("naloxone overdose", k=5))
    with pytest.raises(DocumentNotFoundError, match="no-such-doc"):
        small_store.delete("no-such-doc")


def test_the_original_upload_is_kept_byte_for_byte(small_store):
    name, data = small_store.original("lithium-test")
    assert (name, data) == ("lithium.md", LITHIUM)


def test_rebuild_publishes_a_new_generation_with_the_same_results(small_store):
    before = [(h.chunk_id, h.score) for h in small_store.search("lithium monitoring", k=3)]
    generation = small_store.rebuild(reembed=True)
    assert generation == small_store.generation
    assert [(h.chunk_id, round(h.score, 4)) for h in small_store.search("lithium monitoring", k=3)] == \
        [(c, round(s, 4)) for c, s in before]


def test_past_the_size_threshold_the_dense_index_is_hnsw(store_config, embedder):
    config = StoreConfig(root=store_config.root, models_dir=store_config.models_dir, exact_search_max_chunks=1)
    store = GuidelineStore(config, embedder)
    store.ingest_files([("lithium.md", LITHIUM), ("insomnia.md", INSOMNIA)])
    gen, _ = store._current()
    assert gen.dense_kind == "hnsw"
    assert store.search("CBT before hypnotics", k=1, mode="dense")[0].doc_id == "insomnia-test"
    assert store.search("CBT", k=2, mode="dense", topics=["bipolar"])[0].doc_id == "lithium-test"


def test_a_second_store_object_sees_what_another_published(small_store, store_config, embedder):
    reader = GuidelineStore(store_config, embedder)
    assert "insomnia-test" not in [h.doc_id for h in reader.search("insomnia", k=3)]
    small_store.ingest_files([("insomnia.md", INSOMNIA)])
    assert reader.search("CBT for insomnia", k=1)[0].doc_id == "insomnia-test"


def test_searches_keep_working_while_another_thread_ingests(small_store):
    errors: list[Exception] = []
    results: list[int] = []
    stop = threading.Event()

    def search_loop():
        while not stop.is_set():
            try:
                results.append(len(small_store.search("lithium levels", k=2)))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

    thread = threading.Thread(target=search_loop)
    thread.start()
    try:
        for i in range(3):
            body = f"## Version\n\n- Lithium advice revision {i}."
            small_store.ingest_files([("lithium.md", guideline("lithium-test", "bipolar", body, str(i + 2)))])
    finally:
        stop.set()
        thread.join()
    assert not errors and results and min(results) == 2


def test_the_store_is_a_langchain_retriever(small_store):
    docs = GuidelineRetriever(store=small_store, k=1).invoke("naloxone for overdose")
    assert docs[0].metadata["doc_id"] == "naloxone-test"
    assert docs[0].metadata["topic"] == "opioids" and "naloxone" in docs[0].page_content
