"""Sign-in: local accounts, lockout, sign-out and the idle timeout."""

from __future__ import annotations

import time

from support.app_ui import PASSWORD, new_app, sign_in, texts


def test_a_clinician_signs_in_and_lands_on_the_consult_page(services):
    at = sign_in("clin")
    assert not at.exception
    assert at.title[0].value == "Consult"
    assert "Signed in as **clin** (clinician)" in [c.value for c in at.sidebar.caption]
    assert services.audit.query(action="login.success")[0].actor == "clin"


def test_a_wrong_password_is_refused_and_recorded(services):
    at = sign_in("clin", "not-the-password")
    assert at.title[0].value == "Curbside"
    assert "invalid" in at.error[0].value.lower()
    event = services.audit.query(action="login.failure")[0]
    assert event.target == "clin" or event.actor == "clin"
    assert "not-the-password" not in str(event.detail)


def test_repeated_failures_lock_the_account_even_for_the_right_password(services):
    for _ in range(services.accounts.policy.max_failed_logins):
        sign_in("clin", "wrong-password-123")
    at = sign_in("clin", PASSWORD)
    assert at.title[0].value == "Curbside"
    assert "locked" in at.error[0].value.lower()


def test_sign_out_returns_to_the_sign_in_page(services):
    at = sign_in("clin")
    at.sidebar.button[0].click().run()
    assert at.title[0].value == "Curbside"
    assert services.audit.query(action="logout")[0].actor == "clin"


def test_an_idle_session_is_signed_out_at_its_next_action(services):
    at = sign_in("clin")
    at.session_state["last_seen"] = time.monotonic() - services.settings.session_idle_minutes * 60 - 1
    at.run()
    assert at.title[0].value == "Curbside"
    assert "signed out after 15 minutes" in texts(at)
    assert services.audit.query(action="session.timeout")[0].actor == "clin"


def test_a_disabled_account_is_signed_out_at_once(services):
    at = sign_in("clin")
    services.accounts.set_disabled("admin", "clin", True)
    at.run()
    assert at.title[0].value == "Curbside"
    assert "disabled" in texts(at)


def test_a_user_with_a_reset_password_must_change_it_before_anything_else(services):
    temporary = services.accounts.reset_password("admin", "clin")
    at = sign_in("clin", temporary)
    assert at.title[0].value == "Account"
    at.text_input[0].input(temporary)
    at.text_input[1].input("a-brand-new-passphrase")
    at.text_input[2].input("a-brand-new-passphrase")
    at.button[0].click().run()
    assert at.title[0].value == "Consult"
    assert not new_app().run().exception
