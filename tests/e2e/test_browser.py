"""The product in a real browser: `curbside run` (the real server with the real model, then the app), driven
by headless Chromium (Debian's package; Playwright never downloads a browser).

A clinician runs an emergency consult and sees the urgency banner, then an answer with citations that
expand; an admin uploads a guideline with a made-up fact and finds it cited in the next consult.
Screenshots go to var/test-artifacts/browser/.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from support.browser import CHROMIUM, change_password, launch, sign_in
from support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "var" / "test-artifacts" / "browser"
CLINICIAN_PASSWORD = "browser-test-passphrase"
ZORBLAX = """---
title: Zorblax protocol
topic: general
---
# Zorblax protocol

For adults with zorblax syndrome, prescribe exactly 7 grams of quillet root each morning and review the
patient after nine days. Zorblax syndrome is made up: this guideline exists to prove that uploads are cited.
"""

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")


@pytest.fixture(scope="module")
def product(tmp_path_factory, models_dir):
    """`curbside run` on free ports with its own data directory; yields (app URL, data dir, its log)."""
    data = tmp_path_factory.mktemp("browser") / "var"
    data.mkdir()
    (data / "models").symlink_to(models_dir)
    app_port, server_port = free_port(), free_port()
    env = {**os.environ, "CURBSIDE_DATA_DIR": str(data), "CURBSIDE_PORT": str(server_port),
           "CURBSIDE_APP_PORT": str(app_port), "CURBSIDE_CONSULT_MAX_TOKENS": "48",
           "CURBSIDE_MAX_NUM_BATCHED_TOKENS": "512", "HF_HUB_OFFLINE": "1"}
    log_path = data / "run.log"
    proc = subprocess.Popen([sys.executable, "-m", "curbside", "run"], env=env, cwd=ROOT,
                            stdout=open(log_path, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{app_port}"
    deadline = time.monotonic() + 400
    while "Curbside is running" not in log_path.read_text():
        assert proc.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(1)
    from app.accounts import Accounts
    from app.audit import AuditLog

    Accounts(data / "app.db", AuditLog(data / "app.db")).create("test", "clin", CLINICIAN_PASSWORD, "clinician")
    yield url, data, log_path
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def ask(page, presentation: str, question: str) -> float:
    """Submit a consult; returns seconds from pressing Enter to the urgency banner being on screen."""
    page.get_by_label("Presentation").fill(presentation)
    page.get_by_label("Presentation").blur()
    box = page.get_by_placeholder("Ask about this patient…")
    box.fill(question)
    t0 = time.perf_counter()
    box.press("Enter")
    page.get_by_text(re.compile("EMERGENCY|Urgent: assess|Routine")).first.wait_for(timeout=30_000)
    return time.perf_counter() - t0


def test_the_product_end_to_end_in_a_browser(product, browser):
    url, data, log_path = product
    page = browser.new_page(viewport={"width": 1400, "height": 1000})

    # Nothing but the sign-in page without an account, whatever the URL.
    page.goto(url + "/documents")
    page.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
    assert page.get_by_text("Guideline documents").count() == 0

    sign_in(page, url, "clin", CLINICIAN_PASSWORD)
    page.get_by_role("heading", name="Consult").wait_for(timeout=30_000)
    banner_s = ask(page, "He has been stockpiling his tablets and says he plans to take them all tonight.",
                   "What should I do now?")
    page.get_by_text("EMERGENCY").first.wait_for()
    page.get_by_text("Sources").wait_for(timeout=240_000)
    page.screenshot(path=str(ARTIFACTS / "1-emergency-consult.png"), full_page=True)
    page.get_by_text(re.compile(r"^\[1\] ")).first.click()
    page.get_by_role("button", name="Open source document").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "2-citation-open.png"), full_page=True)
    (ARTIFACTS / "banner-seconds.txt").write_text(f"{banner_s:.3f}\n")

    # The admin (first start's generated password) uploads a guideline with a made-up fact.
    password = re.search(r"password: (\S+)", (data / "first-admin-password.txt").read_text()).group(1)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, url, "admin", password)
    page.get_by_role("heading", name=re.compile("Consult|Account")).wait_for(timeout=30_000)
    if page.get_by_role("heading", name="Account").count():
        change_password(page, password, "admin-new-passphrase")
        page.get_by_role("heading", name="Consult").wait_for(timeout=30_000)
    page.get_by_role("link", name="Documents", exact=True).click()
    page.get_by_role("heading", name="Guideline documents").wait_for()
    upload = data.parent / "zorblax.md"
    upload.write_text(ZORBLAX)
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Ingest").click()
    page.get_by_text(re.compile(r"zorblax\.md.*added")).wait_for(timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "3-upload.png"), full_page=True)

    page.get_by_role("link", name="Consult", exact=True).click()
    ask(page, "Adult with zorblax syndrome, otherwise well.", "How should zorblax syndrome be treated?")
    page.get_by_text("Sources").wait_for(timeout=240_000)
    page.get_by_text(re.compile(r"^\[\d+\] Zorblax protocol")).first.click()
    page.get_by_text("7 grams of quillet root").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "4-upload-cited.png"), full_page=True)

    assert banner_s < 5.0, f"urgency banner took {banner_s:.2f} s"
    assert httpx.get(url + "/_stcore/health").status_code == 200
    log = log_path.read_text()
    assert "stockpiling" not in log and "zorblax syndrome, otherwise" not in log
