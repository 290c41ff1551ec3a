"""Driving the app in Debian's chromium with Playwright: where the browser is, signing in, changing a password."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def launch(playwright):
    """A headless chromium (the system one: `make test` installs it; Playwright downloads nothing)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])


def sign_in(page, url: str, username: str, password: str) -> None:
    page.goto(url)
    page.locator("input[aria-label='Username']").fill(username)
    page.locator("input[aria-label='Password']").fill(password)
    page.get_by_role("button", name="Sign in").click()


def change_password(page, old: str, new: str) -> None:
    page.locator("input[aria-label='Current password']").fill(old)
    page.locator("input[aria-label='New password']").fill(new)
    page.locator("input[aria-label='New password again']").fill(new)
    page.get_by_role("button", name="Change password").click()
