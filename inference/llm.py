"""The offline Python API, shaped like vLLM's: `LLM(model=...).generate(prompts, params)`."""

from __future__ import annotations

import itertools
from collections.abc import Sequence as Seq
from pathlib import Path

from tqdm import tqdm

from .config import EngineConfig
from .engine.llm_engine import LLMEngine
from .outputs import RequestOutput
from .sampling_params import SamplingParams


class LLM:
    """Load a model (the embedded default when `model` is None) and generate for many prompts at once.

    Keyword arguments are EngineConfig fields: dtype, device, max_num_seqs, max_num_batched_tokens,
    block_size, kv_cache_memory, enable_prefix_caching, max_model_len, data_dir, threads, seed,
    quantization ("int8" or "int4" weights), quantization_group_size, kv_cache_dtype ("auto", "int8", "fp8"),
    use_triton_kernels and enforce_eager (CUDA only: the Triton kernels, and CUDA graphs of decode steps).
    """

    def __init__(self, model: str | Path | None = None, **kwargs):
        self.engine = LLMEngine(EngineConfig(model=model, **kwargs))
        self._ids = itertools.count()

    @classmethod
    def from_hf_config(cls, hf_config, weights: dict | None = None, tokenizer=None, **kwargs) -> LLM:
        """An LLM over a model built in memory from a transformers config and HF-named weights (random ones
        when None: benchmarks, GPU checks); without a tokenizer, prompts are token ids and outputs carry no text.
        Keyword arguments are EngineConfig fields."""
        llm = cls.__new__(cls)
        llm.engine = LLMEngine(EngineConfig(**kwargs), hf_config, weights, tokenizer)
        llm._ids = itertools.count()
        return llm

    @property
    def tokenizer(self):
        return self.engine.tokenizer

    def generate(self, prompts: str | list[int] | Seq[str | list[int]],
                 sampling_params: SamplingParams | Seq[SamplingParams] | None = None,
                 use_tqdm: bool = False, lora_name: str | None | Seq[str | None] = None) -> list[RequestOutput]:
        """Outputs in prompt order; prompts are strings or lists of token ids.

        `lora_name` names a loaded adapter for every prompt, or gives one name (or None) per prompt.
        """
        if isinstance(prompts, str) or (isinstance(prompts, list) and prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        params = sampling_params or SamplingParams()
        params_list = list(params) if isinstance(params, Seq) else [params] * len(prompts)
        if len(params_list) != len(prompts):
            raise ValueError(f"got {len(params_list)} sampling params for {len(prompts)} prompts")
        loras = list(lora_name) if isinstance(lora_name, Seq) and not isinstance(lora_name, str) \
            else [lora_name] * len(prompts)
        if len(loras) != len(prompts):
            raise ValueError(f"got {len(loras)} lora names for {len(prompts)} prompts")
        ids = []
        try:
            for prompt, p, lora in zip(prompts, params_list, loras, strict=True):
                rid = f"offline-{next(self._ids)}"
                self.engine.add_request(rid, prompt, p, lora)
                ids.append(rid)
        except Exception:
            for rid in ids:
                self.engine.abort(rid)
            raise
        return self._run(ids, use_tqdm)

    def add_lora(self, name: str, path) -> None:
        """Load a PEFT LoRA adapter (directory with adapter_config.json) under a name."""
        self.engine.add_lora(name, path)

    def remove_lora(self, name: str) -> None:
        self.engine.remove_lora(name)

    def list_loras(self) -> list[str]:
        return self.engine.list_loras()

    def chat(self, messages: list[dict] | list[list[dict]], sampling_params=None,
             use_tqdm: bool = False) -> list[RequestOutput]:
        """Apply the model's chat template to each conversation, then generate."""
        conversations = [messages] if messages and isinstance(messages[0], dict) else messages
        prompts = [self.engine.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                   for c in conversations]
        token_ids = [self.engine.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        return self.generate(token_ids, sampling_params, use_tqdm)

    def _run(self, ids: list[str], use_tqdm: bool) -> list[RequestOutput]:
        final: dict[str, RequestOutput] = {}
        bar = tqdm(total=len(ids), desc="generate", disable=not use_tqdm)
        while len(final) < len(ids):
            for out in self.engine.step():
                if out.finished:
                    final[out.request_id] = out
                    bar.update(1)
        bar.close()
        return [final[i] for i in ids]
