"""The three tuning methods (PEFT LoRA, prompt tuning, IA3), the base model, and one forward pass for all.

`forward` is the single place that runs a model: for prompt tuning it prepends the learned virtual-token
embeddings itself (instead of PEFT's wrapper), so training, scoring and cached greedy decoding handle all
three methods, and the base model, the same way. Position ids always skip left padding.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

METHODS = ("lora", "prompt", "ia3")
DEFAULT_LEARNING_RATE = {"lora": 2e-3, "prompt": 3e-2, "ia3": 2e-2}
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
ATTENTION_MLP = ATTENTION + ("gate_proj", "up_proj", "down_proj")
PROMPT_INIT_TEXT = "Answer only from the numbered guideline excerpts and cite each excerpt you use like [1]."


class MethodError(ValueError):
    """A tuning configuration that cannot be trained, or whose adapter our engine could never serve."""


@dataclass(frozen=True)
class MethodConfig:
    method: str = "lora"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ATTENTION
    use_rslora: bool = False
    # Adapt only the top N transformer layers (None: all). Backpropagation then stops at the lowest adapted
    # layer, so a step costs about (1 + 2N/L)/3 of an all-layer step: the CPU's main lever.
    top_layers: int | None = None
    num_virtual_tokens: int = 20
    prompt_init_text: str | None = PROMPT_INIT_TEXT
    ia3_target_modules: tuple[str, ...] = ("k_proj", "v_proj", "down_proj")
    ia3_feedforward_modules: tuple[str, ...] = ("down_proj",)

    def to_dict(self) -> dict:
        d = asdict(self)
        keep = {"lora": ("lora_r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "top_layers"),
                "prompt": ("num_virtual_tokens", "prompt_init_text"),
                "ia3": ("ia3_target_modules", "ia3_feedforward_modules", "top_layers")}[self.method]
        return {"method": self.method, **{k: list(d[k]) if isinstance(d[k], tuple) else d[k] for k in keep}}


def servable_targets() -> frozenset[str]:
    """The projections our engine's LoRA loader accepts (inference/lora/adapter.py)."""
    from inference.lora.adapter import SUPPORTED_TARGETS

    return frozenset(SUPPORTED_TARGETS)


def check(config: MethodConfig) -> None:
    if config.method not in METHODS:
        raise MethodError(f"unknown method {config.method!r}; use one of {', '.join(METHODS)}")
    if config.method == "lora":
        unknown = sorted(set(config.target_modules) - servable_targets())
        if unknown or not config.target_modules:
            raise MethodError(f"LoRA target modules {unknown or '[]'} cannot be served by our engine; "
                              f"choose from {sorted(servable_targets())}")
        if config.lora_r < 1:
            raise MethodError(f"LoRA rank must be at least 1, got {config.lora_r}")
        if not 0 <= config.lora_dropout < 1:
            raise MethodError(f"LoRA dropout must be in [0, 1), got {config.lora_dropout}")
    if config.method == "prompt" and config.num_virtual_tokens < 1:
        raise MethodError(f"prompt tuning needs at least 1 virtual token, got {config.num_virtual_tokens}")
    if config.method == "ia3" and not set(config.ia3_feedforward_modules) <= set(config.ia3_target_modules):
        raise MethodError("IA3 feedforward modules must be among its target modules")


def peft_config(config: MethodConfig, tokenizer_path: Path, num_layers: int | None = None):
    from peft import IA3Config, LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType

    check(config)
    layers = {}
    if config.top_layers and num_layers:
        layers = {"layers_to_transform": list(range(max(0, num_layers - config.top_layers), num_layers)),
                  "layers_pattern": "layers"}
    if config.method == "lora":
        # bias "none", no modules_to_save, no DoRA: the engine refuses adapters with any of them
        return LoraConfig(task_type=TaskType.CAUSAL_LM, r=config.lora_r, lora_alpha=config.lora_alpha,
                          lora_dropout=config.lora_dropout, target_modules=list(config.target_modules),
                          bias="none", use_rslora=config.use_rslora, **layers)
    if config.method == "prompt":
        if config.prompt_init_text:
            return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens,
                                      prompt_tuning_init=PromptTuningInit.TEXT,
                                      prompt_tuning_init_text=config.prompt_init_text,
                                      tokenizer_name_or_path=str(tokenizer_path))
        return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens)
    return IA3Config(task_type=TaskType.CAUSAL_LM, target_modules=list(config.ia3_target_modules),
                     feedforward_modules=list(config.ia3_feedforward_modules), **layers)


# --- base model and device -------------------------------------------------------------------------------


def auto_threads() -> int:
    """Torch threads for a shared machine: the cores the 1-minute load average leaves idle, at least one.

    On a busy machine a second OpenMP thread mostly waits for a descheduled sibling: measured on the 2-core
    VM under a load of about 4, one thread ran a LoRA step 3x faster and a decode step 7x faster than two.
    """
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores
    return max(1, min(cores, cores - int(load)))


def set_threads(threads: int | None = None) -> int:
    """Use `threads` torch threads (None: auto_threads()); returns the number set."""
    n = threads or auto_threads()
    torch.set_num_threads(n)
    return n


def select_device(device: str = "auto") -> tuple[torch.device, torch.dtype]:
    """CUDA in bfloat16 when present (or asked for), else the CPU in float32."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    return dev, (torch.bfloat16 if dev.type == "cuda" else torch.float32)


def resolve_base(model: str, models_dir: Path) -> Path:
    """An HF-format directory for a registry name (the default model), a directory or a GGUF file."""
    from curbside.model_store import resolve_model

    return resolve_model(model, models_dir)


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base(path: Path, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    model.config.use_cache = False
    return model.to(device)


def attach(base, config: MethodConfig, tokenizer_path: Path):
    """A fresh trainable PEFT model around `base` (only the adapter's parameters require gradients)."""
    from peft import get_peft_model

    return get_peft_model(base, peft_config(config, tokenizer_path, base.config.num_hidden_layers))


def load_adapter(base, adapter_dir: Path):
    from peft import PeftModel

    return PeftModel.from_pretrained(base, str(adapter_dir))


# --- the forward pass ------------------------------------------------------------------------------------


def virtual_tokens(model) -> int:
    from peft import PeftModel

    if isinstance(model, PeftModel) and model.active_peft_config.is_prompt_learning:
        return int(model.active_peft_config.num_virtual_tokens)
    return 0


def causal_lm(model):
    """The module that runs the transformer: for LoRA/IA3 it holds the injected adapter layers."""
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


def forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int = 0,
            cache=None, use_cache: bool = False):
    """Logits for the last `logits_to_keep` positions (0: all); shapes [B, T] in, [B, keep, vocab] out.

    `attention_mask` covers the cached tokens plus `input_ids`, never the virtual tokens of prompt tuning,
    which are prepended here on the first (uncached) call and counted in the mask from then on.
    """
    lm = causal_lm(model)
    n_virtual = virtual_tokens(model)
    batch = input_ids.shape[0]
    if n_virtual:
        attention_mask = torch.cat([attention_mask.new_ones(batch, n_virtual), attention_mask], dim=1)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)[:, -input_ids.shape[1]:]
    kwargs = dict(attention_mask=attention_mask, position_ids=position_ids, cache=cache, use_cache=use_cache,
                  logits_to_keep=logits_to_keep)
    if n_virtual and (cache is None or cache.get_seq_length() == 0):
        embeds = lm.get_input_embeddings()(input_ids)
        prompts = model.get_prompt(batch_size=batch).to(embeds.dtype)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        kwargs["position_ids"] = position_ids
        return lm(inputs_embeds=torch.cat([prompts, embeds], dim=1), **kwargs)
    return lm(input_ids=input_ids, **kwargs)


def answer_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the labelled (assistant) tokens only, and how many there were."""
    labels = batch["labels"]
    labelled = (labels != -100).any(dim=0).nonzero()
    if not len(labelled):
        return labels.new_zeros((), dtype=torch.float32), 0
    width = labels.shape[1]
    keep = width - int(labelled[0]) + 1  # from the position that predicts the first answer token
    logits = forward(model, batch["input_ids"], batch["attention_mask"], logits_to_keep=keep).logits
    targets = labels[:, width - keep + 1:]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                             targets.reshape(-1), ignore_index=-100, reduction="sum")
    return loss, int((targets != -100).sum())
