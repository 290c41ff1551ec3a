"""The FastAPI application: routes, auth, body limits, in-flight tracking, health and metrics."""

from __future__ import annotations

import asyncio
import base64
import hmac
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..errors import EngineError
from . import errors, generate
from .errors import APIError, error_response
from .protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    LoadLoraAdapterRequest,
    ModelCard,
    UnloadLoraAdapterRequest,
    now,
)
from .state import ServerState

OPEN_PATHS = ("/health/live", "/health/ready", "/openapi.json")
GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions")


class Guard:
    """Pure ASGI middleware: API key, body size limit, and counting requests in flight (for draining)."""

    def __init__(self, app, state: ServerState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        cfg = self.state.config
        if cfg.api_key and not path.startswith(OPEN_PATHS):
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(given.encode(), f"Bearer {cfg.api_key}".encode()):
                resp = error_response(401, "missing or invalid API key: send 'Authorization: Bearer KEY'",
                                      headers={"WWW-Authenticate": "Bearer"})
                return await resp(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cfg.max_body_bytes:
            return await self._too_large(scope, receive, send)
        received = 0
        too_large = False

        async def limited_receive():
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cfg.max_body_bytes:
                    too_large = True
                    raise APIError(413, "request body too large")
            return message

        generating = path in GENERATION_PATHS
        self.state.enter(generating)
        try:
            await self.app(scope, limited_receive, send)
        except APIError:
            if not too_large:
                raise
            await self._too_large(scope, receive, send)
        finally:
            self.state.leave(generating)

    async def _too_large(self, scope, receive, send):
        resp = error_response(413, f"request body is larger than the limit of {self.state.config.max_body_bytes} "
                                   "bytes")
        await resp(scope, receive, send)


def _ready_engine(state: ServerState):
    if state.draining:
        raise APIError(503, "the server is draining for shutdown")
    if not state.ready:
        raise APIError(503, "the model is still loading; retry shortly")
    return state.engine.engine


def build_app(state: ServerState, load_in_background: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app):
        if load_in_background:
            threading.Thread(target=state.load, name="curbside-load", daemon=True).start()
        yield
        if state.engine is not None:
            state.engine.shutdown()
        if state.embedder is not None:
            await state.embedder.close()

    # no /docs or /redoc: their pages load Swagger/ReDoc from a CDN, and nothing here calls out;
    # /openapi.json describes the API for clients and fuzzers
    app = FastAPI(title="Curbside inference server", version="0.1.0", lifespan=lifespan,
                  responses=errors.OPENAPI_RESPONSES, docs_url=None, redoc_url=None)
    errors.install(app)
    app.add_middleware(Guard, state=state)

    @app.get("/health/live")
    async def live():
        return {"status": "live"}

    @app.get("/health/ready")
    async def ready():
        if state.draining:
            return error_response(503, "draining")
        if not state.ready:
            return error_response(503, f"model failed to load: {state.load_error}" if state.load_error
                                  else "loading")
        return {"status": "ready", "model": state.config.served_model_name}

    @app.get("/metrics")
    async def metrics():
        if state.engine is not None:
            state.metrics.refresh(state.engine.engine)
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models():
        data = []
        if state.ready:
            eng = state.engine.engine
            data.append(ModelCard(id=state.config.served_model_name, created=now(), root=str(eng.model_path),
                                  max_model_len=eng.max_model_len, quantization=eng.config.quantization,
                                  kv_cache_dtype=eng.config.kv_cache_dtype).model_dump())
            for name in eng.list_loras():
                card = ModelCard(id=name, created=now(), root=str(eng.lora.adapters[name].path),
                                 parent=state.config.served_model_name, max_model_len=eng.max_model_len)
                data.append(card.model_dump())
            if state.embedding_name:
                card = ModelCard(id=state.embedding_name, created=now(), root=state.embedding_name)
                data.append(card.model_dump(exclude={"max_model_len", "quantization", "kv_cache_dtype"}))
        return {"object": "list", "data": data}

    @app.post("/v1/load_lora_adapter")
    async def load_lora_adapter(req: LoadLoraAdapterRequest):
        engine = _ready_engine(state)
        if req.lora_name == state.config.served_model_name:
            raise APIError(400, f"'{req.lora_name}' is the base model's name", "lora_name")
        try:
            await asyncio.get_running_loop().run_in_executor(None, engine.add_lora, req.lora_name, req.lora_path)
        except (EngineError, OSError) as e:
            raise APIError(400, str(e), "lora_path") from e
        return {"status": "loaded", "lora_name": req.lora_name}

    @app.post("/v1/unload_lora_adapter")
    async def unload_lora_adapter(req: UnloadLoraAdapterRequest):
        engine = _ready_engine(state)
        try:
            engine.remove_lora(req.lora_name)
        except EngineError as e:
            status = 404 if req.lora_name not in engine.list_loras() else 409
            raise APIError(status, str(e), "lora_name") from e
        return {"status": "unloaded", "lora_name": req.lora_name}

    @app.post("/v1/chat/completions")
    async def chat(req: ChatCompletionRequest, request: Request):
        return await generate.chat_completions(req, request, state)

    @app.post("/v1/completions")
    async def complete(req: CompletionRequest, request: Request):
        return await generate.completions(req, request, state)

    @app.post("/v1/embeddings")
    async def embeddings(req: EmbeddingRequest):
        if state.draining:
            raise APIError(503, "the server is draining for shutdown")
        if not state.ready:
            raise APIError(503, "the model is still loading; retry shortly")
        if state.embedder is None:
            raise APIError(404, "no embedding model is loaded on this server", "model")
        if req.model != state.embedding_name:
            raise APIError(404, f"the embedding model '{req.model}' does not exist; this server serves "
                                f"'{state.embedding_name}'", "model")
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts or any(not isinstance(t, str) for t in texts):
            raise APIError(400, "input must be a non-empty string or list of strings (token-id input is not "
                                "supported; with LangChain set check_embedding_ctx_length=False)", "input")
        if any(not t for t in texts):
            raise APIError(400, "input contains an empty string", "input")
        batcher = state.embedder
        vectors = await batcher.embed(list(texts))
        state.metrics.embed_requests.inc()
        if req.dimensions is not None and req.dimensions != vectors.shape[1]:
            raise APIError(400, f"dimensions={req.dimensions} is not supported; this model returns "
                                f"{vectors.shape[1]}", "dimensions")
        data = []
        for i, v in enumerate(vectors):
            emb = (base64.b64encode(v.astype("<f4").tobytes()).decode() if req.encoding_format == "base64"
                   else v.tolist())
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = batcher.embedder.count_tokens(list(texts))
        return JSONResponse({"object": "list", "data": data, "model": req.model,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    return app
