"""Guideline ingestion, chunking, embeddings and hybrid search (being built; see the README's status table)."""
