"""Admin pages refuse clinicians with 'not authorised' (and an audit event), never by showing the page."""

from __future__ import annotations

import pytest
from support.app_ui import sign_in

ADMIN_PAGES = ["documents", "models", "users", "audit"]


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_a_clinician_opening_an_admin_page_is_not_authorised(services, page):
    at = sign_in("clin")
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Not authorised: this page is for administrators."]
    assert len(at.title) == 0
    denied = services.audit.query(action="page.denied")[0]
    assert (denied.actor, denied.target, denied.outcome) == ("clin", page, "denied")


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_an_admin_opens_every_admin_page(services, page):
    at = sign_in("admin")
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception
    assert len(at.title) == 1 and not at.error


def test_only_an_admin_sees_the_administration_menu(services):
    assert "Administration" not in [c.value for c in sign_in("clin").sidebar.caption]
    assert "Administration" in [c.value for c in sign_in("admin").sidebar.caption]
