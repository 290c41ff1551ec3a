"""deploy/compose.yaml: engine and app apart, joined by the OpenAI API and the data volume; loopback ports."""

from __future__ import annotations

import fnmatch

from deploy.artifacts import DEPLOY, DOCKERFILES, compose, env_of, parse_dockerfile

ENGINES = ("engine", "engine-cuda")


def test_every_published_port_is_bound_to_loopback():
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), f"{name}: {port}"


def test_one_engine_per_profile_and_the_app_follows_whichever_runs():
    services = compose()["services"]
    assert services["engine"]["profiles"] == ["cpu"]
    assert services["engine-cuda"]["profiles"] == ["cuda"]
    assert "profiles" not in services["app"]
    assert services["engine-cuda"]["networks"]["default"]["aliases"] == ["engine"]
    for engine in ENGINES:
        assert services[engine]["command"] == ["curbside", "serve"]
        dep = services["app"]["depends_on"][engine]
        assert dep == {"condition": "service_healthy", "required": False}
    assert services["app"]["command"] == ["curbside", "run", "--no-server"]
    default = dict(line.split("=", 1) for line in (DEPLOY / ".env").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert default["COMPOSE_PROFILES"] == "cpu"


def test_the_cuda_profile_reserves_an_nvidia_gpu_and_builds_the_cuda_image():
    cuda = compose()["services"]["engine-cuda"]
    (device,) = cuda["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["count"] == 1 and device["capabilities"] == ["gpu"]
    assert (DEPLOY / cuda["build"]["context"] / cuda["build"]["dockerfile"]).resolve() == DOCKERFILES["cuda"]
    cpu = compose()["services"]["engine"]
    assert (DEPLOY / cpu["build"]["context"] / cpu["build"]["dockerfile"]).resolve() == DOCKERFILES["cpu"]
    assert "deploy" not in cpu


def test_services_share_only_the_data_volume_and_the_api_key_secret():
    doc = compose()
    data_dir = env_of(parse_dockerfile(DOCKERFILES["cpu"]))["CURBSIDE_DATA_DIR"]
    assert list(doc["volumes"]) == ["data"]
    for name, service in doc["services"].items():
        assert service["volumes"] == [f"data:{data_dir}"], name
        assert service["secrets"] == ["curbside_env"], name
        assert "network_mode" not in service and "pid" not in service and "ipc" not in service, name


def test_the_api_key_is_a_file_secret_read_through_curbside_config():
    doc = compose()
    secret = doc["secrets"]["curbside_env"]
    assert set(secret) == {"file"}, "a file secret, not an environment variable"
    for name, service in doc["services"].items():
        assert service["environment"]["CURBSIDE_CONFIG"] == "/run/secrets/curbside_env", name
        assert "CURBSIDE_API_KEY" not in service["environment"], name
    # the operator's key file is ignored by git; the example shows its one line
    key_file = DEPLOY / secret["file"]
    example = key_file.with_name(key_file.name + ".example")
    assert "CURBSIDE_API_KEY=" in example.read_text()
    patterns = [line for line in (key_file.parent / ".gitignore").read_text().splitlines()
                 if line and not line.startswith("#")]
    assert any(fnmatch.fnmatch(key_file.name, p) for p in patterns), f"{key_file} must be ignored by git"
    assert not any(fnmatch.fnmatch(example.name, p) for p in patterns), "the example is committed"


def test_containers_are_hardened_like_the_kubernetes_pods():
    env = env_of(parse_dockerfile(DOCKERFILES["cpu"]))
    for name, service in compose()["services"].items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["user"] == "10001:10001", name
        for path in (env["HOME"], env["MPLCONFIGDIR"], env["TRITON_CACHE_DIR"], "/tmp"):
            assert any(path == t or path.startswith(t + "/") for t in service["tmpfs"]), f"{name}: {path}"
        assert service["healthcheck"]["test"][0] == "CMD", name
