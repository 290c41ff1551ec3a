"""Training: answer-only loss, truncation, learning, resumable checkpoints, and adapters our engine serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tuning.encoding import IGNORE, collate, encode
from tuning.methods import ATTENTION_MLP, MethodConfig, MethodError, answer_loss, check, load_tokenizer
from tuning.train import TrainConfig, Trainer, TrainError, plot_losses

# Short sequences keep the tests fast; truncation keeps the answer, so every example still trains.
STEP = dict(batch_size=1, grad_accum=2, max_seq_len=256, seed=5)
LEARNING_RATE = {"lora": 3e-2, "prompt": 3e-1, "ia3": 3e-1}


@pytest.fixture(scope="module")
def records(small_dataset) -> list[dict]:
    splits, _ = small_dataset
    kinds = ("statement", "emergency", "no_answer", "section")
    return [next(r for r in splits["train"] if r["meta"]["kind"] == k) for k in kinds]


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    return load_tokenizer(tiny_llama)


def test_labels_cover_exactly_the_assistant_answer_and_its_end_of_turn(records, tokenizer):
    messages = records[0]["messages"]
    encoded = encode(messages, tokenizer, max_len=4096)
    answer = [t for t, label in zip(encoded.input_ids, encoded.labels, strict=True) if label != IGNORE]
    assert tokenizer.decode(answer) == messages[-1]["content"] + tokenizer.eos_token
    first = next(i for i, label in enumerate(encoded.labels) if label != IGNORE)
    assert all(label != IGNORE for label in encoded.labels[first:])  # one contiguous answer span at the end
    # the same ids the server would build for the prompt, followed by the answer
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    assert encoded.input_ids[:first] == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    assert tokenizer.decode(encoded.input_ids) == full.rstrip("\n")


def test_truncation_drops_excerpt_tokens_but_keeps_the_system_prompt_question_and_answer(records, tokenizer):
    messages = records[0]["messages"]
    whole = encode(messages, tokenizer, max_len=4096)
    cut = encode(messages, tokenizer, max_len=len(whole.input_ids) - 120)
    assert len(cut.input_ids) <= len(whole.input_ids) - 120 and cut.truncated >= 120
    assert cut.labels[-whole.answer_tokens:] == whole.labels[-whole.answer_tokens:]
    text = tokenizer.decode(cut.input_ids)
    assert messages[0]["content"] in text
    assert text.rstrip().endswith(messages[-1]["content"] + tokenizer.eos_token)
    question = messages[1]["content"].rsplit("\n\nPatient:", 1)[1]
    assert question in text


def test_the_loss_counts_only_answer_tokens(records, tokenizer, tiny_llama):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    batch = collate([encode(r["messages"], tokenizer, 1024) for r in records[:2]], tokenizer.pad_token_id)
    loss, n = answer_loss(model, batch)
    assert n == int((batch["labels"] != IGNORE).sum())
    # the reference: full logits, next-token labels, prompt and padding ignored
    position_ids = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=position_ids).logits
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                 batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE,
                                                 reduction="sum")
    assert torch.allclose(loss, expected, rtol=1e-4)
    # changing a prompt token's label has no effect: prompt labels are ignored by construction
    assert all(label == IGNORE for label in batch["labels"][0, : batch["labels"].shape[1] // 2].tolist())


@pytest.mark.parametrize("method", ["lora", "prompt", "ia3"])
def test_a_few_steps_reduce_the_loss(method, records, tiny_llama, tmp_path, models_dir):
    config = TrainConfig(method=MethodConfig(method), base_model=str(tiny_llama), max_steps=6,
                         learning_rate=LEARNING_RATE[method], checkpoint_every=100, **STEP)
    trainer = Trainer(config, records[:2], tmp_path, models_dir, progress=False)
    trainer.run()
    assert trainer.step == 6
    assert trainer.losses[-1] < trainer.losses[0] - 0.3, trainer.losses


def test_resuming_continues_the_step_count_and_matches_an_uninterrupted_run(records, tiny_llama, tmp_path, models_dir):
    config = TrainConfig(method=MethodConfig("lora", lora_r=4, lora_alpha=8), base_model=str(tiny_llama),
                         max_steps=4, learning_rate=1e-2, checkpoint_every=2, **STEP)
    straight = Trainer(config, records, tmp_path / "straight", models_dir, progress=False)
    straight.run()

    first = Trainer(config, records, tmp_path / "resumed", models_dir, progress=False)
    first.run(until=2)  # then the process "dies"; the step-2 checkpoint is on disk
    assert (tmp_path / "resumed" / "checkpoints" / "step-000002" / "state.json").exists()
    second = Trainer(config, records, tmp_path / "resumed", models_dir, progress=False)
    assert second.step == 2 and second.resumed_from == 2
    second.run()
    assert second.step == 4
    assert second.losses == pytest.approx(straight.losses, rel=1e-5)
    summary = json.loads(json.dumps(second.summary()))
    assert summary["steps"] == 4 and summary["resumed_from_step"] == 2

    other = TrainConfig(**{**config.__dict__, "learning_rate": 5e-3})
    with pytest.raises(TrainError, match="different configuration"):
        Trainer(other, records, tmp_path / "resumed", models_dir, progress=False)


def test_a_trained_lora_adapter_is_served_by_our_engine_token_for_token(records, tiny_llama, tmp_path, models_dir):
    from support.lora import peft_greedy

    from inference import LLM, SamplingParams

    # attention and MLP projections of the top layer only: partial-layer adapters must load too
    config = TrainConfig(method=MethodConfig("lora", lora_r=4, lora_alpha=8, target_modules=ATTENTION_MLP,
                                             top_layers=1),
                         base_model=str(tiny_llama), max_steps=2, learning_rate=5e-2, checkpoint_every=100, **STEP)
    trainer = Trainer(config, records[:2], tmp_path / "run", models_dir, progress=False)
    trainer.run()
    adapter = trainer.finish()
    assert (tmp_path / "run" / "loss_curve.png").stat().st_size > 1000
    saved = json.loads((adapter / "adapter_config.json").read_text())
    assert saved["peft_type"] == "LORA" and saved["bias"] == "none" and not saved.get("modules_to_save")
    assert saved["layers_to_transform"] == [1]

    prompts = [[5, 9, 300, 4000, 12000, 77], [42, 43, 44]]
    llm = LLM(tiny_llama, data_dir=tmp_path / "engine", kv_cache_memory="16MiB", enable_lora=True, max_loras=1,
              max_lora_rank=4)
    llm.add_lora("tuned", adapter)
    outs = llm.generate(prompts, SamplingParams(max_tokens=8, temperature=0, ignore_eos=True), lora_name="tuned")
    expected = peft_greedy(tiny_llama, adapter, prompts, 8)
    assert [o.token_ids for o in outs] == expected
    assert expected != peft_greedy(tiny_llama, None, prompts, 8)  # the adapter really changed the model


def test_lora_targets_the_engine_cannot_serve_are_refused():
    with pytest.raises(MethodError, match="cannot be served"):
        check(MethodConfig("lora", target_modules=("q_proj", "embed_tokens")))
    with pytest.raises(MethodError, match="unknown method"):
        check(MethodConfig("prefix"))


def test_the_loss_curve_is_a_png(tmp_path: Path):
    plot_losses([3.0, 2.5, 2.0, 1.8, 1.7, 1.5], tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
