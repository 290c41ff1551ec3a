"""`curbside tune ...` from the command line."""

from __future__ import annotations

import json

from curbside.cli import main


def test_tune_data_train_and_eval_from_the_command_line(tmp_path, small_corpus_paths, tiny_llama, models_dir,
                                                        capsys):
    def main_with_models(argv):  # the pulled models live in the repository's data directory; outputs go to tmp
        return main(["--data-dir", str(models_dir.parent), *argv])

    data = tmp_path / "data"
    code = main_with_models(["tune", "data", "--out", str(data), "--seed", "2", "--guidelines",
                             *map(str, small_corpus_paths)])
    out, _ = capsys.readouterr()
    assert code == 0 and "train" in out and "data sha256" in out
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 2 and manifest["splits"]["test"]["examples"] > 0

    code = main_with_models(["tune", "train", "--method", "lora", "--targets", "q_proj,lm_head", "--data", str(data),
                 "--model", str(tiny_llama)])
    _, err = capsys.readouterr()
    assert code == 2 and "cannot be served" in err

    run = tmp_path / "run"
    code = main_with_models(["tune", "train", "--method", "lora", "--rank", "2", "--steps", "1", "--grad-accum", "1",
                 "--max-seq-len", "256", "--limit", "2", "--data", str(data), "--out", str(run),
                 "--model", str(tiny_llama)])
    out, _ = capsys.readouterr()
    assert code == 0 and "trained 1 steps" in out
    assert (run / "adapter" / "adapter_config.json").exists() and (run / "loss_curve.png").exists()

    code = main_with_models(["tune", "eval", "--adapter", str(run / "adapter"), "--data", str(data), "--split",
                             "validation", "--limit", "2", "--max-new-tokens", "2", "--model", str(tiny_llama),
                             "--out", str(tmp_path / "ev")])
    out, _ = capsys.readouterr()
    assert code == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["examples"] == 2 and metrics["adapter"] == str(run / "adapter")
    assert len((tmp_path / "ev" / "predictions.jsonl").read_text().splitlines()) == 2


def test_a_bad_user_file_is_reported_with_its_line(tmp_path, capsys):
    bad = tmp_path / "mine.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "q"}]}\n')
    code = main(["--data-dir", str(tmp_path), "tune", "data", "--from-jsonl", str(bad), "--out", str(tmp_path / "o")])
    _, err = capsys.readouterr()
    assert code == 2 and f"{bad}:1: the last message must be the assistant's answer" in err


def test_select_refuses_an_unknown_candidate_naming_the_known_ones(tmp_path, capsys):
    code = main(["--data-dir", str(tmp_path), "tune", "select", "--budget-minutes", "1",
                 "--candidates", "lora-r8-attn-long,lora-r99"])
    _, err = capsys.readouterr()
    assert code == 2 and "lora-r99" in err and "prompt-tuning-20" in err
    assert not (tmp_path / "tuning").exists()  # refused before any work


def test_candidates_are_taken_in_the_order_named():
    from tuning.select import DEFAULT_CANDIDATES, candidates_named

    assert [c.name for c in candidates_named("ia3, lora-r8-attn-long")] == ["ia3", "lora-r8-attn-long"]
    assert candidates_named(None) == candidates_named("") == DEFAULT_CANDIDATES
