"""What the admin pages ask the inference server: health, Prometheus metrics, served models and adapters.

Only the OpenAI-compatible HTTP surface and the health/metrics endpoints are used, never engine internals;
against vLLM, NIM or Triton the adapter calls answer with that server's own error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from curbside.errors import CurbsideError


class EngineUnavailable(CurbsideError):
    """The server could not be reached or refused the request; the message says which and why."""


@dataclass(frozen=True)
class EngineSnapshot:
    """One reading of the server's metrics (time in seconds since the epoch)."""

    at: float
    running: float
    waiting: float
    kv_cache_usage: float
    prompt_tokens: float
    generation_tokens: float
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ServedModel:
    id: str
    parent: str | None
    root: str | None


def _totals(text: str) -> dict[str, float]:
    """Sample name → value, summed over label sets (one server has one label set for these)."""
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def _info_labels(text: str) -> dict:
    for family in text_string_to_metric_families(text):
        if family.name == "curbside_model_info":
            for sample in family.samples:
                return dict(sample.labels)
    return {}


def tokens_per_second(earlier: EngineSnapshot, later: EngineSnapshot) -> float:
    """Generated tokens per second between two readings."""
    dt = later.at - earlier.at
    return max(0.0, later.generation_tokens - earlier.generation_tokens) / dt if dt > 0 else 0.0


class EngineClient:
    """A thin client for one server: `base_url` is the OpenAI base (…/v1), as the consult pipeline uses."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.root = self.base_url.removesuffix("/v1")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(headers=headers, timeout=timeout_s)

    def _request(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.HTTPError as e:
            raise EngineUnavailable(f"the inference server at {self.root} is not reachable: "
                                    f"{type(e).__name__}: {e}") from e

    @staticmethod
    def _error(resp: httpx.Response) -> str:
        try:
            return resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            return resp.text[:300] or resp.reason_phrase

    def health(self) -> tuple[bool, str]:
        """(ready, what the server said): ready means the model is loaded and requests are accepted."""
        try:
            resp = self._request("GET", f"{self.root}/health/ready")
        except EngineUnavailable as e:
            return False, str(e)
        if resp.status_code == 200:
            return True, f"ready: {resp.json().get('model', '')}"
        return False, f"not ready ({resp.status_code}): {self._error(resp)}"

    def snapshot(self) -> EngineSnapshot:
        resp = self._request("GET", f"{self.root}/metrics")
        if resp.status_code != 200:
            raise EngineUnavailable(f"GET /metrics answered {resp.status_code}: {self._error(resp)}")
        t = _totals(resp.text)
        return EngineSnapshot(
            at=time.time(),
            running=t.get("curbside_num_requests_running", 0.0),
            waiting=t.get("curbside_num_requests_waiting", 0.0),
            kv_cache_usage=t.get("curbside_kv_cache_usage_perc", 0.0),
            prompt_tokens=t.get("curbside_prompt_tokens_total", 0.0),
            generation_tokens=t.get("curbside_generation_tokens_total", 0.0),
            info=_info_labels(resp.text),
        )

    def models(self) -> list[ServedModel]:
        resp = self._request("GET", f"{self.base_url}/models")
        if resp.status_code != 200:
            raise EngineUnavailable(f"GET /v1/models answered {resp.status_code}: {self._error(resp)}")
        return [ServedModel(m["id"], m.get("parent"), m.get("root")) for m in resp.json().get("data", [])]

    def load_adapter(self, name: str, path: str) -> None:
        resp = self._request("POST", f"{self.base_url}/load_lora_adapter", json={"lora_name": name, "lora_path": path})
        if resp.status_code != 200:
            raise EngineUnavailable(f"loading adapter '{name}' failed: {self._error(resp)}")

    def unload_adapter(self, name: str) -> None:
        resp = self._request("POST", f"{self.base_url}/unload_lora_adapter", json={"lora_name": name})
        if resp.status_code != 200:
            raise EngineUnavailable(f"unloading adapter '{name}' failed: {self._error(resp)}")

    def close(self) -> None:
        self._http.close()
