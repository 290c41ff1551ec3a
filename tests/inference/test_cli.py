"""The `curbside` command line."""

import json
import subprocess
import sys


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "curbside.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_models_list_reports_the_embedded_models(repo_root):
    done = run("models", "list", "--json", cwd=repo_root)
    assert done.returncode == 0, done.stderr
    names = {r["name"] for r in json.loads(done.stdout)}
    assert {"smollm2-135m-instruct", "all-minilm-l6-v2"} <= names


def test_generate_prints_json_per_prompt(smollm2_path, repo_root, tmp_path):
    done = run("--data-dir", str(tmp_path), "generate", "--model", str(smollm2_path), "--max-tokens", "5",
               "--json", "hello there", "second prompt", cwd=repo_root)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(rows) == 2 and all(r["finish_reason"] in ("stop", "length") for r in rows)


def test_an_unknown_model_is_a_clear_error_not_a_traceback(repo_root, tmp_path):
    done = run("--data-dir", str(tmp_path), "generate", "--model", "no-such-model", "hi", cwd=repo_root)
    assert done.returncode == 2
    assert "no-such-model" in done.stderr and "Traceback" not in done.stderr
