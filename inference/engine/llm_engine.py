"""The synchronous engine: requests in, one scheduler step at a time, incremental outputs out."""

from __future__ import annotations

import logging
import os
import time

import psutil
import torch

from curbside.model_store import resolve_model

from .. import kernels
from ..config import EngineConfig
from ..errors import InvalidParameterError, PromptTooLongError
from ..layers.sampler import Sampler
from ..lora.manager import LoraManager
from ..models.loader import build_model, load_weights, read_hf_config
from ..outputs import CompletionOutput, RequestMetrics, RequestOutput
from ..quantization import weight_bytes
from ..sampling_params import SamplingParams
from .block_manager import BlockManager
from .cpu_allocator import keep_freed_memory
from .detokenizer import append_text, find_stop, streamable_length
from .model_runner import ModelRunner, kv_bytes_per_block
from .scheduler import Scheduler
from .sequence import Sequence, Status

log = logging.getLogger("curbside.engine")

DEFAULT_CPU_KV_BYTES = 2 * 1024**3


def load_tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, local_files_only=True)


class LLMEngine:
    def __init__(self, config: EngineConfig, hf_config=None, weights: dict[str, torch.Tensor] | None = None,
                 tokenizer=None):
        """The model named by config.model (a registry name, HF directory or GGUF file); or, given a transformers
        `hf_config`, a model built in memory from HF-named `weights` (random ones when None) with an optional
        tokenizer (without one, prompts are token ids and outputs carry no text)."""
        self.config = config
        if config.device == "cpu":
            torch.set_num_threads(config.threads or len(os.sched_getaffinity(0)))
        kernels.set_enabled(config.use_triton_kernels)
        if hf_config is None:
            self.model_path = resolve_model(config.model, config.data_dir / "models")
            self.tokenizer = load_tokenizer(self.model_path)
            hf = read_hf_config(self.model_path)
            weights = load_weights(self.model_path)
        else:
            self.model_path, self.tokenizer, hf = None, tokenizer, hf_config
        max_len = min(config.max_model_len or hf.max_position_embeddings, hf.max_position_embeddings)
        self.model, self.model_config = build_model(hf, weights, config.torch_dtype, config.device, max_len,
                                                    config.quantization, config.quantization_group_size, config.seed)
        self.hf_config = hf
        del weights
        self.weight_bytes = weight_bytes(self.model)
        # The KV budget is read from free memory only now, with the weights as they will be served (the
        # loader has freed the float copies of quantized layers). On CPU the allocator is told to keep
        # freed memory only after loading, so the checkpoint's temporaries went back to the OS first.
        if config.device == "cpu":
            keep_freed_memory()
        per_block = kv_bytes_per_block(self.model_config, config.block_size, config.torch_dtype,
                                       config.kv_cache_dtype)
        num_blocks = max(self._kv_budget() // per_block, 2)
        self.max_model_len = min(max_len, (num_blocks - 1) * config.block_size)
        self.block_manager = BlockManager(num_blocks, config.block_size, config.enable_prefix_caching)
        self.lora = LoraManager(self.model, config.max_loras, config.max_lora_rank) if config.enable_lora else None
        self.scheduler = Scheduler(self.block_manager, config.max_num_seqs, config.max_num_batched_tokens,
                                   config.max_loras if self.lora else 0)
        self.runner = ModelRunner(self.model, self.model_config, num_blocks, config.block_size,
                                  config.torch_dtype, config.device, config.kv_cache_dtype)
        self.runner.lora = self.lora
        if config.device.startswith("cuda") and not config.enforce_eager:
            self.runner.capture_cuda_graphs(config.max_num_seqs, self.max_model_len)
        self.sampler = Sampler(config.device, config.seed)
        self.eos_token_ids = self._eos_ids()
        self.requests: dict[str, Sequence] = {}
        self.stats = {"prompt_tokens": 0, "generation_tokens": 0, "steps": 0, "batched_tokens": 0}
        log.info("engine ready: model=%s weights=%.0f MiB (quantization=%s), blocks=%d x %d tokens "
                 "(kv_cache_dtype=%s), max_model_len=%d, device=%s, dtype=%s", self.model_path,
                 self.weight_bytes / 2**20, config.quantization or "none", num_blocks, config.block_size,
                 config.kv_cache_dtype, self.max_model_len, config.device, config.dtype)

    def _kv_budget(self) -> int:
        if self.config.kv_cache_memory:
            return int(self.config.kv_cache_memory)
        if self.config.device == "cpu":
            return min(DEFAULT_CPU_KV_BYTES, int(psutil.virtual_memory().available * 0.3))
        free, _ = torch.cuda.mem_get_info(torch.device(self.config.device))
        return int(free * self.config.gpu_memory_utilization)

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self.hf_config.eos_token_id, getattr(self.tokenizer, "eos_token_id", None)):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        gen = self.model_path / "generation_config.json" if self.model_path else None
        if gen is not None and gen.exists():
            import json

            value = json.loads(gen.read_text()).get("eos_token_id")
            ids.update([value] if isinstance(value, int) else value or [])
        return ids

    # requests ---------------------------------------------------------------------------------------

    def encode(self, prompt: str | list[int]) -> tuple[str | None, list[int]]:
        if isinstance(prompt, str):
            if not prompt:
                raise InvalidParameterError("prompt", prompt, "prompt is empty")
            if self.tokenizer is None:
                raise InvalidParameterError("prompt", prompt, "this engine has no tokenizer: pass token ids")
            text, ids = prompt, self.tokenizer(prompt)["input_ids"]
        elif isinstance(prompt, (list, tuple)) and prompt:
            text, ids = None, list(prompt)
        else:
            raise InvalidParameterError("prompt", prompt, "expected a non-empty string or list of token ids")
        vocab = self.model_config.vocab_size
        bad = [t for t in ids if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < vocab]
        if bad:
            raise InvalidParameterError("prompt", bad[:5], f"token ids must be integers in [0, {vocab})")
        return text, ids

    def make_sequence(self, request_id: str, prompt: str | list[int],
                      params: SamplingParams | None = None, lora_name: str | None = None) -> Sequence:
        """Validate and tokenize a request without touching engine state (safe from any thread)."""
        params = params or SamplingParams()
        text, ids = self.encode(prompt)
        if len(ids) + params.max_tokens > self.max_model_len:
            raise PromptTooLongError(len(ids), params.max_tokens, self.max_model_len)
        if lora_name is not None and lora_name not in self.list_loras():
            raise InvalidParameterError("lora_name", lora_name, f"no such adapter; loaded: {self.list_loras()}")
        return Sequence(request_id, ids, params, prompt=text, lora_name=lora_name)

    # adapters ---------------------------------------------------------------------------------------

    def _lora_manager(self) -> LoraManager:
        if self.lora is None:
            raise InvalidParameterError("enable_lora", False, "start the engine with enable_lora=True to serve "
                                                              "LoRA adapters")
        return self.lora

    def add_lora(self, name: str, path) -> None:
        """Register (or replace) a PEFT adapter; requests name it with `lora_name`."""
        self._lora_manager().add(name, path)

    def remove_lora(self, name: str) -> None:
        users = [s.request_id for s in self.requests.values() if s.lora_name == name]
        if users:
            raise InvalidParameterError("lora_name", name, f"{len(users)} request(s) still use this adapter")
        self._lora_manager().remove(name)

    def list_loras(self) -> list[str]:
        return self.lora.names() if self.lora else []

    def add_sequence(self, seq: Sequence) -> None:
        if seq.request_id in self.requests:
            raise InvalidParameterError("request_id", seq.request_id, "a request with this id is already running")
        self.requests[seq.request_id] = seq
        self.scheduler.add(seq)

    def add_request(self, request_id: str, prompt: str | list[int], params: SamplingParams | None = None,
                    lora_name: str | None = None) -> None:
        self.add_sequence(self.make_sequence(request_id, prompt, params, lora_name))

    def abort(self, request_id: str) -> bool:
        """Stop a request now and free its blocks; False when it is unknown or already finished."""
        seq = self.requests.pop(request_id, None)
        if seq is None:
            return False
        seq.finish_reason = "abort"
        self.scheduler.finish(seq)
        self.sampler.forget(request_id)
        return True

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished()

    @property
    def num_running(self) -> int:
        return len(self.scheduler.running)

    @property
    def num_waiting(self) -> int:
        return len(self.scheduler.waiting)

    # the loop ---------------------------------------------------------------------------------------

    def step(self) -> list[RequestOutput]:
        """Schedule, run one batched forward, sample, and report every request that made progress."""
        batch = self.scheduler.schedule()
        if not batch:
            return []
        now = time.monotonic()
        try:
            logits = self.runner.run(batch)
        except Exception:
            self.block_manager.reset_prefix_cache()  # blocks published for this step were not computed
            raise
        samplers = [s for s, n in zip(batch.seqs, batch.num_new_tokens, strict=True)
                    if s.num_computed_tokens + n == s.num_tokens]
        tokens, logprobs = self.sampler(logits, samplers) if samplers else ([], [])
        self.stats["steps"] += 1
        self.stats["batched_tokens"] += batch.num_tokens
        for seq, n in zip(batch.seqs, batch.num_new_tokens, strict=True):
            if seq.first_scheduled_time is None:
                seq.first_scheduled_time = now
            if seq.num_computed_tokens < seq.num_prompt_tokens:
                self.stats["prompt_tokens"] += min(n, seq.num_prompt_tokens - seq.num_computed_tokens)
            seq.num_computed_tokens += n
        outputs = []
        done = time.monotonic()
        for seq, token, lp in zip(samplers, tokens, logprobs, strict=True):
            self._append(seq, token, lp, done)
            outputs.append(self._output(seq))
            if seq.finished:
                self.requests.pop(seq.request_id, None)
                self.sampler.forget(seq.request_id)
        return outputs

    def _append(self, seq: Sequence, token: int, lp, now: float) -> None:
        seq.token_ids.append(token)
        self.stats["generation_tokens"] += 1
        seq.first_token_time = seq.first_token_time or now
        seq.last_token_time = now
        if lp is not None:
            seq.logprobs.append(lp)
        p = seq.params
        reason = None
        if (token in self.eos_token_ids and not p.ignore_eos) or token in p.stop_token_ids:
            reason, seq.stop_reason = "stop", (token if token in p.stop_token_ids else None)
        else:
            new = append_text(self.tokenizer, seq) if self.tokenizer is not None else ""
            if find_stop(seq, len(new)) is not None:
                reason = "stop"
        if reason is None and (seq.num_output_tokens >= p.max_tokens or seq.num_tokens >= self.max_model_len):
            reason = "length"
        if reason is not None:
            seq.finish_reason = reason
            self.scheduler.finish(seq)

    def _output(self, seq: Sequence) -> RequestOutput:
        upto = streamable_length(seq)
        delta_text = seq.output_text[seq.emitted_text_len:upto]
        seq.emitted_text_len = max(seq.emitted_text_len, upto)
        out_ids = seq.output_token_ids
        delta_ids = out_ids[seq.emitted_token_len:]
        seq.emitted_token_len = len(out_ids)
        return RequestOutput(
            request_id=seq.request_id,
            prompt=seq.prompt,
            prompt_token_ids=seq.prompt_token_ids,
            outputs=[CompletionOutput(0, seq.output_text, list(out_ids), seq.finish_reason, seq.stop_reason,
                                      list(seq.logprobs) if seq.params.logprobs is not None else None)],
            finished=seq.status is Status.FINISHED,
            metrics=RequestMetrics(seq.arrival_time, seq.first_scheduled_time, seq.first_token_time,
                                   seq.last_token_time, seq.num_cached_tokens, seq.num_preemptions),
            delta_text=delta_text,
            delta_token_ids=delta_ids,
        )
