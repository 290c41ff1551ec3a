"""The asyncio face of the engine: one background thread steps the engine; each request is an async
generator of incremental RequestOutputs. Cancelling the generator (a client that went away) aborts
the request and frees its KV blocks at once."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .config import EngineConfig
from .engine.llm_engine import LLMEngine
from .engine.sequence import Sequence
from .outputs import RequestOutput
from .sampling_params import SamplingParams

log = logging.getLogger("curbside.engine")


@dataclass
class _Stream:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    finished: bool = False


class EngineDeadError(RuntimeError):
    """The engine loop failed while this request was in flight."""


class AsyncLLMEngine:
    def __init__(self, engine: LLMEngine):
        self.engine = engine
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()  # ("add", Sequence) | ("abort", id) | ("stop",)
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self.step_listeners: list = []  # callables(engine, outputs, seconds) run after each step
        self._thread = threading.Thread(target=self._loop, name="curbside-engine", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, config: EngineConfig) -> AsyncLLMEngine:
        return cls(LLMEngine(config))

    @property
    def tokenizer(self):
        return self.engine.tokenizer

    async def generate(self, prompt: str | list[int], params: SamplingParams | None = None,
                       request_id: str | None = None, lora_name: str | None = None) -> AsyncIterator[RequestOutput]:
        """Yield outputs as tokens arrive; the last one has `finished` set. Raises on invalid input."""
        request_id = request_id or uuid.uuid4().hex
        seq = self.engine.make_sequence(request_id, prompt, params, lora_name)
        stream = _Stream(asyncio.get_running_loop(), asyncio.Queue())
        with self._lock:
            if request_id in self._streams:
                raise ValueError(f"request_id {request_id!r} is already in flight")
            self._streams[request_id] = stream
        self._submit(("add", seq))
        try:
            while True:
                item = await stream.queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finished:
                    stream.finished = True
                    return
        finally:
            if not stream.finished:
                self.abort(request_id)

    def abort(self, request_id: str) -> None:
        with self._lock:
            self._streams.pop(request_id, None)
        self._submit(("abort", request_id))

    def shutdown(self) -> None:
        self._stopped = True
        self._submit(("stop",))
        self._thread.join(timeout=10)

    def _submit(self, item) -> None:
        self._inbox.put(item)
        self._wake.set()

    def _drain_inbox(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if item[0] == "add":
                seq: Sequence = item[1]
                with self._lock:
                    live = seq.request_id in self._streams
                if live:
                    try:
                        self.engine.add_sequence(seq)
                    except Exception as e:  # noqa: BLE001 - delivered to the caller
                        self._deliver(seq.request_id, e)
            elif item[0] == "abort":
                self.engine.abort(item[1])

    def _deliver(self, request_id: str, item) -> None:
        with self._lock:
            stream = self._streams.get(request_id)
            if stream is not None and (isinstance(item, BaseException) or item.finished):
                self._streams.pop(request_id, None)
        if stream is not None:
            stream.loop.call_soon_threadsafe(stream.queue.put_nowait, item)

    def _loop(self) -> None:
        import time

        while not self._stopped:
            self._drain_inbox()
            if not self.engine.has_unfinished_requests():
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                continue
            t0 = time.perf_counter()
            try:
                outputs = self.engine.step()
            except Exception as e:  # noqa: BLE001 - keep serving: fail only the requests in flight
                log.exception("engine step failed; aborting the requests in flight")
                for rid in list(self.engine.requests):
                    self.engine.abort(rid)
                    self._deliver(rid, EngineDeadError(f"engine step failed: {e}"))
                continue
            for out in outputs:
                self._deliver(out.request_id, out)
            for listener in self.step_listeners:
                listener(self.engine, outputs, time.perf_counter() - t0)
