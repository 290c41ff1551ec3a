"""Exceptions the engine raises; each names the offending parameter and value."""

from curbside.errors import CurbsideError, ModelIntegrityError, ModelNotFoundError

__all__ = ["EngineError", "InvalidParameterError", "PromptTooLongError", "ModelNotFoundError",
           "UnsupportedModelError", "ModelIntegrityError"]


class EngineError(CurbsideError):
    """Base class for errors a caller can act on."""


class InvalidParameterError(EngineError, ValueError):
    """A request or engine parameter is out of range or of the wrong kind."""

    def __init__(self, param: str, value: object, reason: str):
        self.param = param
        self.value = value
        super().__init__(f"invalid {param}={value!r}: {reason}")


class PromptTooLongError(InvalidParameterError):
    """Prompt tokens plus max_tokens exceed the model's context."""

    def __init__(self, prompt_tokens: int, max_tokens: int, limit: int):
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.limit = limit
        ValueError.__init__(
            self,
            f"prompt has {prompt_tokens} tokens and max_tokens is {max_tokens}: "
            f"{prompt_tokens + max_tokens} exceeds the model's context of {limit} tokens",
        )
        self.param = "max_tokens"
        self.value = max_tokens


class UnsupportedModelError(EngineError, ValueError):
    """The model's architecture or configuration is not one the engine implements."""
