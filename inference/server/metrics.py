"""Prometheus metrics, names prefixed `curbside_` (the vLLM metric set under our prefix)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0)
ITL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5)


class EngineMetrics:
    """Every metric the server exports, in its own registry; updated from the engine thread."""

    def __init__(self, model_name: str):
        self.registry = r = CollectorRegistry()
        labels = {"model_name": model_name}
        self.running = Gauge("curbside_num_requests_running", "Requests in the running batch", registry=r)
        self.waiting = Gauge("curbside_num_requests_waiting", "Requests waiting to be scheduled", registry=r)
        self.kv_usage = Gauge("curbside_kv_cache_usage_perc", "Fraction of KV-cache blocks in use (0-1)",
                              registry=r)
        self.prefix_hit = Gauge("curbside_prefix_cache_hit_ratio",
                                "Prompt tokens served from the prefix cache / prompt tokens looked up", registry=r)
        self.prompt_tokens = Counter("curbside_prompt_tokens", "Prompt tokens computed", registry=r)
        self.generation_tokens = Counter("curbside_generation_tokens", "Tokens generated", registry=r)
        self.success = Counter("curbside_request_success", "Finished requests by finish reason",
                               ["finish_reason"], registry=r)
        self.ttft = Histogram("curbside_time_to_first_token_seconds", "Time to first token",
                              buckets=LATENCY_BUCKETS, registry=r)
        self.itl = Histogram("curbside_inter_token_latency_seconds", "Time between output tokens",
                             buckets=ITL_BUCKETS, registry=r)
        self.e2e = Histogram("curbside_e2e_request_latency_seconds", "Arrival to last token",
                             buckets=LATENCY_BUCKETS, registry=r)
        self.queue = Histogram("curbside_request_queue_time_seconds", "Arrival to first scheduled",
                               buckets=LATENCY_BUCKETS, registry=r)
        self.steps = Counter("curbside_engine_steps", "Engine steps run", registry=r)
        self.step_seqs = Histogram("curbside_engine_step_num_sequences", "Sequences advanced per engine step",
                                   buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.embed_batch = Histogram("curbside_embedding_batch_size", "Texts per batched embedding forward",
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.embed_requests = Counter("curbside_embedding_requests", "Embedding requests served", registry=r)
        self.info = Gauge("curbside_model_info", "The loaded model and its settings (value 1)",
                          ["model_name", "dtype", "device", "quantization", "kv_cache_dtype"], registry=r)
        self.labels = labels
        self._last_token: dict[str, float] = {}
        self._seen_prompt = 0
        self._seen_generation = 0

    def refresh(self, engine) -> None:
        """Gauges from the engine's current state (after each step, and at every scrape)."""
        self.running.set(engine.num_running)
        self.waiting.set(engine.num_waiting)
        bm = engine.block_manager
        self.kv_usage.set(bm.usage())
        self.prefix_hit.set(bm.prefix_hits / bm.prefix_queries if bm.prefix_queries else 0.0)

    def on_step(self, engine, outputs, seconds: float) -> None:
        """Engine step listener: gauges, token counters, per-token and per-request latencies."""
        self.steps.inc()
        self.step_seqs.observe(len(outputs) or 1)
        self.refresh(engine)
        stats = engine.stats
        self.prompt_tokens.inc(stats["prompt_tokens"] - self._seen_prompt)
        self.generation_tokens.inc(stats["generation_tokens"] - self._seen_generation)
        self._seen_prompt, self._seen_generation = stats["prompt_tokens"], stats["generation_tokens"]
        now = time.monotonic()
        for out in outputs:
            m = out.metrics
            prev = self._last_token.get(out.request_id)
            if prev is None:
                if m.first_token_time is not None:
                    self.ttft.observe(m.first_token_time - m.arrival_time)
                if m.first_scheduled_time is not None:
                    self.queue.observe(m.first_scheduled_time - m.arrival_time)
            else:
                self.itl.observe(now - prev)
            self._last_token[out.request_id] = now
            if out.finished:
                self._last_token.pop(out.request_id, None)
                self.e2e.observe(now - m.arrival_time)
                self.success.labels(out.finish_reason or "unknown").inc()
        if len(self._last_token) > len(engine.requests) + 64:  # aborted requests never finish
            for rid in [r for r in self._last_token if r not in engine.requests]:
                del self._last_token[rid]

