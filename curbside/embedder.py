"""Sentence embeddings with all-MiniLM-L6-v2 (or any sentence-transformers directory), loaded offline.

Shared by the retrieval store (documents and queries) and the inference server's /v1/embeddings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .model_store import REGISTRY, installed_path, pull


def resolve_embedding_model(name: str, models_dir: Path) -> Path:
    """A registry name (pulled on first use, sha256-checked) or a local sentence-transformers directory."""
    if name not in REGISTRY:
        return Path(name)
    path = installed_path(name, models_dir)
    if path is None or not path.exists():
        path = pull(name, models_dir)
    return path


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Embedder:
    """Normalised sentence embeddings; inner product between two of them is their cosine similarity."""

    def __init__(self, path: Path, device: str | None = None):
        from sentence_transformers import SentenceTransformer

        self.path = Path(path)
        self.device = device or default_device()
        self.model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        self.tokenizer = self.model.tokenizer
        self.dimensions = self.model.get_embedding_dimension()
        self.max_seq_length = self.model.max_seq_length

    @classmethod
    def load(cls, name: str, models_dir: Path, device: str | None = None) -> Embedder:
        return cls(resolve_embedding_model(name, models_dir), device)

    def count_tokens(self, texts: list[str]) -> int:
        return sum(len(ids) for ids in self.tokenizer(texts)["input_ids"])

    def encode(self, texts: list[str], batch_size: int | None = None, progress: bool = False) -> np.ndarray:
        """Normalised embeddings [len(texts), dimensions] as float32."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return self.model.encode(texts, batch_size=batch_size or max(len(texts), 1), normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=progress).astype(np.float32)
