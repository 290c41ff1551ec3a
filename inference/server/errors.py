"""Errors in OpenAI's JSON shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import InvalidParameterError, ModelNotFoundError
from .protocol import ErrorResponse

TYPES = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError", 405: "MethodNotAllowedError",
         413: "RequestTooLargeError", 429: "RateLimitError", 500: "InternalServerError",
         503: "ServiceUnavailableError"}

# What /openapi.json states for every route: errors in OpenAI's shape (and never FastAPI's default 422, which
# this server does not send: validation errors are 400).
OPENAPI_RESPONSES = {
    "4XX": {"model": ErrorResponse, "description": "400 invalid parameters or malformed JSON, 401 missing or wrong "
            "API key, 404 unknown model or path, 405, 413 body too large, 429 queue full"},
    "5XX": {"model": ErrorResponse, "description": "503 while loading or draining"},
}


class APIError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


def error_response(status: int, message: str, param: str | None = None, headers: dict | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": TYPES.get(status, "APIError"), "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def _describe(errors: list[dict]) -> tuple[str, str | None]:
    parts, param = [], None
    for err in errors[:5]:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        if err.get("type") == "json_invalid":
            return f"request body is not valid JSON: {err.get('ctx', {}).get('error', err.get('msg'))}", None
        where = ".".join(loc) or "body"
        param = param or (loc[0] if loc else None)
        got = err.get("input")
        shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
        parts.append(f"{where}: {err.get('msg')} (got {shown[:80]})")
    return "; ".join(parts), param


def install(app) -> None:
    @app.exception_handler(HTTPException)
    async def _http(_: Request, e: HTTPException):
        # Starlette's own 404 (unknown path) and 405 (wrong method), in the same shape as every other error
        return error_response(e.status_code, str(e.detail), headers=e.headers)

    @app.exception_handler(APIError)
    async def _api(_: Request, e: APIError):
        return error_response(e.status, e.message, e.param)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError):
        message, param = _describe(e.errors())
        return error_response(400, message, param)

    @app.exception_handler(InvalidParameterError)
    async def _invalid(_: Request, e: InvalidParameterError):
        return error_response(400, str(e), e.param)

    @app.exception_handler(ModelNotFoundError)
    async def _missing(_: Request, e: ModelNotFoundError):
        return error_response(404, str(e), "model")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception):
        import logging

        logging.getLogger("curbside.server").exception("unhandled error")
        return error_response(500, f"internal error: {type(e).__name__}")
