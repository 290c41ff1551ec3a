"""A scripted OpenAI-compatible server on a loopback port: chat streaming, health, metrics, adapters.

The app's tests talk to it over real HTTP exactly as they would to our engine, vLLM or NIM, but its answer is
fixed by the test (or, by default, what a well-tuned model says, so that it passes the app's checks: the
safety lead in an emergency, then the first statement of the prompt's excerpt [1], cited to it), and every
answer sent is kept in `sent`, so what the page shows can be asserted.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METRICS = """# HELP curbside_num_requests_running Requests in the running batch
# TYPE curbside_num_requests_running gauge
curbside_num_requests_running 2.0
# HELP curbside_num_requests_waiting Requests waiting to be scheduled
# TYPE curbside_num_requests_waiting gauge
curbside_num_requests_waiting 1.0
# HELP curbside_kv_cache_usage_perc Fraction of KV-cache blocks in use (0-1)
# TYPE curbside_kv_cache_usage_perc gauge
curbside_kv_cache_usage_perc 0.25
# HELP curbside_generation_tokens Tokens generated
# TYPE curbside_generation_tokens counter
curbside_generation_tokens_total {tokens}
# HELP curbside_prompt_tokens Prompt tokens computed
# TYPE curbside_prompt_tokens counter
curbside_prompt_tokens_total 500.0
"""


def quote_first_excerpt(messages: list[dict]) -> str:
    """What a well-tuned model says: in an emergency the safety lead first, then the first statement of
    excerpt [1] in the last user message, cited."""
    from app.verification import statements

    prompt = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    block = prompt[prompt.index("\n[1] "):].split("\n[2] ")[0].split("\n\n")[0]
    body = block.strip().split("\n", 1)[1]  # below the "[1] Title — Section" heading
    answer = statements(body)[0].rstrip(".") + " [1]."
    if "Urgency: EMERGENCY" in prompt:
        answer = ("Urgency is EMERGENCY. Do not leave the patient alone and arrange same-day emergency "
                  "evaluation [1]. " + answer)
    return answer


@dataclass
class StubLLM:
    answer: str | None = None            # None: quote the prompt's excerpt [1]
    sent: list[str] = field(default_factory=list)
    model: str = "stub-model"
    fail_chat: bool = False
    adapters: dict[str, str] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    generated: float = 1000.0
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> StubLLM:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/health/ready":
                    self._json(200, {"status": "ready", "model": stub.model})
                elif self.path == "/metrics":
                    stub.generated += 250
                    data = METRICS.format(tokens=stub.generated).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif self.path == "/v1/models":
                    data = [{"id": stub.model, "object": "model", "root": "/models/stub", "parent": None}]
                    data += [{"id": n, "object": "model", "root": p, "parent": stub.model}
                             for n, p in stub.adapters.items()]
                    self._json(200, {"object": "list", "data": data})
                else:
                    self._json(404, {"error": {"message": "not found", "type": "not_found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/v1/load_lora_adapter":
                    stub.adapters[body["lora_name"]] = body["lora_path"]
                    self._json(200, {"status": "loaded"})
                elif self.path == "/v1/unload_lora_adapter":
                    if stub.adapters.pop(body["lora_name"], None) is None:
                        self._json(404, {"error": {"message": f"no adapter {body['lora_name']!r}"}})
                    else:
                        self._json(200, {"status": "unloaded"})
                elif self.path == "/v1/chat/completions":
                    stub.requests.append(body)
                    if stub.fail_chat:
                        self._json(503, {"error": {"message": "engine restarting", "type": "unavailable"}})
                        return
                    self._stream(body)
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def _stream(self, body: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                answer = stub.answer if stub.answer is not None else quote_first_excerpt(body["messages"])
                stub.sent.append(answer)
                words = answer.split(" ")
                for i, word in enumerate(words):
                    piece = word if i == 0 else " " + word
                    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                             "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece},
                                          "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                end = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
