"""The app's services built exactly as `app.ui.services.build` makes them, but against a real model server."""

from __future__ import annotations

from pathlib import Path

from app.ui import services as svc
from curbside.settings import Settings
from support.app_ui import PASSWORD


def install_services(data_dir: Path, store, base_url: str, api_key: str | None = None, max_tokens: int = 16):
    """Build services for `data_dir` (accounts `clin` and `admin`, password PASSWORD) and install them for
    AppTest; `svc.install(None)` undoes it."""
    settings = Settings(data_dir=data_dir, llm_base_url=base_url, llm_model="smollm2-135m-instruct",
                        api_key=api_key, consult_max_tokens=max_tokens, llm_timeout_s=60)
    services = svc.build(settings, store=store)
    existing = {u.username for u in services.accounts.list()}
    for name, role in (("clin", "clinician"), ("admin", "admin")):
        if name not in existing:
            services.accounts.create("setup", name, PASSWORD, role)
    svc.install(services)
    return services
