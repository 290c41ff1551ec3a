"""Sentence embeddings with Triton-style dynamic batching.

Concurrent requests queue their texts; a worker takes everything waiting (up to `max_batch_size`
texts, waiting at most `max_delay_ms` after the first) and runs one batched forward in a thread, then
hands each caller its own rows in order.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import numpy as np

from curbside.embedder import Embedder

log = logging.getLogger("curbside.embeddings")


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future


class EmbeddingBatcher:
    def __init__(self, embedder: Embedder, max_batch_size: int = 64, max_delay_ms: float = 5.0,
                 on_batch=None):
        self.embedder = embedder
        self.max_batch_size = max_batch_size
        self.max_delay = max_delay_ms / 1000
        self.on_batch = on_batch  # callable(batch_size) for metrics
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None

    async def embed(self, texts: list[str]) -> np.ndarray:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(texts, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0].texts)
            deadline = loop.time() + self.max_delay
            while size < self.max_batch_size:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
                jobs.append(job)
                size += len(job.texts)
            texts = [t for job in jobs for t in job.texts]
            try:
                vectors = await loop.run_in_executor(None, self.embedder.encode, texts)
            except Exception as e:  # noqa: BLE001 - every caller in the batch gets the error
                log.exception("embedding batch failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(e)
                continue
            if self.on_batch:
                self.on_batch(len(texts))
            row = 0
            for job in jobs:
                if not job.future.done():
                    job.future.set_result(vectors[row:row + len(job.texts)])
                row += len(job.texts)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
