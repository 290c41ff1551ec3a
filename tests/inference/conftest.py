"""Models for the engine tests: random tiny Llama/Qwen2 checkpoints built here, and the real SmolLM2."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.models import TINY_VARIANTS, build_tiny_model


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, smollm2_path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {name: build_tiny_model(root / name, tokenizer_src=smollm2_path, seed=i, **spec)
            for i, (name, spec) in enumerate(TINY_VARIANTS.items())}


@pytest.fixture(scope="session")
def tiny_llama(tiny_models) -> Path:
    return tiny_models["llama-gqa-tied"]


