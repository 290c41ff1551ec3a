"""The guideline store as a LangChain retriever, so it plugs into any LangChain chain."""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from .store import GuidelineStore, SearchHit


def hit_to_document(hit: SearchHit) -> Document:
    metadata = hit.to_dict()
    return Document(page_content=metadata.pop("text"), metadata=metadata, id=str(hit.chunk_id))


class GuidelineRetriever(BaseRetriever):
    """Hybrid search over the store; each Document's metadata carries the full citation."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: GuidelineStore
    k: int = 5
    topics: list[str] | None = None
    doc_ids: list[str] | None = None
    mode: str = "hybrid"

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.store.search(query, k=self.k, topics=self.topics, doc_ids=self.doc_ids, mode=self.mode)
        return [hit_to_document(h) for h in hits]
