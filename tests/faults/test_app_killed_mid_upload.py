"""The app SIGKILLed in the middle of an upload on the Documents page: the store reopens at its last committed
state, with every document whole and findable, none half there, and the audit chain intact.

The upload runs in a real subprocess: the Documents page itself (Streamlit's AppTest, signed in as an admin)
ingesting four files, which it does one `store.ingest_files` call per file. The store reports its stages; the
subprocess holds still at the chosen one and is killed there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from support.guidelines import LITHIUM, NALOXONE, doc_ids
from support.kill import sigkill_at

from app.audit import AuditLog
from retrieval.store import GuidelineStore, StoreConfig

WORDS = ["zorvane", "quillet", "brumask", "plenthor"]
UPLOADER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, "tests")
    from retrieval.store import GuidelineStore, StoreConfig
    from support.app_ui import sign_in
    from support.live_app import install_services

    root, models, data_dir, stop_at, nth, files = sys.argv[1:7]
    seen = {"n": 0}

    def on_stage(stage):
        print(stage, flush=True)
        if stage == stop_at:
            seen["n"] += 1
            if seen["n"] == int(nth):
                print("PAUSED", flush=True)
                time.sleep(600)  # the test kills us here

    store = GuidelineStore(StoreConfig(root=Path(root), models_dir=Path(models)), on_stage=on_stage)
    install_services(Path(data_dir), store, "http://127.0.0.1:9/v1")  # no consult: the model is never asked
    at = sign_in("admin")
    at.switch_page("views/documents.py").run()
    uploads = [(p.name, p.read_bytes(), "text/markdown") for p in sorted(Path(files).iterdir())]
    at.file_uploader[0].set_value(uploads)
    print("uploading", flush=True)
    at.button[0].click().run(timeout=300)
    print("done", flush=True)
""")


def upload(i: int) -> bytes:
    word = WORDS[i]
    return (f"---\nid: upload-{i}\ntitle: Upload {i}\ntopic: general\n---\n# Upload {i}\n\n## Advice\n\n"
            f"- For {word} syndrome, review after {i + 3} days.\n- Offer the {word} leaflet to every patient.\n"
            ).encode()


def kill_uploader_at(stage: str, nth: int, store_root, data_dir, files, models_dir, repo_root) -> list[str]:
    proc = subprocess.Popen([sys.executable, "-c", UPLOADER, str(store_root), str(models_dir), str(data_dir), stage,
                             str(nth), str(files)], cwd=repo_root, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(repo_root)})
    seen = sigkill_at(proc, "PAUSED")
    assert seen and seen[-1] == "PAUSED", f"the upload finished or failed before {stage} #{nth}: {seen}"
    return seen


@pytest.mark.parametrize("stage, nth, kept", [
    ("embedded", 2, 1),    # the second file embedded, not committed: only the first survives
    ("committed", 3, 3),   # the third file committed, its index not yet published: the next start publishes it
])
def test_an_app_killed_mid_upload_leaves_the_last_committed_documents_whole(stage, nth, kept, tmp_path, embedder,
                                                                           models_dir, repo_root):
    store = GuidelineStore(StoreConfig(root=tmp_path / "store", models_dir=models_dir), embedder)
    store.ingest_files([("lithium.md", LITHIUM), ("naloxone.md", NALOXONE)])
    before = [d.doc_id for d in store.documents()]
    files = tmp_path / "uploads"
    files.mkdir()
    for i in range(len(WORDS)):
        (files / f"upload-{i}.md").write_bytes(upload(i))
    data_dir = tmp_path / "app"

    stages = kill_uploader_at(stage, nth, store.root, data_dir, files, models_dir, repo_root)
    assert "uploading" in stages

    reopened = GuidelineStore(StoreConfig(root=tmp_path / "store", models_dir=models_dir), embedder)
    expected = sorted(before + [f"upload-{i}" for i in range(kept)])
    assert [d.doc_id for d in reopened.documents()] == expected
    assert not list(reopened.index_root.glob("*.tmp"))
    manifest = json.loads(reopened.manifest_path.read_text())
    assert manifest["documents"] == len(expected)
    for d in reopened.documents():  # whole: every chunk stored, indexed, and the original kept
        assert d.chunks >= 1 and (reopened.files_root / d.content_hash).exists()
    assert manifest["chunks"] == sum(d.chunks for d in reopened.documents())
    for i, word in enumerate(WORDS):
        found = f"upload-{i}" in doc_ids(reopened.search(f"{word} syndrome leaflet", k=3))
        assert found == (i < kept), (word, found)
    assert reopened.search("lithium levels", k=1)[0].doc_id == "lithium-test"

    audit = AuditLog(data_dir / "app.db")
    assert audit.verify().ok
    audited = sorted(e.target for e in audit.query(action="document.upload"))
    # the page audits each file once its ingest returns: the files before the one killed mid-ingest (a file
    # committed but not yet published when the app died is in the library without its upload row)
    assert audited == [f"upload-{i}" for i in range(nth - 1)]
