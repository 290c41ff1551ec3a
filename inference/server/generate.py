"""/v1/chat/completions and /v1/completions: OpenAI requests to engine requests, and back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..outputs import RequestOutput
from ..sampling_params import SamplingParams
from .errors import APIError
from .protocol import ChatCompletionRequest, CompletionRequest, SamplingFields, Usage, new_id, now
from .state import ServerState


def check_serving(state: ServerState, model: str) -> str | None:
    """503 while loading or draining, 404 for a model we do not serve, 429 when the queue is full.

    Returns the LoRA adapter the request names as its model, or None for the base model.
    """
    if state.draining:
        raise APIError(503, "the server is draining for shutdown; retry on another replica")
    if not state.ready:
        raise APIError(503, "the model is still loading; retry shortly")
    adapters = state.engine.engine.list_loras()
    if model != state.config.served_model_name and model not in adapters:
        served = ", ".join(f"'{m}'" for m in [state.config.served_model_name, *adapters])
        raise APIError(404, f"the model '{model}' does not exist; this server serves {served} "
                            "(see GET /v1/models)", "model")
    # every other completion request being served that the engine is not running is waiting
    waiting = state.generating - 1 - state.engine.engine.num_running
    if waiting >= state.config.max_waiting:
        raise APIError(429, f"{waiting} requests are already waiting (limit {state.config.max_waiting}); "
                            "retry later")
    return model if model != state.config.served_model_name else None


def sampling_params(req: SamplingFields, state: ServerState, prompt_len: int, max_tokens: int | None,
                    logprobs: int | None, index: int) -> SamplingParams:
    limit = state.engine.engine.max_model_len
    if max_tokens is None:
        max_tokens = max(1, min(state.config.default_max_tokens, limit - prompt_len))
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        top_k=req.top_k if req.top_k is not None else -1,
        min_p=req.min_p or 0.0,
        repetition_penalty=req.repetition_penalty or 1.0,
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        seed=None if req.seed is None else req.seed + index,
        stop=req.stop,
        ignore_eos=req.ignore_eos,
        logprobs=logprobs,
    )


async def run_to_end(state: ServerState, prompt, params: SamplingParams, rid: str) -> RequestOutput:
    last = None
    async for out in state.engine.generate(prompt, params, request_id=rid):
        last = out
    return last


async def until_disconnect(request: Request, work: asyncio.Future):
    """Await `work`, cancelling it (and so aborting its engine requests) if the client goes away."""
    while True:
        done, _ = await asyncio.wait([work], timeout=0.25)
        if done:
            return work.result()
        if await request.is_disconnected():
            work.cancel()
            raise APIError(499, "client disconnected")


class DisconnectWatch:
    """Checks, at most every `interval` seconds, whether a streaming client has gone away. The ASGI server
    also reports disconnects, but not always before the next write; this bounds how long a dead stream can
    keep its KV blocks."""

    def __init__(self, request: Request, interval: float = 0.25):
        self.request, self.interval = request, interval
        self.last = time.monotonic()

    async def gone(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval:
            return False
        self.last = now
        return await self.request.is_disconnected()


async def merged(streams: list[AsyncIterator]) -> AsyncIterator[tuple[int, RequestOutput]]:
    """Interleave several output streams as (stream index, output); cancels them all on exit."""
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(i, stream):
        try:
            async for item in stream:
                await queue.put((i, item))
        except Exception as e:  # noqa: BLE001 - re-raised in the consumer
            await queue.put((i, e))
        finally:
            await queue.put((i, done))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    remaining = len(tasks)
    try:
        while remaining:
            i, item = await queue.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield i, item
    finally:
        for t in tasks:
            t.cancel()


async def collect_all(streams: list[AsyncIterator]) -> list[RequestOutput]:
    """The final output of every stream, in stream order."""
    outs: dict[int, RequestOutput] = {}
    async for i, out in merged(streams):
        outs[i] = out
    return [outs[i] for i in range(len(streams))]


def sse(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def usage(prompt_tokens: int, outs: list[RequestOutput]) -> dict:
    completion = sum(len(o.token_ids) for o in outs)
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion,
                 total_tokens=prompt_tokens + completion).model_dump()


def finish(reason: str | None) -> str | None:
    return {"abort": "stop"}.get(reason, reason)


# --- logprobs in the two OpenAI shapes -------------------------------------------------------------

def chat_logprobs(tokenizer, entries) -> dict | None:
    if entries is None:
        return None

    def tok(i: int) -> dict:
        text = tokenizer.decode([i])
        return {"token": text, "bytes": list(text.encode("utf-8"))}

    return {"content": [{**tok(e.token_id), "logprob": e.logprob,
                         "top_logprobs": [{**tok(t), "logprob": lp} for t, lp in e.top]} for e in entries]}


def completion_logprobs(tokenizer, entries, start_offset: int = 0) -> dict | None:
    if entries is None:
        return None
    tokens, offsets, offset = [], [], start_offset
    for e in entries:
        text = tokenizer.decode([e.token_id])
        tokens.append(text)
        offsets.append(offset)
        offset += len(text)
    return {"tokens": tokens, "token_logprobs": [e.logprob for e in entries],
            "top_logprobs": [{tokenizer.decode([t]): lp for t, lp in e.top} for e in entries],
            "text_offset": offsets}


# --- chat ------------------------------------------------------------------------------------------

async def chat_completions(req: ChatCompletionRequest, request: Request, state: ServerState):
    lora = check_serving(state, req.model)
    engine = state.engine
    tokenizer = engine.tokenizer
    messages = [{"role": m.role, "content": m.text()} for m in req.messages]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as e:  # noqa: BLE001 - template errors are the caller's to fix
        raise APIError(400, f"messages cannot be rendered with the model's chat template: {e}", "messages") from e
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    top = (req.top_logprobs or 0) if req.logprobs else None
    max_tokens = req.max_completion_tokens or req.max_tokens
    params = [sampling_params(req, state, len(ids), max_tokens, top, i) for i in range(req.n)]
    rid = new_id("chatcmpl")
    for p in params:
        engine.engine.make_sequence(rid, ids, p, lora)  # validate before any response starts
    streams = [engine.generate(ids, p, request_id=f"{rid}-{i}", lora_name=lora) for i, p in enumerate(params)]
    created = now()

    if not req.stream:
        outs = await until_disconnect(request, asyncio.ensure_future(collect_all(streams)))
        choices = [{"index": i, "message": {"role": "assistant", "content": o.text},
                    "logprobs": chat_logprobs(tokenizer, o.outputs[0].logprobs),
                    "finish_reason": finish(o.finish_reason)} for i, o in enumerate(outs)]
        return JSONResponse({"id": rid, "object": "chat.completion", "created": created, "model": req.model,
                             "choices": choices, "usage": usage(len(ids), outs)})

    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    async def events():
        base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": req.model}
        for i in range(len(streams)):
            yield sse({**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                            "logprobs": None, "finish_reason": None}]})
        finals: dict[int, RequestOutput] = {}
        sent_logprobs = [0] * len(streams)
        watch = DisconnectWatch(request)
        try:
            async for i, out in merged(streams):
                if await watch.gone():
                    return  # leaving cancels the streams, which aborts their engine requests
                entries = out.outputs[0].logprobs
                new_entries = None if entries is None else entries[sent_logprobs[i]:]
                sent_logprobs[i] = len(entries or [])
                if out.delta_text or new_entries:
                    yield sse({**base, "choices": [{"index": i, "delta": {"content": out.delta_text},
                                                    "logprobs": chat_logprobs(tokenizer, new_entries),
                                                    "finish_reason": None}]})
                if out.finished:
                    finals[i] = out
                    yield sse({**base, "choices": [{"index": i, "delta": {}, "logprobs": None,
                                                    "finish_reason": finish(out.finish_reason)}]})
        except Exception as e:  # noqa: BLE001 - a stream that already started reports errors in-band
            yield sse({"error": {"message": str(e), "type": "InternalServerError", "param": None, "code": 500}})
            return
        if include_usage:
            yield sse({**base, "choices": [], "usage": usage(len(ids), list(finals.values()))})
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


# --- completions -----------------------------------------------------------------------------------

def completion_prompts(prompt) -> list:
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(isinstance(p, int) for p in prompt):
        return [prompt]
    return list(prompt)


async def completions(req: CompletionRequest, request: Request, state: ServerState):
    lora = check_serving(state, req.model)
    if req.echo:
        raise APIError(400, "echo is not supported", "echo")
    engine = state.engine
    tokenizer = engine.tokenizer
    prompts = completion_prompts(req.prompt)
    if not prompts:
        raise APIError(400, "prompt is empty", "prompt")
    encoded = [engine.engine.encode(p)[1] for p in prompts]
    rid = new_id("cmpl")
    jobs = []
    for pi, ids in enumerate(encoded):
        for i in range(req.n):
            p = sampling_params(req, state, len(ids), req.max_tokens, req.logprobs, i)
            engine.engine.make_sequence(rid, ids, p, lora)
            jobs.append((pi * req.n + i, ids, p))
    streams = [engine.generate(ids, p, request_id=f"{rid}-{idx}", lora_name=lora) for idx, ids, p in jobs]
    prompt_tokens = sum(len(ids) for ids in encoded)
    created = now()

    if not req.stream:
        outs = await until_disconnect(request, asyncio.ensure_future(collect_all(streams)))
        choices = [{"index": i, "text": o.text, "logprobs": completion_logprobs(tokenizer, o.outputs[0].logprobs),
                    "finish_reason": finish(o.finish_reason)} for i, o in enumerate(outs)]
        return JSONResponse({"id": rid, "object": "text_completion", "created": created, "model": req.model,
                             "choices": choices, "usage": usage(prompt_tokens, outs)})

    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    async def events():
        base = {"id": rid, "object": "text_completion", "created": created, "model": req.model}
        finals: dict[int, RequestOutput] = {}
        sent = [0] * len(streams)
        offsets = [0] * len(streams)
        watch = DisconnectWatch(request)
        try:
            async for i, out in merged(streams):
                if await watch.gone():
                    return
                entries = out.outputs[0].logprobs
                new_entries = None if entries is None else entries[sent[i]:]
                sent[i] = len(entries or [])
                if out.delta_text or out.finished:
                    yield sse({**base, "choices": [{
                        "index": i, "text": out.delta_text,
                        "logprobs": completion_logprobs(tokenizer, new_entries, offsets[i]),
                        "finish_reason": finish(out.finish_reason) if out.finished else None}]})
                    offsets[i] += len(out.delta_text)
                if out.finished:
                    finals[i] = out
        except Exception as e:  # noqa: BLE001
            yield sse({"error": {"message": str(e), "type": "InternalServerError", "param": None, "code": 500}})
            return
        if include_usage:
            yield sse({**base, "choices": [], "usage": usage(prompt_tokens, list(finals.values()))})
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
