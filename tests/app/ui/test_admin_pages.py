"""Admin pages: documents, users, audit log and models, each driven as an admin would."""

from __future__ import annotations

import json

import pytest
from support.app_ui import PASSWORD, sign_in, texts

from app.ui import services as svc
from retrieval.store import GuidelineStore, StoreConfig

FACT = b"""---
title: Zorblax protocol
topic: general
---
# Zorblax protocol

For patients with made-up zorblax syndrome, prescribe exactly 7 grams of quillet root each morning and
review them after nine days. This protocol exists only to test that uploaded guidelines are cited.
"""


@pytest.fixture
def fresh_store(services, tmp_path, embedder, models_dir):
    """An empty store of its own, so uploads never touch the shared bundled one."""
    store = GuidelineStore(StoreConfig(root=tmp_path / "own-store", models_dir=models_dir), embedder)
    services.store = store
    services.pipeline.store = store
    return store


def documents_page():
    at = sign_in("admin")
    at.switch_page("views/documents.py").run()
    return at


def test_several_files_upload_at_once_with_a_result_for_each(services, fresh_store):
    at = documents_page()
    at.file_uploader[0].set_value([("zorblax.md", FACT, "text/markdown"), ("empty.md", b"", "text/markdown")])
    at.button[0].click().run()
    assert not at.exception
    assert any("zorblax.md" in s.value and "added" in s.value for s in at.success)
    assert any("empty.md" in e.value and "not ingested" in e.value for e in at.error)
    assert [d.doc_id for d in fresh_store.documents()] == ["zorblax"]
    assert fresh_store.search("zorblax quillet root")[0].doc_id == "zorblax"
    outcomes = {e.detail["file"]: e.outcome for e in services.audit.query(action="document.upload")}
    assert outcomes == {"zorblax.md": "ok", "empty.md": "failed"}


def test_the_library_lists_version_and_chunks_and_a_document_can_be_deleted(services, fresh_store):
    fresh_store.ingest_files([("zorblax.md", FACT)])
    at = documents_page()
    table = at.dataframe[0].value
    assert table["doc_id"].tolist() == ["zorblax"] and table["chunks"].tolist()[0] >= 1
    delete_form_select = [s for s in at.selectbox if s.label == "Delete a document"][0]
    delete_form_select.set_value("zorblax")
    at.checkbox[0].check()
    [b for b in at.button if b.label == "Delete"][0].click().run()
    assert fresh_store.documents() == []
    assert services.audit.query(action="document.delete")[0].target == "zorblax"


def test_delete_without_confirmation_changes_nothing(services, fresh_store):
    fresh_store.ingest_files([("zorblax.md", FACT)])
    at = documents_page()
    [s for s in at.selectbox if s.label == "Delete a document"][0].set_value("zorblax")
    [b for b in at.button if b.label == "Delete"][0].click().run()
    assert "tick the confirmation" in texts(at)
    assert len(fresh_store.documents()) == 1


def test_reindex_publishes_a_new_generation(services, fresh_store):
    fresh_store.ingest_files([("zorblax.md", FACT)])
    before = fresh_store.generation
    at = documents_page()
    [b for b in at.button if b.label == "Re-index"][0].click().run()
    assert fresh_store.generation == before + 1
    assert services.audit.query(action="document.reindex")


def users_page():
    at = sign_in("admin")
    at.switch_page("views/users.py").run()
    return at


def test_an_admin_creates_a_user_who_gets_a_one_time_password(services):
    at = users_page()
    at.text_input[0].input("new.doctor")
    at.button[0].click().run()
    shown = [w.value for w in at.warning if "new.doctor" in w.value][0]
    password = shown.split("`")[1]
    user = services.accounts.get("new.doctor")
    assert user.role == "clinician" and user.must_change_password
    assert services.accounts.authenticate("new.doctor", password).username == "new.doctor"
    assert not [w for w in at.run().warning if "new.doctor" in w.value]


def test_a_bad_username_is_refused_with_the_rule(services):
    at = users_page()
    at.text_input[0].input("No Spaces!")
    at.button[0].click().run()
    assert at.error and "username" in at.error[0].value.lower()


def test_disable_reset_and_role_change(services):
    at = users_page()
    [s for s in at.selectbox if s.label == "User"][0].set_value("clin").run()
    [b for b in at.button if b.label == "Disable"][0].click().run()
    assert services.accounts.get("clin").disabled
    [s for s in at.selectbox if s.label == "User"][0].set_value("clin").run()
    [b for b in at.button if b.label == "Enable"][0].click().run()
    assert not services.accounts.get("clin").disabled
    [s for s in at.selectbox if s.label == "User"][0].set_value("clin").run()
    [b for b in at.button if b.label == "Reset password"][0].click().run()
    assert services.accounts.get("clin").must_change_password
    [s for s in at.selectbox if s.label == "User"][0].set_value("clin").run()
    at.selectbox(key="role-clin").set_value("admin").run()
    [b for b in at.button if b.label == "Change role"][0].click().run()
    assert services.accounts.get("clin").role == "admin"
    actions = {e.action for e in services.audit.query(action="user.")}
    assert {"user.disable", "user.enable", "user.reset_password", "user.set_role"} <= actions


def test_the_last_admin_cannot_demote_themselves(services):
    at = users_page()
    [s for s in at.selectbox if s.label == "User"][0].set_value("admin").run()
    at.selectbox(key="role-admin").set_value("clinician").run()
    [b for b in at.button if b.label == "Change role"][0].click().run()
    assert at.error and services.accounts.get("admin").role == "admin"


def test_the_audit_page_filters_events_and_verifies_the_chain(services):
    sign_in("clin", "wrong-password-123")
    at = sign_in("admin")
    at.switch_page("views/audit.py").run()
    [s for s in at.selectbox if s.label == "Action"][0].set_value("login.failure").run()
    table = at.dataframe[0].value
    assert set(table["action"]) == {"login.failure"}
    [b for b in at.button if b.label == "Verify the hash chain"][0].click().run()
    assert "Audit chain intact" in at.success[0].value


def test_the_models_page_shows_engine_load_and_manages_adapters(services, stub):
    at = sign_in("admin")
    at.switch_page("views/models.py").run()
    assert "ready" in at.success[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Running requests"] == "2" and metrics["Waiting requests"] == "1"
    assert metrics["KV-cache usage"] == "25%"
    at.text_input[0].input("curbside-consult")
    at.text_input[1].input("/adapters/curbside-consult")
    [b for b in at.button if b.label == "Load adapter"][0].click().run()
    assert stub.adapters == {"curbside-consult": "/adapters/curbside-consult"}
    at.run()
    assert "curbside-consult" in texts(at)
    [b for b in at.button if b.label == "Unload"][0].click().run()
    assert stub.adapters == {}
    assert {e.action for e in services.audit.query(action="adapter.")} == {"adapter.load", "adapter.unload"}
    assert float(at.metric[3].value) > 0 or len(at.session_state["engine_readings"]) > 1


def test_the_models_page_shows_the_tuned_adapters_card(services):
    at = sign_in("admin")
    at.switch_page("views/models.py").run()
    assert any("make tune" in c.value for c in at.caption)
    tuned = services.settings.data_dir / "adapters" / "curbside-consult"
    tuned.mkdir(parents=True)
    (tuned / "model_card.json").write_text(json.dumps({
        "name": "curbside-consult", "created": "2026-11-27T11:39:19+00:00", "base_model": {"name": "smollm2"},
        "chosen": {"name": "lora-r8-attn"}, "beats_base_on_validation": True,
        "candidates": [{"name": "lora-r8-attn", "status": "trained", "score": 0.545, "train_seconds": 801,
                        "validation": {"citation_validity": 0.625, "key_fact_recall": 0.33}},
                       {"name": "ia3", "status": "skipped", "reason": "no time left"}],
        "test": {"base": {"citation_validity": 0.125}, "adapter": {"citation_validity": 0.65}}}))
    at.run()
    assert "lora-r8-attn" in texts(at) and "consults do not use it" in texts(at)  # the stub serves no adapter
    candidates, test = at.dataframe[0].value, at.dataframe[1].value
    assert list(candidates["candidate"]) == ["lora-r8-attn", "ia3"] and candidates["note"][1] == "no time left"
    assert (test["base model"][0], test["adapter"][0]) == (0.125, 0.65)


def test_password_is_never_stored_in_the_audit_log(services):
    sign_in("clin", "wrong-password-123")
    sign_in("clin", PASSWORD)
    assert all(PASSWORD not in str(e.to_dict()) for e in services.audit.query())
    assert svc.get() is services
