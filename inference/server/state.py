"""What the server holds: configuration, the engine and embedder once loaded, readiness and draining."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..config import EngineConfig
from .metrics import EngineMetrics

log = logging.getLogger("curbside.server")


@dataclass
class ServerConfig:
    engine: EngineConfig
    served_model_name: str
    api_key: str | None = None
    max_waiting: int = 256
    max_body_bytes: int = 2 * 1024 * 1024
    default_max_tokens: int = 1024
    drain_timeout_s: float = 30.0
    embedding_model: str | None = "all-minilm-l6-v2"
    embedding_max_batch: int = 64
    embedding_max_delay_ms: float = 5.0
    lora_modules: dict[str, str] = field(default_factory=dict)  # adapters loaded at start, name -> PEFT dir


@dataclass
class ServerState:
    config: ServerConfig
    engine: object | None = None  # AsyncLLMEngine once loaded
    embedder: object | None = None  # EmbeddingBatcher once loaded
    embedding_name: str | None = None
    metrics: EngineMetrics | None = None
    ready: bool = False
    draining: bool = False
    load_error: str | None = None
    in_flight: int = 0  # HTTP requests being served (draining waits for these)
    generating: int = 0  # of those, completion requests (the 429 limit counts these)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.metrics = EngineMetrics(self.config.served_model_name)

    def enter(self, generating: bool) -> None:
        with self._lock:
            self.in_flight += 1
            self.generating += generating

    def leave(self, generating: bool) -> None:
        with self._lock:
            self.in_flight -= 1
            self.generating -= generating

    def load(self) -> None:
        """Load and warm the engine and the embedder (in a background thread); then mark ready."""
        try:
            from ..async_engine import AsyncLLMEngine
            from ..engine.llm_engine import LLMEngine
            from ..sampling_params import SamplingParams

            engine = LLMEngine(self.config.engine)
            for name, path in self.config.lora_modules.items():
                engine.add_lora(name, path)
            engine.add_request("warmup", [1, 2, 3, 4], SamplingParams(max_tokens=2, temperature=0, ignore_eos=True))
            while engine.has_unfinished_requests():
                engine.step()
            cfg = self.config.engine
            self.metrics.info.labels(self.config.served_model_name, cfg.dtype, cfg.device,
                                     cfg.quantization or "none", cfg.kv_cache_dtype).set(1)
            async_engine = AsyncLLMEngine(engine)
            async_engine.step_listeners.append(self.metrics.on_step)
            self.engine = async_engine
            if self.config.embedding_model:
                self._load_embedder()
            self.ready = True
            log.info("ready: serving %s", self.config.served_model_name)
        except Exception as e:  # noqa: BLE001 - reported by /health/ready
            log.exception("model load failed")
            self.load_error = f"{type(e).__name__}: {e}"

    def _load_embedder(self) -> None:
        from curbside.embedder import Embedder

        from .embeddings import EmbeddingBatcher

        name = self.config.embedding_model
        models_dir = Path(self.config.engine.data_dir) / "models"
        device = "cuda" if self.config.engine.device.startswith("cuda") else "cpu"
        embedder = Embedder.load(name, models_dir, device)
        embedder.encode(["warm up"])
        self.embedding_name = name
        self.embedder = EmbeddingBatcher(embedder, self.config.embedding_max_batch,
                                         self.config.embedding_max_delay_ms,
                                         on_batch=self.metrics.embed_batch.observe)
