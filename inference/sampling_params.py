"""Per-request sampling parameters, validated at construction."""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import InvalidParameterError


@dataclass
class SamplingParams:
    """How to pick tokens for one request (vLLM's names and meanings).

    temperature 0 means greedy. `top_k` -1 (or 0) disables top-k; `top_p` 1 and `min_p` 0 disable those.
    `repetition_penalty` follows HF (divides positive logits of seen tokens); `presence_penalty` and
    `frequency_penalty` follow OpenAI (subtracted per generated occurrence). `logprobs` N returns the
    sampled token's log-probability and the top N alternatives per position.
    """

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: list[str] | str | None = None
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    logprobs: int | None = None
    skip_special_tokens: bool = True
    include_stop_str_in_output: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = [s for s in (self.stop or [])]
        self.stop_token_ids = list(self.stop_token_ids or [])
        if not isinstance(self.max_tokens, int) or isinstance(self.max_tokens, bool) or self.max_tokens < 1:
            raise InvalidParameterError("max_tokens", self.max_tokens, "must be an integer >= 1")
        if not isinstance(self.temperature, (int, float)) or self.temperature < 0:
            raise InvalidParameterError("temperature", self.temperature, "must be >= 0")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise InvalidParameterError("top_p", self.top_p, "must be in (0, 1]")
        if not isinstance(self.top_k, int) or (self.top_k < 1 and self.top_k not in (0, -1)):
            raise InvalidParameterError("top_k", self.top_k, "must be -1 (disabled) or >= 1")
        if not 0 <= self.min_p <= 1:
            raise InvalidParameterError("min_p", self.min_p, "must be in [0, 1]")
        if self.repetition_penalty <= 0:
            raise InvalidParameterError("repetition_penalty", self.repetition_penalty, "must be > 0")
        for name in ("presence_penalty", "frequency_penalty"):
            if not -2 <= getattr(self, name) <= 2:
                raise InvalidParameterError(name, getattr(self, name), "must be in [-2, 2]")
        if self.logprobs is not None and not 0 <= self.logprobs <= 20:
            raise InvalidParameterError("logprobs", self.logprobs, "must be in [0, 20]")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise InvalidParameterError("stop", self.stop, "stop strings must be non-empty strings")
        if self.top_k == 0:
            self.top_k = -1

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def uses_penalties(self) -> bool:
        return (self.repetition_penalty != 1.0 or self.presence_penalty != 0.0
                or self.frequency_penalty != 0.0)
