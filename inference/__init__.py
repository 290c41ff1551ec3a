"""Curbside's LLM inference engine: paged KV cache, continuous batching, prefix caching, streaming."""

from .async_engine import AsyncLLMEngine
from .config import EngineConfig
from .errors import (
    EngineError,
    InvalidParameterError,
    ModelNotFoundError,
    PromptTooLongError,
    UnsupportedModelError,
)
from .llm import LLM
from .outputs import CompletionOutput, RequestOutput
from .sampling_params import SamplingParams

__all__ = [
    "LLM", "AsyncLLMEngine", "EngineConfig", "SamplingParams", "RequestOutput", "CompletionOutput",
    "EngineError", "InvalidParameterError", "PromptTooLongError", "ModelNotFoundError", "UnsupportedModelError",
]
