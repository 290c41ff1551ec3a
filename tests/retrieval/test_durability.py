"""A writer killed with SIGKILL at any stage of an ingest never costs readers or the next start anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from support.guidelines import INSOMNIA, doc_ids
from support.kill import sigkill_at

from retrieval.store import GuidelineStore

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from retrieval.store import GuidelineStore, StoreConfig

    root, models, stop_at, path = sys.argv[1:5]

    def on_stage(stage):
        print(stage, flush=True)
        if stage == stop_at:
            time.sleep(600)  # the test kills us here

    store = GuidelineStore(StoreConfig(root=Path(root), models_dir=Path(models)), on_stage=on_stage)
    store.ingest_paths([Path(path)])
    print("done", flush=True)
""")


def kill_writer_at(stage: str, store: GuidelineStore, doc_path, models_dir, repo_root) -> list[str]:
    """Run an ingest in a real subprocess and SIGKILL it once it reports `stage`; returns the stages seen."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store.root), str(models_dir), stage, str(doc_path)],
                            cwd=repo_root, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(repo_root)})
    seen = sigkill_at(proc, stage)
    assert seen[-1] == stage, f"writer finished or failed before {stage}: {seen}"
    return seen


@pytest.mark.parametrize("stage, survives", [
    ("embedded", False),             # nothing committed: the ingest never happened
    ("committed", True),             # committed but unpublished: the next start publishes it
    ("dense_index_written", True),   # half-written index directory: discarded, then rebuilt
    ("indexes_written", True),       # complete but unpublished index: rebuilt and published
])
def test_a_writer_killed_mid_ingest_leaves_the_last_committed_state(stage, survives, small_store, tmp_path,
                                                                    models_dir, repo_root, embedder):
    doc = tmp_path / "insomnia.md"
    doc.write_bytes(INSOMNIA)
    before = [d.doc_id for d in small_store.documents()]
    manifest_before = json.loads(small_store.manifest_path.read_text())

    kill_writer_at(stage, small_store, doc, models_dir, repo_root)

    # Readers that were already open keep reading the last published state, untouched.
    assert json.loads(small_store.manifest_path.read_text()) == manifest_before
    assert [d.doc_id for d in small_store.documents()] == before
    assert small_store.search("lithium levels", k=1)[0].doc_id == "lithium-test"

    # The next start repairs: committed work is published, partial files are gone.
    reopened = GuidelineStore(small_store.config, embedder)
    assert not list(reopened.index_root.glob("*.tmp"))
    after = [d.doc_id for d in reopened.documents()]
    assert ("insomnia-test" in after) == survives
    assert set(before) <= set(after)
    assert ("insomnia-test" in doc_ids(reopened.search("CBT for insomnia", k=3))) == survives
    assert reopened.ingest_files([("insomnia.md", INSOMNIA)]).outcomes[0].status == (
        "unchanged" if survives else "added")


def test_searches_keep_working_while_another_process_ingests(small_store, tmp_path, models_dir, repo_root):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(30):
        body = "\n\n".join(f"## Part {j}\n\n- Advice {i}.{j} on sleep hygiene and stimulus control." for j in range(8))
        (docs / f"doc-{i}.md").write_text(f"---\nid: doc-{i}\ntopic: insomnia\n---\n# Doc {i}\n\n{body}\n")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(small_store.root), str(models_dir), "never",
                             str(docs)], cwd=repo_root, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(repo_root)})
    searches = 0
    while proc.poll() is None:
        assert small_store.search("lithium levels", k=1)[0].doc_id == "lithium-test"
        searches += 1
    assert proc.returncode == 0 and searches > 10
    assert len(small_store.documents()) == 32
