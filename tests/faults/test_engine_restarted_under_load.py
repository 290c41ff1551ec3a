"""The engine SIGTERMed and started again while streaming clients keep it busy: every request ends, complete or
with an error, within a bounded time; streams already flowing when the signal came finish (the server drains);
and requests after the restart succeed."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass

import openai
from support.restartable import RestartableServer
from support.server import MODEL

CLIENTS = 4
REQUEST_TIMEOUT_S = 60


@dataclass
class Outcome:
    started: float
    ended: float
    first_chunk: float | None
    kind: str  # complete | error | truncated (a stream that ended without a finish reason or an error)
    error: str = ""


def client_loop(server: RestartableServer, i: int, stop: threading.Event, outcomes: list, lock) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=REQUEST_TIMEOUT_S)
    while not stop.is_set():
        started, first, finish = time.monotonic(), None, None
        try:
            stream = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"Tell me about sleep, part {i}."}],
                max_tokens=16, temperature=0.8, stream=True, extra_body={"ignore_eos": True})
            for chunk in stream:
                if first is None:
                    first = time.monotonic()
                if chunk.choices and chunk.choices[0].finish_reason:
                    finish = chunk.choices[0].finish_reason
            outcome = Outcome(started, time.monotonic(), first, "complete" if finish else "truncated")
        except Exception as e:  # noqa: BLE001 - any error is an outcome: 503, refused, or a stream cut by the exit
            outcome = Outcome(started, time.monotonic(), first, "error", f"{type(e).__name__}: {e}"[:200])
            stop.wait(0.2)  # down or draining: try again shortly, as a client would
        with lock:
            outcomes.append(outcome)


def test_streaming_clients_see_complete_answers_or_errors_across_a_restart_never_a_hang(tmp_path):
    server = RestartableServer(tmp_path, "--no-embeddings").start()  # drains for up to 30 s
    outcomes: list[Outcome] = []
    lock, stop = threading.Lock(), threading.Event()
    threads = [threading.Thread(target=client_loop, args=(server, i, stop, outcomes, lock), daemon=True)
               for i in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while sum(o.kind == "complete" for o in outcomes) < CLIENTS and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # streams in full flow
        t_term = time.monotonic()
        assert server.kill(signal.SIGTERM, wait_s=60) == 0  # drained, then exited cleanly
        t_down = time.monotonic()
        time.sleep(1.0)  # clients meet a closed port for a moment
        server.start()
        t_up = time.monotonic()
        while sum(o.kind == "complete" and o.started > t_up for o in outcomes) < CLIENTS and \
                time.monotonic() < t_up + 60:
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=REQUEST_TIMEOUT_S + 15)
        hung = [t.name for t in threads if t.is_alive()]
        server.stop()
    assert not hung, f"clients still waiting: {hung}"

    assert not [o for o in outcomes if o.kind == "truncated"], "a stream ended without a finish reason or error"
    slow = [(round(o.started - t_term, 1), round(o.ended - o.started, 1), o.kind, o.error) for o in outcomes
            if o.ended - o.started > REQUEST_TIMEOUT_S]
    assert not slow, f"requests over {REQUEST_TIMEOUT_S} s (start relative to SIGTERM, seconds, outcome): {slow}"
    flowing = [o for o in outcomes if o.first_chunk is not None and o.first_chunk < t_term]
    assert flowing and all(o.kind == "complete" for o in flowing), [o for o in flowing if o.kind != "complete"]
    refused = [o for o in outcomes if o.kind == "error"]
    assert refused, "no request met the restart"
    assert all(o.ended - o.started < 10 for o in refused), "refusals must be quick, not waits"
    assert all(o.started >= t_term - 1 and o.ended <= t_up + 1 for o in refused), refused
    after = [o for o in outcomes if o.started > t_up]
    assert len([o for o in after if o.kind == "complete"]) >= CLIENTS
    print(f"{len(outcomes)} requests: {sum(o.kind == 'complete' for o in outcomes)} complete, {len(refused)} "
          f"refused while draining or down ({t_up - t_term:.1f} s, drain {t_down - t_term:.1f} s)")
