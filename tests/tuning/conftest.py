"""Fixtures for the tuning tests: a tiny random Llama with the real SmolLM2 tokenizer, and a small corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

# A handful of bundled guidelines: every flagged vignette in the seed file has its topic among them or is skipped.
SMALL_CORPUS = ("alcohol-use", "anxiety-gad", "bipolar-disorder", "depression-adult", "insomnia-cbti",
                "suicide-risk-assessment")


def build_tiny_llama(out: Path, tokenizer_src: Path, seed: int = 0) -> Path:
    """A random 2-layer Llama whose vocabulary fits the real tokenizer (so real prompts can be encoded)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_src)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id,
                         rms_norm_eps=1e-5, rope_theta=10000.0, initializer_range=0.2)
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    for f in Path(tokenizer_src).iterdir():
        if f.name.startswith("tokenizer") or f.name.endswith(".jinja") or f.name == "special_tokens_map.json":
            shutil.copy(f, out / f.name)
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, smollm2_path) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model", smollm2_path)


@pytest.fixture(scope="session")
def minilm_dir(models_dir) -> Path:
    from tuning.corpus import embedder_tokenizer_dir

    return embedder_tokenizer_dir(models_dir)


@pytest.fixture(scope="session")
def small_corpus_paths() -> list[Path]:
    from retrieval.ingest import bundled_guideline_paths

    return [p for p in bundled_guideline_paths() if p.stem in SMALL_CORPUS]


@pytest.fixture(scope="session")
def small_corpus(small_corpus_paths, minilm_dir):
    from tuning.corpus import load_corpus

    return load_corpus(small_corpus_paths, minilm_dir)


@pytest.fixture(scope="session")
def small_config():
    from tuning.dataset import DataConfig

    return DataConfig(seed=3, test_docs=1, validation_docs=1)


@pytest.fixture(scope="session")
def small_dataset(small_corpus, small_config):
    from tuning.dataset import build_dataset, load_seed_cases

    return build_dataset(small_corpus, load_seed_cases(), small_config)
