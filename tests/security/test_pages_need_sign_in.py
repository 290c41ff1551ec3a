"""Signed out, every page of the app, opened directly, shows the sign-in form and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.app_ui import new_app

from app.ui import services as svc
from curbside.settings import Settings

VIEWS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "app" / "ui" / "views").glob("*.py"))
SIGN_IN_FORM = [("Title", None, "Curbside"), ("Caption", None, "Primary-care mental health"),
                ("TextInput", "Username", ""), ("TextInput", "Password", ""), ("Button", "Sign in", "False")]


class NotAStore:
    """Signed out, no page may reach the guideline store: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"a signed-out page used the guideline store ({name})")


@pytest.fixture
def signed_out_services(tmp_path):
    services = svc.build(Settings(data_dir=tmp_path, llm_base_url="http://127.0.0.1:9/v1"), store=NotAStore())
    services.accounts.create("setup", "admin", "correct-horse-battery", "admin")  # an account exists, unused
    svc.install(services)
    yield services
    svc.install(None)


def shown(at) -> list[tuple]:
    """Every element on the page and in the sidebar: (kind, label, the start of its value)."""
    out = []
    for root in (at.main, at.sidebar):
        for el in root:
            kind = type(el).__name__
            if kind in ("Block", "SpecialBlock"):
                continue
            out.append((kind, getattr(el, "label", None), str(getattr(el, "value", ""))[:26]))
    return out


def test_the_view_list_covers_every_page_of_the_app():
    assert VIEWS == ["account", "audit", "consult", "documents", "history", "models", "screening", "users"]


@pytest.mark.parametrize("view", VIEWS)
def test_a_signed_out_visitor_sees_only_the_sign_in_form_on_every_page(signed_out_services, view):
    at = new_app().run()
    at.switch_page(f"views/{view}.py").run()
    assert not at.exception
    assert shown(at) == SIGN_IN_FORM
    assert not signed_out_services.audit.query(action="page.denied")  # nobody to deny: just the form
    events = {e.action for e in signed_out_services.audit.query()}
    assert "login.success" not in events
