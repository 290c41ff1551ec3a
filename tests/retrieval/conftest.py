"""Stores for the retrieval tests: the bundled corpus (built once) and small stores built per test."""

from __future__ import annotations

import pytest
from support.guidelines import LITHIUM, NALOXONE

from retrieval.store import GuidelineStore, StoreConfig


@pytest.fixture(scope="session")
def bundled_store(tmp_path_factory, embedder, models_dir) -> GuidelineStore:
    """The bundled guideline corpus, ingested once for every read-only test."""
    store = GuidelineStore(StoreConfig(root=tmp_path_factory.mktemp("bundled"), models_dir=models_dir), embedder)
    report = store.seed_bundled()
    assert not report.failed, report.failed
    return store


@pytest.fixture
def store_config(tmp_path, models_dir) -> StoreConfig:
    return StoreConfig(root=tmp_path / "store", models_dir=models_dir)


@pytest.fixture
def small_store(store_config, embedder) -> GuidelineStore:
    store = GuidelineStore(store_config, embedder)
    report = store.ingest_files([("lithium.md", LITHIUM), ("naloxone.md", NALOXONE)])
    assert [o.status for o in report.outcomes] == ["added", "added"]
    return store
