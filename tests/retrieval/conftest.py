"""Stores for the retrieval tests: the bundled corpus (built once) and small stores built per test."""

from __future__ import annotations

import pytest
from support.guidelines import LITHIUM, NALOXONE

from retrieval.store import GuidelineStore, StoreConfig


@pytest.fixture
def store_config(tmp_path, models_dir) -> StoreConfig:
    return StoreConfig(root=tmp_path / "store", models_dir=models_dir)


@pytest.fixture
def small_store(store_config, embedder) -> GuidelineStore:
    store = GuidelineStore(store_config, embedder)
    report = store.ingest_files([("lithium.md", LITHIUM), ("naloxone.md", NALOXONE)])
    assert [o.status for o in report.outcomes] == ["added", "added"]
    return store
