"""Which tuned adapter the app and `curbside eval` use by default, and the model card that decides it."""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_ADAPTER_NAME = "curbside-consult"
CARD = "model_card.json"


def adapters_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "adapters"


def read_card(adapter_dir: Path) -> dict | None:
    path = Path(adapter_dir) / CARD
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def default_adapter(data_dir: Path, name: str = DEFAULT_ADAPTER_NAME) -> tuple[str, Path] | None:
    """(name, directory) of the adapter to serve by default, or None to use the base model.

    Only an adapter that is present in PEFT format, is a LoRA (the engine serves LoRA only), and whose card
    says it is servable and beats the base model on validation is returned.
    """
    path = adapters_dir(data_dir) / name
    card = read_card(path)
    if card is None or not (path / "adapter_model.safetensors").exists():
        return None
    try:
        config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if config.get("peft_type") != "LORA" or card.get("servable") is not True:
        return None
    if card.get("beats_base_on_validation") is not True:
        return None
    return name, path
