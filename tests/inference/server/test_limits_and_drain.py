"""A full waiting queue answers 429; SIGTERM drains: readiness 503, in-flight work finishes, then exit."""

import asyncio
import signal
import threading
import time

import httpx
import pytest
from support.server import MODEL, start_server

from inference.server.main import InsecureBindError, check_bind


@pytest.fixture
def small_server(tmp_path):
    s = start_server(tmp_path, "--max-num-seqs", "1", "--max-waiting", "1", "--no-embeddings")
    yield s
    s.stop()


def long_body(tokens=200):
    return {"model": MODEL, "prompt": "Once upon a time", "max_tokens": tokens, "ignore_eos": True}


def test_a_full_waiting_queue_is_429(small_server):
    async def main():
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(*(client.post(small_server.base_url + "/completions", json=long_body(60))
                                          for _ in range(6)))

    responses = asyncio.run(main())
    statuses = [r.status_code for r in responses]
    assert 429 in statuses and 200 in statuses
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.json()["error"]["code"] == 429 and "waiting" in rejected.json()["error"]["message"]


def test_sigterm_drains_in_flight_requests_then_exits(small_server):
    result = {}

    def in_flight():
        result["r"] = httpx.post(small_server.base_url + "/completions", json=long_body(120), timeout=120)

    worker = threading.Thread(target=in_flight)
    worker.start()
    time.sleep(1.0)
    small_server.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    ready = httpx.get(small_server.url + "/health/ready", timeout=10)
    assert ready.status_code == 503 and ready.json()["error"]["message"] == "draining"
    refused = httpx.post(small_server.base_url + "/completions", json=long_body(5), timeout=10)
    assert refused.status_code == 503 and "draining" in refused.json()["error"]["message"]
    worker.join(timeout=120)
    assert result["r"].status_code == 200
    assert result["r"].json()["choices"][0]["finish_reason"] == "length"
    assert small_server.process.wait(timeout=30) == 0


def test_binding_beyond_loopback_needs_an_api_key():
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "key")
    with pytest.raises(InsecureBindError, match="API key"):
        check_bind("0.0.0.0", None)
