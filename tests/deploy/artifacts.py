"""Reading the deployment artifacts for the tests: Dockerfiles, compose, rendered Kubernetes manifests, tools.

Nothing here builds an image or talks to a cluster: the artifacts are checked statically, against the
code that will run inside them.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILES = {"cpu": ROOT / "Dockerfile", "cuda": DEPLOY / "Dockerfile.cuda"}
KUSTOMIZATIONS = {"base": K8S / "base", "cuda": K8S / "overlays" / "cuda"}
# Manifests applied on their own, outside the kustomizations (why: in each file's header).
STANDALONE_MANIFESTS = [K8S / "api-key-secret.template.yaml", K8S / "prometheus-adapter-rules.yaml"]
CRD_MANIFESTS = [K8S / "prometheus" / "servicemonitor.yaml"]  # no schema in kubernetes-validate
TOOLS_VENV = ROOT / ".venv-tools"
INSTALL_HINT = "create it with `scripts/deploy_lint.sh install` (the Makefile's deploy-tools target)"


class ToolMissing(AssertionError):
    """A linter the deployment tests need is not installed: a failure, never a skip."""


def tool(name: str) -> str:
    """Path of a linter: .venv-tools/bin first (checkov cannot share .venv), then PATH."""
    candidate = TOOLS_VENV / "bin" / name
    if candidate.exists() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(f"`{name}` is needed by the deployment tests but is not in {TOOLS_VENV}/bin or on PATH: "
                      f"{INSTALL_HINT}")


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# --- Dockerfiles -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # with line continuations joined
    line: int  # 1-based line where it starts


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions in order; comments dropped and continuation lines joined (no heredocs in ours)."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1].strip())
            continue
        buf.append(line)
        text = " ".join(b for b in buf if b)
        keyword, _, args = text.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        buf = []
    return out


def env_of(instructions: list[Instruction]) -> dict[str, str]:
    """Every ENV key=value, later ones winning (as in the final image)."""
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for token in shlex.split(ins.args):
                key, sep, value = token.partition("=")
                assert sep, f"ENV without '=' (legacy form) at line {ins.line}: {ins.args}"
                env[key] = value
    return env


def args_of(instructions: list[Instruction]) -> dict[str, str]:
    out = {}
    for ins in instructions:
        if ins.keyword == "ARG":
            key, _, value = ins.args.partition("=")
            out[key] = value
    return out


def copies(instructions: list[Instruction]) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY, flags such as --chmod dropped."""
    out = []
    for ins in instructions:
        if ins.keyword == "COPY":
            parts = [p for p in shlex.split(ins.args) if not p.startswith("--")]
            out.append((parts[:-1], parts[-1]))
    return out


# --- Kubernetes --------------------------------------------------------------------------------------


def kustomize_command(directory: Path) -> list[str]:
    """`kustomize build` where kustomize is installed, else `kubectl kustomize` (kubectl embeds it)."""
    for name, sub in (("kustomize", ["build"]), ("kubectl", ["kustomize"])):
        found = shutil.which(name)
        if found:
            return [found, *sub, str(directory)]
    raise ToolMissing("rendering deploy/k8s needs `kustomize` or `kubectl` (which embeds kustomize) on PATH")


def render(directory: Path) -> list[dict]:
    """The manifests a kustomization produces, as `kubectl apply -k` would send them."""
    done = run(kustomize_command(directory), timeout=120)
    assert done.returncode == 0, f"kustomize failed for {directory}:\n{done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def load_manifests(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def find(docs: list[dict], kind: str, name: str) -> dict:
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def pod_specs(docs: list[dict]) -> list[tuple[str, dict]]:
    """(name, pod spec) of every workload."""
    return [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in docs
            if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def container(docs: list[dict], deployment: str, name: str) -> dict:
    spec = find(docs, "Deployment", deployment)["spec"]["template"]["spec"]
    hits = [c for c in spec["containers"] if c["name"] == name]
    assert len(hits) == 1, f"Deployment/{deployment} has no container {name!r}"
    return hits[0]


def env_value(c: dict, name: str) -> str | None:
    for item in c.get("env", []):
        if item["name"] == name:
            return item.get("value")
    return None


def named_port(c: dict, name: str) -> int:
    for p in c.get("ports", []):
        if p.get("name") == name:
            return p["containerPort"]
    raise AssertionError(f"container {c['name']} has no port named {name!r}")


def probe_port(c: dict, probe: dict) -> int:
    port = probe["httpGet"]["port"]
    return named_port(c, port) if isinstance(port, str) else port


# --- compose -----------------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())
