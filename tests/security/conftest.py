"""The whole product, run once for the security tests: `curbside run` (the server with an API key, then the app)
with the network guard in every Python process, driven in headless Chromium through a full session.

The session: the first admin signs in with the generated password and must change it, runs a consult, uploads a
guideline on the Documents page, changes the password again on the Account page, and signs out. Every cookie the
browser was given, and every Set-Cookie header it saw, is kept for the cookie test; the logs and the data
directory are left for the secrets test; the guard's log for the no-outbound test.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.browser import CHROMIUM, change_password, launch, sign_in
from support.net_guard import sitecustomize_dir
from support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-curbside-secret-4f1d9a7c2b"
NEW_PASSWORD = "first-change-passphrase-71"
LATEST_PASSWORD = "second-change-passphrase-93"
GUIDELINE = b"""---
title: Security flow guideline
topic: general
---
# Security flow guideline

For patients with made-up vextral syndrome, review them after eleven days. This text exists only to be uploaded.
"""


@dataclass
class Product:
    url: str  # the app
    server_url: str  # the inference server
    data: Path
    log_path: Path
    guard_log: Path
    api_key: str
    first_admin_password: str
    passwords: list[str]
    cookies: list[dict] = field(default_factory=list)  # the browser's cookie jar at the end
    set_cookies: list[tuple[str, str]] = field(default_factory=list)  # (url, Set-Cookie header) seen
    shown: list[str] = field(default_factory=list)  # what the consult page said


def drive(product: Product) -> None:
    """The browser session, as a person would go through it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context()
        page = context.new_page()

        def on_response(response):
            for h in response.headers_array():
                if h["name"].lower() == "set-cookie":
                    product.set_cookies.append((response.url, h["value"]))

        page.on("response", on_response)
        try:
            session(page, product)
        except Exception:
            page.screenshot(path=str(product.data.parent / "failure.png"), full_page=True)
            raise
        product.cookies = context.cookies()
        browser.close()


def session(page, product: Product) -> None:
    """Sign in (forced change), consult, upload, change the password, sign out."""
    url = product.url
    sign_in(page, url, "admin", product.first_admin_password)
    page.get_by_role("heading", name="Account").wait_for(timeout=60_000)  # forced change first
    change_password(page, product.first_admin_password, NEW_PASSWORD)
    page.get_by_role("heading", name="Consult").wait_for(timeout=60_000)

    page.get_by_label("Presentation").fill("He has been stockpiling his tablets and plans to take them tonight.")
    page.get_by_label("Presentation").blur()
    box = page.get_by_placeholder("Ask about this patient…")
    box.fill("What should I do now?")
    box.press("Enter")
    page.get_by_text("EMERGENCY").first.wait_for(timeout=60_000)
    page.get_by_text("Sources").wait_for(timeout=240_000)
    product.shown.append(page.inner_text("body"))

    page.get_by_role("link", name="Documents", exact=True).click()
    page.get_by_role("heading", name="Guideline documents").wait_for(timeout=60_000)
    upload = product.data.parent / "vextral.md"
    upload.write_bytes(GUIDELINE)
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_text("vextral.md").first.wait_for(timeout=60_000)  # uploaded to the widget before Ingest
    page.get_by_role("button", name="Ingest").click()
    page.get_by_text(re.compile(r"vextral\.md.*added")).wait_for(timeout=120_000)

    page.get_by_role("link", name="Account", exact=True).click()
    page.get_by_role("heading", name="Account").wait_for(timeout=60_000)
    change_password(page, NEW_PASSWORD, LATEST_PASSWORD)
    page.get_by_text("Password changed.").wait_for(timeout=60_000)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)


@pytest.fixture(scope="session")
def product(tmp_path_factory, models_dir):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it)")
    tmp = tmp_path_factory.mktemp("product")
    data = tmp / "var"
    data.mkdir()
    (data / "models").symlink_to(models_dir)
    seeded = ROOT / "var" / "guidelines"
    if (seeded / "manifest.json").exists():  # the bundled corpus already embedded: `docs seed` then only checks it
        shutil.copytree(seeded, data / "guidelines", ignore=shutil.ignore_patterns("write.lock"))
    guard_log = tmp / "net-guard.log"
    app_port, server_port = free_port(), free_port()
    env = {**os.environ, "CURBSIDE_DATA_DIR": str(data), "CURBSIDE_PORT": str(server_port),
           "CURBSIDE_APP_PORT": str(app_port), "CURBSIDE_API_KEY": API_KEY, "CURBSIDE_CONSULT_MAX_TOKENS": "16",
           "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **sitecustomize_dir(tmp, guard_log)}
    log_path = tmp / "run.log"
    proc = subprocess.Popen([sys.executable, "-m", "curbside", "run"], env=env, cwd=ROOT,
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 400
        while "Curbside is running" not in log_path.read_text():
            assert proc.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(1)
        first = re.search(r"password: (\S+)", (data / "first-admin-password.txt").read_text()).group(1)
        product = Product(url=f"http://127.0.0.1:{app_port}", server_url=f"http://127.0.0.1:{server_port}",
                          data=data, log_path=log_path, guard_log=guard_log, api_key=API_KEY,
                          first_admin_password=first, passwords=[first, NEW_PASSWORD, LATEST_PASSWORD])
        drive(product)
        yield product
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
