"""`curbside ingest`, `curbside docs` and `curbside search` on a data directory of their own."""

from __future__ import annotations

import json

import pytest
from support.guidelines import INSOMNIA, LITHIUM

from curbside.cli import main


@pytest.fixture
def data_dir(tmp_path, models_dir):
    data = tmp_path / "var"
    data.mkdir()
    (data / "models").symlink_to(models_dir)  # the pulled models, without copying them
    return data


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_list_search_and_delete_from_the_command_line(data_dir, tmp_path, capsys):
    (tmp_path / "lithium.md").write_bytes(LITHIUM)
    (tmp_path / "sleep.md").write_bytes(INSOMNIA)
    code, out, _ = run(capsys, "--data-dir", str(data_dir), "ingest", str(tmp_path / "lithium.md"),
                       str(tmp_path / "sleep.md"), "--json")
    assert code == 0
    assert [o["status"] for o in json.loads(out)["outcomes"]] == ["added", "added"]

    code, out, _ = run(capsys, "--data-dir", str(data_dir), "docs", "list", "--json")
    assert sorted(d["doc_id"] for d in json.loads(out)) == ["insomnia-test", "lithium-test"]

    code, out, _ = run(capsys, "--data-dir", str(data_dir), "search", "how often to check lithium levels",
                       "--k", "2", "--json")
    hits = json.loads(out)
    assert code == 0 and hits[0]["doc_id"] == "lithium-test"
    assert {"doc_id", "title", "topic", "section", "page", "score", "text"} <= set(hits[0])

    code, out, _ = run(capsys, "--data-dir", str(data_dir), "docs", "delete", "lithium-test")
    assert code == 0 and "deleted lithium-test" in out
    code, out, _ = run(capsys, "--data-dir", str(data_dir), "search", "lithium", "--json")
    assert "lithium-test" not in [h["doc_id"] for h in json.loads(out)]


def test_a_refused_file_is_named_and_the_exit_status_says_so(data_dir, tmp_path, capsys):
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4 not really")
    code, out, _ = run(capsys, "--data-dir", str(data_dir), "ingest", str(tmp_path / "scan.pdf"))
    assert code == 1 and "failed" in out and "scan.pdf" in out
    code, _, err = run(capsys, "--data-dir", str(data_dir), "ingest", str(tmp_path / "missing.md"))
    assert code == 2 and "missing.md" in err


def test_search_on_a_new_data_directory_seeds_the_bundled_corpus(data_dir, capsys):
    code, out, _ = run(capsys, "--data-dir", str(data_dir), "search", "buprenorphine induction", "--k", "1",
                       "--json")
    assert code == 0 and json.loads(out)[0]["doc_id"] == "opioid-use-disorder"
