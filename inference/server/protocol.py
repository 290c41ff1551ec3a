"""Request and response schemas of the OpenAI API subset we serve; the single source of truth for HTTP."""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OpenAIModel(BaseModel):
    # Clients send fields we do not use (user, tools, ...): accept and ignore them, as OpenAI does.
    model_config = ConfigDict(extra="ignore")


class StreamOptions(OpenAIModel):
    include_usage: bool = False


class SamplingFields(OpenAIModel):
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    # torch seeds a generator from a 64-bit integer; a larger seed used to fail the engine step, and with it
    # every request in flight. (The server adds the choice index, at most 15, to each seed.)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # extensions vLLM also accepts
    top_k: int | None = Field(None, ge=-1, le=2**31 - 1)  # beyond int64 it failed the whole engine step
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0)
    ignore_eos: bool = False


class ContentPart(OpenAIModel):
    """One part of a message's content list; only text parts are read (images and audio are ignored)."""

    type: str
    text: str | None = None


class ChatMessage(OpenAIModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False


class EmbeddingRequest(OpenAIModel):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None


class LoadLoraAdapterRequest(BaseModel):
    """POST /v1/load_lora_adapter (the names vLLM uses)."""

    lora_name: str = Field(min_length=1, max_length=128)
    lora_path: str = Field(min_length=1)


class UnloadLoraAdapterRequest(BaseModel):
    lora_name: str = Field(min_length=1, max_length=128)


class ModelCard(BaseModel):
    """One entry of GET /v1/models; the last three fields are ours (absent for the embedding model)."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "curbside"
    root: str
    parent: str | None = None
    max_model_len: int | None = None
    quantization: str | None = None  # "int8", "int4" or None for weights in the model dtype
    kv_cache_dtype: str | None = None  # "auto" (the model dtype), "int8" or "fp8"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int | str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
