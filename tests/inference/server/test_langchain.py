"""LangChain's OpenAI integrations, unchanged, pointed at our server."""

from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from support.server import API_KEY, EMBED, MODEL


def test_chat_openai_invokes_and_streams(server):
    llm = ChatOpenAI(model=MODEL, base_url=server.base_url, api_key=API_KEY, temperature=0, max_tokens=12,
                     max_retries=0)
    answer = llm.invoke("What does PHQ stand for?")
    assert answer.content
    pieces = [chunk.content for chunk in llm.stream("What does PHQ stand for?")]
    assert len(pieces) > 2 and "".join(pieces) == answer.content


def test_openai_embeddings_embed_documents_and_queries(server):
    emb = OpenAIEmbeddings(model=EMBED, base_url=server.base_url, api_key=API_KEY,
                           check_embedding_ctx_length=False, max_retries=0)
    docs = emb.embed_documents(["lithium monitoring", "sleep hygiene", "naloxone"])
    query = emb.embed_query("lithium levels")
    assert len(docs) == 3 and len(query) == 384
    best = max(range(3), key=lambda i: sum(a * b for a, b in zip(docs[i], query, strict=True)))
    assert best == 0
