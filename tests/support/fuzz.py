"""Schemathesis against a running `curbside serve`: generate requests from its own /openapi.json and check
that none is a 5xx, none hangs, every error is in OpenAI's shape and every stream ends properly.

Used by tests/fuzz/test_openapi_fuzz.py (a few examples per operation) and tests/fuzz/fuzz_openapi.py (as many
as asked, with counts to print). Generation is kept cheap: token budgets the schema allows are cut to
`MAX_TOKENS` before sending, while budgets beyond the context window are sent as generated (they must be 400).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

MAX_TOKENS = 8
MODEL = "smollm2-135m-instruct"
EMBED = "all-minilm-l6-v2"
CONTEXT = 8192  # SmolLM2's context; larger token budgets are left alone, to be refused
VOCAB = 49152  # SmolLM2's vocabulary
ERROR_KEYS = {"message", "type", "param", "code"}
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@dataclass
class Failure:
    operation: str
    mode: str
    kind: str  # server_error | hang | error_shape | bad_stream | bad_body
    detail: str
    request: str

    def __str__(self) -> str:
        return f"{self.operation} [{self.mode}] {self.kind}: {self.detail}\n    request: {self.request}"


@dataclass
class FuzzStats:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    by_operation: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    slowest_s: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)  # the five slowest requests
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"requests": self.requests, "operations": len(self.by_operation),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=lambda kv: str(kv[0]))},
                "by_operation": dict(self.by_operation), "failures": len(self.failures),
                "failure_details": [str(f) for f in self.failures[:50]], "slowest_request_s": round(self.slowest_s, 2),
                "slowest_requests": self.slowest,
                "seconds": round(self.seconds, 1)}


def load_schema(url: str, api_key: str | None):
    """The server's own schema, fetched the way a client would (with the key, if it has one)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    # read whole streams (schemathesis stops after 20 events by default), to see each one end with [DONE]
    config = schemathesis.Config.from_dict({"max-stream-events": 100_000})
    return schemathesis.openapi.from_url(url + "/openapi.json", config=config, headers=headers, timeout=30)


def operations(schema) -> list:
    return [r.ok() for r in schema.get_all_operations() if hasattr(r, "ok")]


def steer(body, path: str, positive: bool) -> None:
    """In place, on generated bodies, so that fuzzing reaches the engine and stays cheap on a CPU:
    - the served model is named in four bodies out of five (a random name is only ever a 404, which would hide
      everything behind it);
    - token budgets the server would honour are cut to MAX_TOKENS (budgets beyond the context stay, to be 400s);
    - valid bodies ask for at most 2 choices, and their token-id prompts are folded into the vocabulary, since
      the schema cannot say how large it is (so they generate instead of all being 400s).
    """
    if not isinstance(body, dict):
        return
    served = EMBED if path.endswith("/embeddings") else MODEL
    if isinstance(body.get("model"), str) and len(json.dumps(body, default=repr)) % 5:
        body["model"] = served
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        # 434.0 is a valid 434 to pydantic, so floats count too
        if isinstance(value, (int, float)) and not isinstance(value, bool) and MAX_TOKENS < value <= CONTEXT:
            body[key] = MAX_TOKENS
    if not positive:
        return
    if isinstance(body.get("n"), (int, float)) and body["n"] > 2:
        body["n"] = 2
    prompt = body.get("prompt")
    if isinstance(prompt, list) and path.endswith("/completions"):
        body["prompt"] = [[t % VOCAB for t in p] if isinstance(p, list) else p for p in prompt[:4]]
        if body["prompt"] and all(isinstance(t, int) for t in body["prompt"]):
            body["prompt"] = [t % VOCAB for t in body["prompt"]]


def describe(case, limit: int = 300) -> str:
    body = getattr(case, "body", None)
    try:
        text = json.dumps(body, default=repr)
    except (TypeError, ValueError):
        text = repr(body)
    return f"{case.method} {case.path} {text[:limit]}"


def error_shape_problem(status: int, raw: bytes) -> str | None:
    """Why an error body is not OpenAI's {"error": {"message", "type", "param", "code"}}, or None."""
    try:
        body = json.loads(raw)
    except ValueError:
        return f"error body is not JSON: {raw[:120]!r}"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or set(body) != {"error"}:
        return f"not {{'error': {{...}}}}: {str(body)[:160]}"
    if set(err) != ERROR_KEYS:
        return f"error keys are {sorted(err)}, not {sorted(ERROR_KEYS)}"
    if not isinstance(err["message"], str) or not err["message"] or not isinstance(err["type"], str):
        return f"message/type not non-empty strings: {err}"
    if err["param"] is not None and not isinstance(err["param"], str):
        return f"param is neither a string nor null: {err['param']!r}"
    if err["code"] != status:
        return f"code {err['code']!r} differs from the HTTP status {status}"
    return None


def stream_problem(raw: bytes) -> str | None:
    """A server-sent event stream must end with `data: [DONE]` and carry no in-band error."""
    events = [line[6:] for line in raw.decode("utf-8", "replace").splitlines() if line.startswith("data: ")]
    if not events or events[-1] != "[DONE]":
        return f"stream does not end with [DONE] (last event: {events[-1][:120] if events else None!r})"
    for e in events[:-1]:
        payload = json.loads(e)
        if "error" in payload:
            return f"in-band error: {payload['error']}"
    return None


def check(case, response: schemathesis.Response) -> list[tuple[str, str]]:
    status = response.status_code
    problems = []
    content_type = (response.headers.get("content-type") or [""])[0]
    if status >= 500:
        problems.append(("server_error", f"{status}: {response.content[:200]!r}"))
    if status >= 400:
        shape = error_shape_problem(status, response.content)
        if shape:
            problems.append(("error_shape", f"{status}: {shape}"))
    elif content_type.startswith("text/event-stream"):
        # a stream cut short was still going when the request timeout passed
        bad = "hang: stream still open after the timeout" if response.stream_cut_short else stream_problem(
            response.content)
        if bad:
            problems.append(("bad_stream", bad))
    elif case.path.startswith("/v1/") and case.method == "POST":
        try:
            body = json.loads(response.content)
        except ValueError:
            problems.append(("bad_body", f"200 but not JSON: {response.content[:120]!r}"))
        else:
            if not isinstance(body, dict) or not ({"choices", "data", "status"} & set(body)):
                problems.append(("bad_body", f"200 without choices/data/status: {str(body)[:160]}"))
    return problems


def fuzz(url: str, api_key: str | None, max_examples: int, timeout_s: float = 60.0, only: list | None = None,
         modes=MODES, stats: FuzzStats | None = None, seed: int | None = None) -> FuzzStats:
    """Run every operation (or `only`, as "METHOD /path") in each mode; failures are collected, not raised."""
    stats = stats or FuzzStats()
    schema = load_schema(url, api_key)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    session = requests.Session()
    t_start = time.monotonic()
    for op in operations(schema):
        label = f"{op.method.upper()} {op.path}"
        if only and label not in only:
            continue
        for mode in modes:
            run_operation(op, label, mode, url, headers, session, max_examples, timeout_s, stats, seed)
    stats.seconds += time.monotonic() - t_start
    return stats


def run_operation(op, label, mode, url, headers, session, max_examples, timeout_s, stats, seed) -> None:
    strategy = op.as_strategy(generation_mode=mode)
    seen: set[tuple[str, str]] = set()  # report each kind of failure once per operation and mode

    @settings(max_examples=max_examples, derandomize=seed is None, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=strategy)
    def one(case):
        steer(getattr(case, "body", None), case.path, mode.is_positive)
        t0 = time.monotonic()
        stats.requests += 1
        stats.by_operation[label] += 1
        try:
            response = case.call(base_url=url, session=session, headers=headers, timeout=timeout_s)
        except (requests.Timeout, TimeoutError):
            stats.statuses["timeout"] += 1
            problems = [("hang", f"no complete response within {timeout_s:.0f} s")]
            response = None
        except requests.ConnectionError as e:
            stats.statuses["connection_error"] += 1
            problems = [("server_error", f"connection failed: {e}")]
            response = None
        seconds = time.monotonic() - t0
        stats.slowest_s = max(stats.slowest_s, seconds)
        stats.slowest = sorted([*stats.slowest, (round(seconds, 2), describe(case))], reverse=True)[:5]
        if response is not None:
            stats.statuses[response.status_code] += 1
            problems = check(case, response)
        for kind, detail in problems:
            key = (kind, detail[:60])
            if key not in seen:
                seen.add(key)
                stats.failures.append(Failure(label, mode.value, kind, detail, describe(case)))

    if seed is not None:
        from hypothesis import seed as hseed

        one = hseed(seed)(one)
    try:
        one()
    except Unsatisfiable:  # negative mode on an operation with no parameters or body: nothing to break
        pass
