"""Fixtures for the fault tests: a small guideline store; the app's services are undone after each test."""

from __future__ import annotations

import pytest

from app.ui import services as svc
from retrieval.ingest import bundled_guideline_paths
from retrieval.store import GuidelineStore, StoreConfig

TOPICS = ("depression-adult", "suicide-risk-assessment", "insomnia-cbti")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, embedder, models_dir) -> GuidelineStore:
    """Three bundled guidelines: enough for consults to retrieve and cite, quick to embed."""
    store = GuidelineStore(StoreConfig(root=tmp_path_factory.mktemp("store"), models_dir=models_dir), embedder)
    report = store.ingest_paths([p for p in bundled_guideline_paths() if p.stem in TOPICS])
    assert not report.failed and len(store.documents()) == len(TOPICS)
    return store


@pytest.fixture
def uninstall_services():
    yield
    svc.install(None)
