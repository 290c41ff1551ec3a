"""The Kubernetes manifests: schema-valid as rendered, hardened, and wired the way the docs say."""

from __future__ import annotations

import re

import pytest
from deploy.artifacts import (
    CRD_MANIFESTS,
    K8S,
    KUSTOMIZATIONS,
    STANDALONE_MANIFESTS,
    container,
    env_value,
    find,
    load_manifests,
    pod_specs,
    run,
    tool,
)

NAMESPACED = {"Deployment", "Service", "PersistentVolumeClaim", "HorizontalPodAutoscaler", "NetworkPolicy",
              "Secret", "ConfigMap"}


def test_kubernetes_validate_passes_every_rendered_and_standalone_manifest(rendered, tmp_path):
    import yaml

    files = []
    for name, docs in rendered.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        files.append(path)
    files += STANDALONE_MANIFESTS
    done = run([tool("kubernetes-validate"), "--strict", *map(str, files)])
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "Couldn't find schema" not in out, out
    expected = sum(len(docs) for docs in rendered.values()) + sum(len(load_manifests(p)) for p in STANDALONE_MANIFESTS)
    assert len(re.findall(r"\bpassed for resource\b", out)) == expected, out


def test_every_file_under_deploy_k8s_is_rendered_or_applied_on_its_own():
    import yaml

    used = set(STANDALONE_MANIFESTS) | set(CRD_MANIFESTS)
    for directory in KUSTOMIZATIONS.values():
        k = yaml.safe_load((directory / "kustomization.yaml").read_text())
        used.add(directory / "kustomization.yaml")
        used |= {(directory / r).resolve() for r in k.get("resources", []) if (directory / r).is_file()}
        used |= {(directory / p["path"]).resolve() for p in k.get("patches", [])}
    orphans = sorted(str(p.relative_to(K8S)) for p in K8S.rglob("*.yaml") if p.resolve() not in used)
    assert not orphans, f"manifests neither in a kustomization nor listed as standalone: {orphans}"


def test_every_pod_is_locked_down(rendered):
    for variant, docs in rendered.items():
        for name, spec in pod_specs(docs):
            where = f"{variant}: {name}"
            assert spec["automountServiceAccountToken"] is False, where
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001, where
            assert pod["seccompProfile"]["type"] == "RuntimeDefault", where
            for c in spec["containers"] + spec.get("initContainers", []):
                sc = c["securityContext"]
                assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001, where
                assert sc["readOnlyRootFilesystem"] is True, where
                assert sc["allowPrivilegeEscalation"] is False, where
                assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"], where
                assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{where}: {kind}"
                image = c["image"]
                assert re.fullmatch(r"[\w./-]+(:[\w.-]+)(@sha256:[0-9a-f]{64})?|[\w./-]+@sha256:[0-9a-f]{64}",
                                    image) and not image.endswith(":latest"), f"{where}: pin {image}"


def test_the_namespace_enforces_the_restricted_pod_security_profile(rendered):
    for docs in rendered.values():
        ns = find(docs, "Namespace", "curbside")
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        for d in docs:
            if d["kind"] in NAMESPACED:
                assert d["metadata"]["namespace"] == "curbside", d["metadata"]["name"]


def test_the_writable_paths_of_the_image_are_volumes_under_a_read_only_root(rendered):
    """HOME, the caches the image points at, /tmp and the data directory: each under a mounted volume."""
    from deploy.artifacts import DOCKERFILES, env_of, parse_dockerfile

    env = env_of(parse_dockerfile(DOCKERFILES["cpu"]))
    writable = [env["HOME"], env["MPLCONFIGDIR"], env["TRITON_CACHE_DIR"], env["CURBSIDE_DATA_DIR"], "/tmp"]
    for variant, docs in rendered.items():
        for name, spec in pod_specs(docs):
            volumes = {v["name"]: v for v in spec["volumes"]}
            for c in spec["containers"]:
                mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
                for path in writable:
                    hits = [mp for mp in mounts if path == mp or path.startswith(mp.rstrip("/") + "/")]
                    assert hits, f"{variant}: {name}/{c['name']}: {path} is on the read-only root filesystem"
                    vol = mounts[max(hits, key=len)]
                    assert "emptyDir" in vol or "persistentVolumeClaim" in vol, f"{path}: {vol}"


def test_the_engine_is_stateless_and_the_app_owns_the_data_volume(rendered):
    docs = rendered["base"]
    engine = find(docs, "Deployment", "curbside-engine")["spec"]
    app = find(docs, "Deployment", "curbside-app")["spec"]
    assert not any("persistentVolumeClaim" in v for v in engine["template"]["spec"]["volumes"])
    assert "replicas" not in engine, "the HPA owns the engine's replica count; a fixed one resets it on apply"
    claims = [v["persistentVolumeClaim"]["claimName"] for v in app["template"]["spec"]["volumes"]
              if "persistentVolumeClaim" in v]
    pvc = find(docs, "PersistentVolumeClaim", claims[0])
    assert claims == ["curbside-data"] and pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert app["replicas"] == 1 and app["strategy"]["type"] == "Recreate"  # one SQLite writer


def test_the_api_key_comes_from_a_secret_file_and_the_template_holds_no_key(rendered):
    (template,) = load_manifests(K8S / "api-key-secret.template.yaml")
    assert template["kind"] == "Secret"
    assert template["stringData"] == {"curbside.env": "CURBSIDE_API_KEY=", "api-key": ""}
    for docs in rendered.values():
        assert not [d for d in docs if d["kind"] == "Secret"], "a Secret in the kustomization overwrites the real key"
        for _, spec in pod_specs(docs):
            volumes = {v["name"]: v for v in spec["volumes"]}
            for c in spec["containers"]:
                config = env_value(c, "CURBSIDE_CONFIG")
                mount = next(m for m in c["volumeMounts"] if config.startswith(m["mountPath"] + "/"))
                secret = volumes[mount["name"]]["secret"]
                assert secret["secretName"] == template["metadata"]["name"]
                assert [i["path"] for i in secret["items"]] == [config.rsplit("/", 1)[1]]
                assert {i["key"] for i in secret["items"]} <= set(template["stringData"])
                assert mount["readOnly"] is True
                assert not any("secretKeyRef" in e.get("valueFrom", {}) for e in c.get("env", [])), \
                    "secrets as files, not environment variables"


def test_network_policy_allows_egress_only_to_the_namespace_and_dns(rendered):
    docs = rendered["base"]
    egress = [d for d in docs if d["kind"] == "NetworkPolicy" and "Egress" in d["spec"]["policyTypes"]]
    assert len(egress) == 1 and egress[0]["spec"]["podSelector"] == {}, "one egress policy for every pod"
    rules = egress[0]["spec"]["egress"]
    for rule in rules:
        for peer in rule["to"]:
            assert "ipBlock" not in peer, "no addresses outside the cluster"
            if "namespaceSelector" in peer:  # only the cluster DNS, only port 53
                assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
                assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
                assert {p["port"] for p in rule["ports"]} == {53}
                assert {p["protocol"] for p in rule["ports"]} == {"UDP", "TCP"}
            else:
                assert peer == {"podSelector": {}}, peer  # this namespace's pods
    assert any(rule["to"] == [{"podSelector": {}}] for rule in rules)


def test_the_hpa_scales_the_engine_on_a_pods_metric(rendered):
    docs = rendered["base"]
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    find(docs, target["kind"], target["name"])
    assert target["name"] == "curbside-engine"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["target"]["type"] == "AverageValue"
    assert hpa["spec"]["minReplicas"] >= 1 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]


def test_the_cuda_overlay_puts_only_the_engine_on_a_gpu(rendered):
    base, cuda = rendered["base"], rendered["cuda"]
    engine = container(cuda, "curbside-engine", "engine")
    assert engine["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert engine["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert engine["image"].startswith("curbside-cuda:")
    assert env_value(engine, "CURBSIDE_DEVICE") == "cuda"
    assert container(cuda, "curbside-app", "app") == container(base, "curbside-app", "app")
    # everything but the engine Deployment is the base, unchanged
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, base)) == sorted(map(key, cuda))
    for d in cuda:
        if key(d) != ("Deployment", "curbside-engine"):
            assert d == find(base, *key(d))


@pytest.mark.parametrize("variant", sorted(KUSTOMIZATIONS))
def test_each_deployment_has_all_three_probes_and_a_drain_window(rendered, variant):
    for name, spec in pod_specs(rendered[variant]):
        for c in spec["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert "httpGet" in c[probe], f"{name}: {probe}"
        assert spec["terminationGracePeriodSeconds"] >= 30
