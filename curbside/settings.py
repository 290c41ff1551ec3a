"""One typed settings object for every Curbside process: env vars (CURBSIDE_*) plus an optional file."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Ports, data directory, model choice and engine limits.

    Values come from, in order of precedence: explicit arguments, `CURBSIDE_*` environment variables,
    the file named by `CURBSIDE_CONFIG` (dotenv format, `CURBSIDE_KEY=value` lines), the defaults below.
    """

    model_config = SettingsConfigDict(env_prefix="CURBSIDE_", extra="ignore")

    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    model: str = "smollm2-135m-instruct"
    dtype: str = "float32"
    device: str = "auto"
    max_model_len: int | None = None
    max_num_seqs: int = Field(128, ge=1)
    # Per-step token budget of the served engine: small enough that a burst of prompts is prefilled a few
    # at a time (first tokens sooner, decodes keep flowing); the offline LLM API defaults to 2048.
    max_num_batched_tokens: int = Field(128, ge=16)
    block_size: int = Field(16, ge=1)
    kv_cache_memory: str | None = None
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    enable_prefix_caching: bool = True
    threads: int | None = None
    quantization: str | None = None
    kv_cache_dtype: str = "auto"
    # CUDA only: Triton kernels for attention/norm/rotary, and CUDA graphs of decode steps
    use_triton_kernels: bool = True
    enforce_eager: bool = False
    # multi-LoRA serving: adapters are loaded at start (lora_modules, "name=path,name=path") or at run time
    enable_lora: bool = False
    max_loras: int = Field(4, ge=1)
    max_lora_rank: int = Field(16, ge=1)
    lora_modules: str | None = None
    # serve the adapter `make tune` wrote (var/adapters/curbside-consult) and use it for consults, when its
    # model card says it beats the base model; false keeps the base model everywhere
    use_tuned_adapter: bool = True

    # the inference server
    api_key: str | None = None
    served_model_name: str | None = None
    max_waiting: int = Field(256, ge=1)
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    default_max_tokens: int = Field(1024, ge=1)
    drain_timeout_s: float = Field(30.0, ge=0)
    embedding_model: str | None = "all-minilm-l6-v2"
    embedding_max_batch: int = Field(64, ge=1)
    embedding_max_delay_ms: float = Field(5.0, ge=0)

    # the guideline store (retrieval)
    max_document_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    chunk_tokens: int = Field(192, ge=32, le=512)
    chunk_overlap_tokens: int = Field(32, ge=0)
    exact_search_max_chunks: int = Field(50_000, ge=1)
    search_candidates: int = Field(50, ge=1)
    seed_bundled_guidelines: bool = True

    # the Streamlit app
    app_host: str = "127.0.0.1"
    app_port: int = Field(8501, ge=1, le=65535)
    # where the app sends chat requests: our server by default; vLLM, NIM or Triton work the same
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_adapter: str | None = None
    llm_timeout_s: float = Field(180.0, gt=0)
    consult_max_tokens: int = Field(256, ge=16)
    session_idle_minutes: float = Field(15.0, gt=0)
    max_failed_logins: int = Field(5, ge=1)
    lockout_minutes: float = Field(15.0, gt=0)
    min_password_length: int = Field(12, ge=8)

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "guidelines"

    @property
    def app_db(self) -> Path:
        """Accounts, the audit log and consult history."""
        return self.data_dir / "app.db"

    @property
    def first_admin_password_file(self) -> Path:
        return self.data_dir / "first-admin-password.txt"

    @property
    def chat_base_url(self) -> str:
        return self.llm_base_url or f"http://{_client_host(self.host)}:{self.port}/v1"

    @property
    def chat_model(self) -> str:
        return self.llm_model or self.served_model_name or self.model


def tuned_adapter(settings: Settings) -> tuple[str, Path] | None:
    """(name, directory) of the tuned adapter to use by default, or None for the base model."""
    if not settings.use_tuned_adapter:
        return None
    from tuning.registry import default_adapter

    return default_adapter(settings.data_dir)


def _client_host(bind_host: str) -> str:
    """The address a local client dials for a server bound to `bind_host` (0.0.0.0 means any: use loopback)."""
    return "127.0.0.1" if bind_host in ("0.0.0.0", "::", "") else bind_host


def load_settings(**overrides) -> Settings:
    """Settings from the environment and the optional `CURBSIDE_CONFIG` file, with explicit overrides."""
    env_file = os.environ.get("CURBSIDE_CONFIG")
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(_env_file=env_file, **clean)  # type: ignore[call-arg]
