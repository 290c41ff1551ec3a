"""Driving the Streamlit app in tests: start it, sign in, read what the page shows."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

MAIN = Path(__file__).resolve().parents[2] / "app" / "ui" / "main.py"
PASSWORD = "correct-horse-battery"


def new_app() -> AppTest:
    return AppTest.from_file(str(MAIN), default_timeout=60)


def sign_in(username: str, password: str = PASSWORD) -> AppTest:
    at = new_app().run()
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def texts(at: AppTest) -> str:
    """Everything the page shows as text, for assertions about what a person would read."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info", "success",
                 "text", "metric"):
        for el in getattr(at, kind):
            parts.append(str(getattr(el, "value", "") or getattr(el, "body", "")))
    return "\n".join(parts)
