"""Selection within a budget, the published adapter and its card, and which adapter is the default."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tuning.dataset import DataConfig
from tuning.evaluate import EvalConfig
from tuning.methods import MethodConfig
from tuning.registry import default_adapter
from tuning.select import Candidate, SelectConfig, SelectError, beats_base, choose, run_select

METRICS = ("citation_validity", "key_fact_recall", "format_compliance", "abstention_accuracy", "perplexity")


def small_select(tiny_llama: Path, budget: float, candidates) -> SelectConfig:
    return SelectConfig(budget_minutes=budget, base_model=str(tiny_llama), candidates=candidates, grad_accum=1,
                        max_seq_len=256, validation_limit=3, test_limit=3, probe_steps=1,
                        data_config=DataConfig(test_docs=1, validation_docs=1),
                        eval=EvalConfig(batch_size=3, max_new_tokens=4, max_seq_len=256))


def test_select_trains_what_fits_skips_what_does_not_and_publishes_a_card(tiny_llama, small_corpus_paths,
                                                                          minilm_dir, models_dir, tmp_path):
    candidates = (Candidate("lora-small", MethodConfig("lora", lora_r=4, lora_alpha=8), steps=2, learning_rate=1e-2),
                  Candidate("ia3-forever", MethodConfig("ia3"), steps=10**6))
    budget = 3.0
    started = time.monotonic()
    card = run_select(small_select(tiny_llama, budget, candidates), tmp_path, models_dir, small_corpus_paths,
                      minilm_dir, progress=False, log=lambda line: None)
    assert time.monotonic() - started < budget * 60

    trained, skipped = card["candidates"]
    assert trained["status"] == "trained" and trained["train_seconds"] > 0 and 0 <= trained["score"] <= 1
    assert skipped["status"] == "skipped" and "min" in skipped["reason"] and skipped["seconds_per_step"] > 0
    assert card["chosen"]["name"] == "lora-small" and card["servable"] is True
    for key in ("base_model", "data", "selection", "candidates", "validation", "test", "beats_base_on_validation"):
        assert key in card
    assert card["base_model"]["sha256"]["model.safetensors"]
    assert len(card["data"]["manifest_sha256"]) == 64
    assert all(len(s["sha256"]) == 64 for s in card["data"]["splits"].values())
    for side in ("base", "adapter"):
        assert set(METRICS) <= set(card["test"][side])
        assert all(0 <= card["test"][side][k] <= 1 for k in METRICS[:3])

    published = tmp_path / "adapters" / "curbside-consult"
    assert json.loads((published / "model_card.json").read_text()) == {k: v for k, v in card.items()
                                                                       if k != "published"}
    assert json.loads((published / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert (published / "adapter_model.safetensors").exists() and (published / "loss_curve.png").exists()
    assert not [p for p in published.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind
    expected = ("curbside-consult", published) if card["beats_base_on_validation"] else None
    assert default_adapter(tmp_path) == expected


def test_a_resumed_run_reuses_finished_candidates_and_unchanged_evaluations(tiny_llama, small_corpus_paths,
                                                                            minilm_dir, models_dir, tmp_path):
    lora = Candidate("lora-small", MethodConfig("lora", lora_r=4, lora_alpha=8), steps=2, learning_rate=1e-2)
    ia3 = Candidate("ia3-small", MethodConfig("ia3"), steps=2)
    first = run_select(small_select(tiny_llama, 3.0, (lora,)), tmp_path, models_dir, small_corpus_paths,
                       minilm_dir, progress=False, log=lambda line: None)
    work = Path(first["work_dir"])
    weights = (work / "candidates" / "lora-small" / "adapter" / "adapter_model.safetensors").read_bytes()

    lines: list[str] = []
    config = small_select(tiny_llama, 3.0, (lora, ia3))
    config.resume = work
    second = run_select(config, tmp_path, models_dir, small_corpus_paths, minilm_dir, progress=False,
                        log=lines.append)
    assert second["work_dir"] == str(work) and second["data"]["manifest_sha256"] == first["data"]["manifest_sha256"]
    again, added = second["candidates"]
    assert again["resumed_from_step"] == 2 and again["validation"]["reused"] is True
    assert again["score"] == first["candidates"][0]["score"]
    assert (work / "candidates" / "lora-small" / "adapter" / "adapter_model.safetensors").read_bytes() == weights
    assert added["status"] == "trained" and "reused" not in added["validation"]
    assert any("adapter test: unchanged" in line for line in lines) == (second["chosen"]["name"] == "lora-small")
    if added["score"] > again["score"] + 0.005:
        assert second["best_overall"]["name"] == "ia3-small" and second["chosen"]["name"] == "lora-small"

    config.resume = tmp_path / "no-such-run"
    with pytest.raises(SelectError, match="cannot resume"):
        run_select(config, tmp_path, models_dir, small_corpus_paths, minilm_dir, progress=False,
                   log=lambda line: None)


def test_nothing_fitting_the_budget_is_an_error_and_publishes_nothing(tiny_llama, small_corpus_paths, minilm_dir,
                                                                      models_dir, tmp_path):
    candidates = (Candidate("lora-forever", MethodConfig("lora", lora_r=4, lora_alpha=8), steps=10**6),)
    with pytest.raises(SelectError, match="no candidate fitted"):
        run_select(small_select(tiny_llama, 1.5, candidates), tmp_path, models_dir, small_corpus_paths, minilm_dir,
                   progress=False, log=lambda line: None)
    assert not (tmp_path / "adapters").exists()


def test_near_ties_go_to_a_servable_lora_and_beating_the_base_needs_both_key_metrics():
    results = [{"name": "ia3", "status": "trained", "score": 0.803, "method": {"method": "ia3"}},
               {"name": "lora", "status": "trained", "score": 0.800, "method": {"method": "lora"}},
               {"name": "prompt", "status": "skipped", "method": {"method": "prompt"}}]
    assert choose(results)["name"] == "lora"
    results[0]["score"] = 0.9
    assert choose(results)["name"] == "ia3"
    assert choose(results, servable_only=True)["name"] == "lora"
    assert choose(results[:1], servable_only=True) is None
    base = {"citation_validity": 0.1, "key_fact_recall": 0.3, "format_compliance": 0.0, "abstention_accuracy": 0.0}
    assert beats_base({**base, "citation_validity": 0.9, "key_fact_recall": 0.5}, base)
    assert not beats_base({**base, "citation_validity": 0.9, "key_fact_recall": 0.2}, base)


def _adapter(root: Path, peft_type: str, card: dict | None) -> Path:
    path = root / "adapters" / "curbside-consult"
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": peft_type}))
    (path / "adapter_model.safetensors").write_bytes(b"x")
    if card is not None:
        (path / "model_card.json").write_text(json.dumps(card))
    return path


@pytest.mark.parametrize("peft_type, card, served", [
    ("LORA", {"servable": True, "beats_base_on_validation": True}, True),
    ("LORA", {"servable": True, "beats_base_on_validation": False}, False),
    ("IA3", {"servable": False, "beats_base_on_validation": True}, False),
    ("PROMPT_TUNING", {"servable": True, "beats_base_on_validation": True}, False),
    ("LORA", None, False),
])
def test_the_default_adapter_is_a_servable_lora_that_beats_the_base(tmp_path, peft_type, card, served):
    path = _adapter(tmp_path, peft_type, card)
    assert default_adapter(tmp_path) == (("curbside-consult", path) if served else None)
    assert default_adapter(tmp_path / "elsewhere") is None
