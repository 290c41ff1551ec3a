"""The app driven by Streamlit's AppTest: a temporary database, the bundled store and a scripted model."""

from __future__ import annotations

import pytest
from support.app_ui import PASSWORD
from support.stub_llm import StubLLM

from app.ui import services as svc
from curbside.settings import Settings


@pytest.fixture
def stub():
    server = StubLLM().start()
    yield server
    server.stop()


@pytest.fixture
def services(tmp_path, bundled_store, stub):
    settings = Settings(data_dir=tmp_path, llm_base_url=stub.base_url, llm_model=stub.model)
    services = svc.build(settings, store=bundled_store)
    services.accounts.create("setup", "admin", PASSWORD, "admin")
    services.accounts.create("setup", "clin", PASSWORD, "clinician")
    svc.install(services)
    yield services
    svc.install(None)
