"""The inference server SIGKILLed while it streams a consult's answer: the page says so plainly, the consult is
recorded as failed (never answered), and once the server is back on the same port consults work again."""

from __future__ import annotations

import signal
import threading
import time

from support.app_ui import sign_in, texts
from support.live_app import install_services
from support.restartable import RestartableServer

EMERGENCY = "He has been stockpiling his tablets and says he plans to take them all tonight."
DEPRESSION = "Six weeks of low mood, poor sleep and loss of interest. Denies suicidal ideation."


def consult(at, presentation: str, question: str):
    at.text_area(key="consult_presentation").input(presentation)
    at.chat_input[0].set_value(question).run(timeout=120)
    return at


def kill_after_first_tokens(server: RestartableServer, killed: threading.Event, give_up_s: float = 90) -> None:
    """SIGKILL the server once it has generated its first tokens (read from its /metrics, every 50 ms)."""
    deadline = time.monotonic() + give_up_s
    while time.monotonic() < deadline:
        try:
            if server.generation_tokens() >= 2:
                server.kill(signal.SIGKILL)
                killed.set()
                return
        except Exception:  # noqa: BLE001 - the server is busy; ask again
            pass
        time.sleep(0.05)


def test_killing_the_engine_mid_answer_fails_the_consult_clearly_and_a_restart_recovers(
        tmp_path, small_store, uninstall_services):
    server = RestartableServer(tmp_path, "--no-embeddings").start()
    try:
        # a long answer (up to 1024 tokens), so the kill lands while it is being written
        services = install_services(tmp_path / "app", small_store, server.base_url, max_tokens=1024)
        at = sign_in("clin")
        killed = threading.Event()
        killer = threading.Thread(target=kill_after_first_tokens, args=(server, killed), daemon=True)
        killer.start()
        consult(at, EMERGENCY, "What should I do now?")
        killer.join(timeout=5)
        assert killed.is_set(), "the answer finished before the server could be killed"
        assert server.process.returncode == -signal.SIGKILL

        assert not at.exception
        assert at.error[0].value.startswith("### EMERGENCY")  # the urgency stands without the model
        shown = texts(at)
        assert "could not answer" in shown and "no answer was recorded" in shown
        [record] = services.records.history("clin")
        assert record.status == "failed" and record.result is None
        assert "generation failed" in record.error
        failed = services.audit.query(action="consult.failed")
        assert failed and not services.audit.query(action="consult.run")

        server.start()  # the same port: the app's base URL is unchanged
        services = install_services(tmp_path / "app", small_store, server.base_url, max_tokens=16)
        at = consult(sign_in("clin"), DEPRESSION, "Is guided self-help reasonable first?")
        assert not at.exception
        assert "could not answer" not in texts(at)
        latest = services.records.history("clin")[0]
        assert latest.status == "answered" and latest.result["generation_error"] is None
        assert [r.status for r in services.records.history("clin")] == ["answered", "failed"]
    finally:
        server.stop()
