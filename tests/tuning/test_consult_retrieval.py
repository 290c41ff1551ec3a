"""Consult examples' excerpts are what the consult pipeline itself retrieves, limited to one split's documents."""

from __future__ import annotations

from app.consult import retrieval_query, steering_topics
from tuning.consult_retrieval import SplitRetriever

CASE = {"patient": {"age": 44, "sex": "female"},
        "presentation": "44-year-old with four months of low mood, poor sleep and worry; still working, denies "
                        "suicidal thoughts.",
        "question": "What would you start first?",
        "instruments": {"phq9": [2, 2, 2, 1, 1, 2, 1, 1, 0]}}


def test_the_excerpts_are_the_pipelines_own_retrieval_and_never_leave_the_given_documents(
        small_corpus_paths, small_corpus, minilm_dir):
    retriever = SplitRetriever(small_corpus_paths, minilm_dir, small_corpus, k=4)
    try:
        everything = [d.doc_id for d in small_corpus]
        passages = retriever(CASE, everything)
        a = retriever.pipeline.assess(CASE)
        hits = retriever.pipeline.retrieve(retrieval_query(a.question, a.presentation, a.findings, a.instruments),
                                           steering_topics(a.findings, a.instruments, a.patient))
        assert len(passages) == 4
        assert [(p.doc_id, p.text) for p in passages] == [(h.doc_id, h.text) for h in hits]
        assert any(p.doc_id == "depression-adult" for p in passages)  # steered by the positive PHQ-9
        only = ["insomnia-cbti", "alcohol-use"]
        limited = retriever(CASE, only)
        assert limited and {p.doc_id for p in limited} <= set(only)
    finally:
        retriever.close()
