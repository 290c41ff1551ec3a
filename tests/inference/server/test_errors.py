"""Every error status, from real HTTP requests, in OpenAI's error shape with an actionable message."""

import httpx
import pytest
from support.server import MODEL


def post(server, path, json=None, content=None, headers=None):
    return httpx.post(server.base_url + path, json=json, content=content, timeout=60,
                      headers={**server.headers(), **(headers or {})})


def assert_error(r: httpx.Response, status: int, *fragments: str, param: str | None = None):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["code"] == status
    for f in fragments:
        assert f in err["message"], err["message"]
    if param is not None:
        assert err["param"] == param


CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.mark.parametrize("change, param", [
    ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": "many"}, "max_tokens"),
    ({"n": 0}, "n"),
    ({"messages": "hello"}, "messages"),
    ({"messages": []}, "messages"),
    ({"stop": 5}, "stop"),
])
def test_invalid_parameters_and_wrong_types_are_400_naming_the_parameter(server, change, param):
    assert_error(post(server, "/chat/completions", {**CHAT, **change}), 400, param, param=param)


def test_malformed_json_is_400_not_500(server):
    r = post(server, "/chat/completions", content=b'{"model": "x", "messages": [', headers={
        "Content-Type": "application/json"})
    assert_error(r, 400, "not valid JSON")


def test_prompt_plus_max_tokens_over_the_context_states_both_counts_and_the_limit(server):
    r = post(server, "/completions", {"model": MODEL, "prompt": "word " * 50, "max_tokens": 8190})
    assert_error(r, 400, "8190", "8192", param="max_tokens")
    assert "prompt has" in r.json()["error"]["message"]


def test_missing_or_wrong_api_key_is_401(server):
    r = httpx.post(server.base_url + "/chat/completions", json=CHAT, timeout=30)
    assert_error(r, 401, "API key")
    r = httpx.get(server.base_url + "/models", headers={"Authorization": "Bearer wrong"}, timeout=30)
    assert_error(r, 401)


def test_health_needs_no_key(server):
    assert httpx.get(server.url + "/health/live", timeout=30).status_code == 200
    assert httpx.get(server.url + "/health/ready", timeout=30).status_code == 200


def test_unknown_model_is_404(server):
    assert_error(post(server, "/chat/completions", {**CHAT, "model": "gpt-4o"}), 404, "gpt-4o", param="model")
    assert_error(post(server, "/embeddings", {"model": "nope", "input": "x"}), 404, "nope", param="model")


def test_oversized_body_is_413(server):
    r = post(server, "/completions", {"model": MODEL, "prompt": "x" * (3 * 1024 * 1024), "max_tokens": 1})
    assert_error(r, 413, "larger than the limit")


def test_token_id_embedding_input_is_a_clear_400(server):
    r = post(server, "/embeddings", {"model": "all-minilm-l6-v2", "input": [[1, 2, 3]]})
    assert_error(r, 400, "check_embedding_ctx_length", param="input")
