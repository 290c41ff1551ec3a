"""Schemathesis fuzzes the real server from its own /openapi.json: valid and invalid bodies for every operation.

No request may get a 5xx or hang (60 s per request), every error is OpenAI's {"error": {"message", "type",
"param", "code"}} with code equal to the status, and every stream ends with `data: [DONE]`. Examples are
derandomized, so a run is repeatable; `tests/fuzz/fuzz_openapi.py` runs the same checks for longer.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from schemathesis import GenerationMode
from support.fuzz import MAX_TOKENS, MODEL, error_shape_problem, fuzz, load_schema, operations, stream_problem
from support.server import API_KEY, start_server

EXAMPLES = 20  # per operation and mode
GENERATING_EXAMPLES = 12  # valid completion requests generate tokens: the slow part on a CPU
OPERATIONS = [
    "GET /health/live", "GET /health/ready", "GET /metrics", "GET /v1/models",
    "POST /v1/chat/completions", "POST /v1/completions", "POST /v1/embeddings",
    "POST /v1/load_lora_adapter", "POST /v1/unload_lora_adapter",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("fuzz"), api_key=API_KEY,
                     env={"CURBSIDE_DEFAULT_MAX_TOKENS": str(MAX_TOKENS)})
    yield s
    s.stop()


def test_the_schema_lists_every_operation_and_documents_errors_in_openai_shape(server):
    schema = load_schema(server.url, API_KEY)
    assert sorted(f"{op.method.upper()} {op.path}" for op in operations(schema)) == sorted(OPERATIONS)
    raw = schema.raw_schema
    assert "HTTPValidationError" not in raw["components"]["schemas"]  # FastAPI's 422: never sent
    for path, methods in raw["paths"].items():
        for method, op in methods.items():
            assert "422" not in op["responses"], f"{method} {path}"
            assert op["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"].endswith(
                "/ErrorResponse")


def test_streams_are_read_to_their_end_so_the_done_check_sees_it(server):
    schema = load_schema(server.url, API_KEY)
    case = schema["/v1/chat/completions"]["POST"].Case(body={
        "model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16, "n": 2, "stream": True,
        "ignore_eos": True})
    r = case.call(base_url=server.url, headers=server.headers(), timeout=60)
    assert r.status_code == 200 and not r.stream_cut_short
    assert r.content.count(b"data: ") > 20  # beyond schemathesis's default of 20 events per stream
    assert stream_problem(r.content) is None


CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS if op.startswith("POST")]  # a GET has nothing to break


@pytest.mark.parametrize("operation, mode", CASES, ids=[f"{op}-{m.value}" for op, m in CASES])
def test_generated_requests_get_no_5xx_no_hang_and_only_openai_shaped_errors(server, operation, mode):
    generating = mode is GenerationMode.POSITIVE and operation.endswith("completions")
    stats = fuzz(server.url, API_KEY, GENERATING_EXAMPLES if generating else EXAMPLES, timeout_s=60,
                 only=[operation], modes=[mode])
    assert stats.requests >= 1
    assert not stats.failures, "\n".join(str(f) for f in stats.failures)
    if mode is GenerationMode.POSITIVE and operation in ("POST /v1/chat/completions", "POST /v1/embeddings"):
        assert stats.statuses[200] >= 3, f"too few requests reached the engine: {dict(stats.statuses)}"
    if operation == "GET /v1/models":  # the key is sent: the operation itself answered
        assert stats.statuses[200] == stats.requests


def test_the_server_survived_the_fuzzing(server):
    r = httpx.post(server.base_url + "/chat/completions", headers=server.headers(), timeout=60,
                   json={"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Hi"}],
                         "max_tokens": 4})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize("change, param", [
    ({"seed": 2**64}, "seed"),  # used to fail the engine step: a 500 for it and every request in flight
    ({"top_k": 2**70}, "top_k"),  # the same
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}, "messages"),  # was a 500
])
def test_requests_that_broke_the_server_are_400s_and_disturb_no_other_request(server, change, param):
    chat = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Count to ten."}],
            "max_tokens": 24, "ignore_eos": True, "temperature": 1.0}
    done = {}
    other = threading.Thread(target=lambda: done.setdefault("r", httpx.post(
        server.base_url + "/chat/completions", json=chat, headers=server.headers(), timeout=120)))
    other.start()
    time.sleep(1.0)  # in flight when the bad request arrives
    r = httpx.post(server.base_url + "/chat/completions", json={**chat, **change}, headers=server.headers(),
                   timeout=60)
    other.join(timeout=120)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    assert error_shape_problem(400, r.content) is None
    assert done["r"].status_code == 200 and done["r"].json()["choices"][0]["finish_reason"] == "length"


def test_unknown_paths_and_methods_answer_in_openai_shape(server):
    for r, status in [(httpx.get(server.url + "/v1/nothing", headers=server.headers(), timeout=30), 404),
                      (httpx.put(server.base_url + "/models", headers=server.headers(), timeout=30), 405)]:
        assert r.status_code == status and error_shape_problem(status, r.content) is None, r.text
